//! The state file: collections survive a restart.

mod support;

use std::path::Path;

use rekognition_emulator::{Config, Emulator, QuotaConfig};
use support::{TestBed, arn, free_port, start_with};

fn config_with_state(path: &Path) -> Config {
    Config {
        quota: QuotaConfig::disabled(),
        state_file: Some(path.to_owned()),
        ..Config::default()
    }
}

async fn restart(bed: TestBed, config: Config) -> TestBed {
    bed.emulator.shutdown().await;
    start_with(config).await
}

#[tokio::test]
async fn collections_tags_and_creation_times_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_state(&dir.path().join("state.json"));
    let bed = start_with(config.clone()).await;
    bed.client
        .create_collection()
        .collection_id("kept")
        .tags("team", "vision")
        .send()
        .await
        .unwrap();
    let before = bed
        .client
        .describe_collection()
        .collection_id("kept")
        .send()
        .await
        .unwrap();

    let bed = restart(bed, config).await;

    let after = bed
        .client
        .describe_collection()
        .collection_id("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(after.collection_arn(), before.collection_arn());
    assert_eq!(after.creation_timestamp(), before.creation_timestamp());
    let tags = bed
        .client
        .list_tags_for_resource()
        .resource_arn(arn("kept"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags().and_then(|t| t.get("team")).map(String::as_str),
        Some("vision")
    );
}

#[tokio::test]
async fn a_deleted_collection_stays_deleted_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_state(&dir.path().join("state.json"));
    let bed = start_with(config.clone()).await;
    for id in ["a", "b"] {
        bed.client
            .create_collection()
            .collection_id(id)
            .send()
            .await
            .unwrap();
    }
    bed.client
        .delete_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();

    let bed = restart(bed, config).await;

    let ids: Vec<String> = bed
        .admin
        .collections()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.collection_id)
        .collect();
    assert_eq!(ids, ["b"]);
}

#[tokio::test]
async fn the_state_file_is_written_without_leaving_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let bed = start_with(config_with_state(&path)).await;
    for i in 0..5 {
        bed.client
            .create_collection()
            .collection_id(format!("c{i}"))
            .send()
            .await
            .unwrap();
    }
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved["collections"].as_array().unwrap().len(), 5);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
}

#[tokio::test]
async fn a_reset_empties_the_state_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_state(&dir.path().join("state.json"));
    let bed = start_with(config.clone()).await;
    bed.client
        .create_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();
    bed.admin.reset().await.unwrap();

    let bed = restart(bed, config).await;

    assert!(bed.admin.collections().await.unwrap().is_empty());
}

#[tokio::test]
async fn without_a_state_file_a_restart_starts_empty() {
    let config = Config {
        quota: QuotaConfig::disabled(),
        ..Config::default()
    };
    let bed = start_with(config.clone()).await;
    bed.client
        .create_collection()
        .collection_id("a")
        .send()
        .await
        .unwrap();

    let bed = restart(bed, config).await;

    assert!(bed.admin.collections().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_corrupt_state_file_stops_start_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, b"{\"version\": 1, \"collections\": [").unwrap();
    let result = Emulator::start(config_with_state(&path), free_port(), free_port()).await;
    assert!(matches!(
        result,
        Err(rekognition_emulator::Error::StateParse { .. })
    ));
}
