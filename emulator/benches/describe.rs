//! Throughput of `DescribeCollection` through the real AWS SDK client, quotas off.
//!
//! `cargo bench -p rekognition-emulator --bench describe`; `BENCH_SECONDS` and `BENCH_TASKS`
//! change the duration (default 5 s) and the number of concurrent callers (default 16).

use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_rekognition::Client;
use aws_sdk_rekognition::config::Region;
use aws_sdk_rekognition::config::retry::RetryConfig;
use rekognition_emulator::{Config, Emulator, QuotaConfig};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. a test filter) is ignored.
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let tasks: usize = env_or("BENCH_TASKS", 16);

    let config = Config {
        quota: QuotaConfig::disabled(),
        ..Config::default()
    };
    let any_port = "127.0.0.1:0".parse().expect("address");
    let emulator = Emulator::start(config, any_port, any_port)
        .await
        .expect("emulator starts");
    let sdk_config = aws_sdk_rekognition::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(emulator.endpoint_url())
        .region(Region::new(emulator.config().region.clone()))
        .credentials_provider(Credentials::new(
            &emulator.config().access_key_id,
            &emulator.config().secret_access_key,
            None,
            None,
            "bench",
        ))
        .retry_config(RetryConfig::disabled())
        .build();
    let client = Client::from_conf(sdk_config);
    client
        .create_collection()
        .collection_id("bench")
        .send()
        .await
        .expect("create");

    // Warm up connections and caches before measuring.
    let warm_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < warm_until {
        client
            .describe_collection()
            .collection_id("bench")
            .send()
            .await
            .expect("describe");
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    client
                        .describe_collection()
                        .collection_id("bench")
                        .send()
                        .await
                        .expect("describe");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies.get(index).copied().unwrap_or_default()
    };

    println!(
        "DescribeCollection via aws-sdk-rekognition: {tasks} tasks, {elapsed:.1} s, {} requests",
        latencies.len()
    );
    println!(
        "  throughput: {:.0} requests/s",
        latencies.len() as f64 / elapsed
    );
    println!(
        "  latency:    p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(0.50).as_secs_f64() * 1000.0,
        percentile(0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    emulator.shutdown().await;
}
