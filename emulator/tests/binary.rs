//! The `rekognition-emulator` binary: flags and environment variables, and a clean stop on
//! SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_credential_types::Credentials;
use support::client_with;

#[tokio::test]
async fn the_binary_serves_with_flags_and_env_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rekognition-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .args(["--region", "eu-central-1"])
        .env("REKOGNITION_EMULATOR_ACCOUNT_ID", "210987654321")
        .env("REKOGNITION_EMULATOR_ACCESS_KEY_ID", "AKIABINARYTEST000000")
        .env("REKOGNITION_EMULATOR_SECRET_ACCESS_KEY", "binary-secret")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");

    // The "ready" log line says where the endpoint is, since the port was chosen by the OS.
    let stderr = child.stderr.take().expect("stderr");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if event["fields"]["message"] == "rekognition emulator ready" {
                let _ = ready_tx.send(
                    event["fields"]["endpoint"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    let endpoint = ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ready line");

    let client = client_with(
        &endpoint,
        "eu-central-1",
        Credentials::new("AKIABINARYTEST000000", "binary-secret", None, None, "tests"),
    );
    let created = client
        .create_collection()
        .collection_id("bin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.collection_arn(),
        Some("aws:rekognition:eu-central-1:210987654321:collection/bin")
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "binary did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
