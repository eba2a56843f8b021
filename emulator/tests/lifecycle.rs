//! Starting and stopping: ports, drop, shutdown.

mod support;

use std::time::Duration;

use rekognition_emulator::{Config, Emulator, Error};
use support::{eventually, free_port, start};

#[tokio::test]
async fn both_listeners_get_free_ports_when_asked_for_port_zero() {
    let bed = start().await;
    assert_ne!(bed.emulator.aws_addr().port(), 0);
    assert_ne!(bed.emulator.admin_addr().port(), 0);
    assert_eq!(
        bed.emulator.endpoint_url(),
        format!("http://{}", bed.emulator.aws_addr())
    );
    assert_eq!(
        bed.emulator.admin_url(),
        format!("http://{}", bed.emulator.admin_addr())
    );
}

#[tokio::test]
async fn shutdown_frees_the_ports_for_a_new_emulator() {
    let bed = start().await;
    bed.client.list_collections().send().await.unwrap();
    let (aws, admin) = (bed.emulator.aws_addr(), bed.emulator.admin_addr());
    bed.emulator.shutdown().await;

    let again = Emulator::start(Config::default(), aws, admin)
        .await
        .expect("ports are free again");
    assert_eq!(again.aws_addr(), aws);
}

#[tokio::test]
async fn dropping_the_emulator_stops_serving() {
    let bed = start().await;
    let admin = bed.admin.clone();
    admin.health().await.unwrap();
    drop(bed.emulator);
    let stopped = eventually(Duration::from_secs(5), || {
        let admin = admin.clone();
        async move { admin.health().await.is_err() }
    })
    .await;
    assert!(stopped);
}

#[tokio::test]
async fn a_port_in_use_is_a_bind_error() {
    let bed = start().await;
    let taken = bed.emulator.aws_addr();
    let result = Emulator::start(Config::default(), taken, free_port()).await;
    assert!(matches!(result, Err(Error::Bind { addr, .. }) if addr == taken));
}

#[tokio::test]
async fn an_invalid_configuration_is_refused_at_start() {
    let config = Config {
        account_id: "not-an-account".to_owned(),
        ..Config::default()
    };
    let result = Emulator::start(config, free_port(), free_port()).await;
    assert!(matches!(result, Err(Error::InvalidConfig(_))));
}
