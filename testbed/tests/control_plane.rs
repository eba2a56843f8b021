//! The test bed itself: a real control plane that starts, serves the CRD, authenticates
//! ServiceAccount tokens, enforces RBAC, and leaves nothing behind when it stops.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use testbed::{ApiServerStop, ControlPlane, ControlPlaneOptions, client_from_kubeconfig, shared};

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..ObjectMeta::default()
    }
}

#[tokio::test]
async fn control_plane_starts_and_serves_the_operator_crd() -> Result<()> {
    let testbed = shared().await?;
    let client = testbed.control_plane.client().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .get("rekognitioncollections.rekognition.aws-operators.dev")
        .await?;
    let established = crd
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(
        established,
        "the CRD from crds/ is installed and established"
    );
    let version = client.apiserver_version().await?;
    assert_eq!(version.major, "1");
    Ok(())
}

#[tokio::test]
async fn kubectl_works_with_the_written_kubeconfig() -> Result<()> {
    let testbed = shared().await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, testbed.control_plane.kubeconfig_yaml()?)?;
    let output = Command::new(&testbed.control_plane.binaries().kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "namespaces", "-o", "name"])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("namespace/kube-system"), "{stdout}");
    Ok(())
}

#[tokio::test]
async fn service_account_tokens_authenticate_and_rbac_refuses_the_rest() -> Result<()> {
    let testbed = shared().await?;
    let ns = testbed.namespace("rbac").await?;
    let admin = ns.client.clone();
    let service_accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns.name);
    service_accounts
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta("reader"),
                ..Default::default()
            },
        )
        .await?;
    let role = Role {
        metadata: meta("read-configmaps"),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into(), "list".into()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &role)
        .await?;
    let binding = RoleBinding {
        metadata: meta("reader-reads-configmaps"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "read-configmaps".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "reader".into(),
            namespace: Some(ns.name.clone()),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &binding)
        .await?;

    // TokenRequest: the API server mints a token signed with the test bed's service-account key.
    let token_request: TokenRequest = service_accounts
        .create_token_request("reader", &PostParams::default(), &TokenRequest::default())
        .await?;
    let token = token_request
        .status
        .context("token request has no status")?
        .token;
    let reader =
        client_from_kubeconfig(testbed.control_plane.kubeconfig_for_token("reader", &token))
            .await?;

    // Allowed by the Role.
    Api::<ConfigMap>::namespaced(reader.clone(), &ns.name)
        .list(&ListParams::default())
        .await
        .context("the ServiceAccount token authenticates and the Role allows configmaps")?;
    // Refused by RBAC: 403, not 401, so the token did authenticate.
    for (what, result) in [
        (
            "secrets",
            Api::<Secret>::namespaced(reader.clone(), &ns.name)
                .list(&ListParams::default())
                .await
                .map(|_| ()),
        ),
        (
            "namespaces",
            Api::<Namespace>::all(reader.clone())
                .list(&ListParams::default())
                .await
                .map(|_| ()),
        ),
    ] {
        match result {
            Err(kube::Error::Api(status)) if status.code == 403 => {}
            other => bail!("listing {what} should be forbidden, got {other:?}"),
        }
    }
    // A forged token is refused outright.
    let forged = client_from_kubeconfig(
        testbed
            .control_plane
            .kubeconfig_for_token("nobody", "not-a-token"),
    )
    .await?;
    match Api::<ConfigMap>::namespaced(forged, &ns.name)
        .list(&ListParams::default())
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 401 => {}
        other => bail!("a forged token should be unauthenticated, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn stopping_leaves_no_process_and_no_temp_directory() -> Result<()> {
    let plane = ControlPlane::start(ControlPlaneOptions {
        crd_dirs: vec![],
        ..ControlPlaneOptions::default()
    })
    .await?;
    let dir = plane.dir().to_path_buf();
    let pids = plane.pids();
    assert_eq!(pids.len(), 2, "etcd and kube-apiserver");
    assert!(dir.exists());
    assert!(pids.iter().all(|pid| alive(*pid)));
    plane.stop().await;
    assert!(!dir.exists(), "{} was removed", dir.display());
    for pid in pids {
        assert!(!alive(pid), "process {pid} has exited");
    }
    Ok(())
}

#[tokio::test]
async fn stopping_does_not_wait_for_clients_that_keep_a_watch_open() -> Result<()> {
    let plane = ControlPlane::start(ControlPlaneOptions {
        crd_dirs: vec![],
        ..ControlPlaneOptions::default()
    })
    .await?;
    let client = plane.client().await?;
    // A client that keeps watching, as a running operator does.
    let watch = tokio::spawn(async move {
        use futures::StreamExt;
        let namespaces: Api<Namespace> = Api::all(client);
        let mut stream = std::pin::pin!(kube::runtime::watcher(namespaces, Default::default()));
        while stream.next().await.is_some() {}
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dir = plane.dir().to_path_buf();
    let started = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(25), plane.stop()).await;
    watch.abort();
    assert!(stopped.is_ok(), "stop did not finish within 25 s");
    println!(
        "stopped in {:.1}s with a watch open",
        started.elapsed().as_secs_f64()
    );
    assert!(!dir.exists());
    Ok(())
}

fn alive(pid: u32) -> bool {
    // A zombie would still have a /proc entry; the supervisor reaps both children.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn up_command_serves_kubectl_and_the_aws_sdk_then_cleans_up_on_sigterm() -> Result<()> {
    let out = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .arg("up")
        .arg("--out-dir")
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line == "testbed ready")
    });
    let ready = tokio::time::timeout(Duration::from_secs(120), ready).await??;
    assert!(ready, "`testbed up` printed `testbed ready`");

    // kubectl with the written kubeconfig.
    let kubeconfig = out.path().join("kubeconfig");
    let kubectl = testbed::ControlPlaneBinaries::locate()?.kubectl;
    let output = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "ns"])
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The AWS SDK with the values from aws.env.
    let env: std::collections::HashMap<String, String> =
        std::fs::read_to_string(out.path().join("aws.env"))?
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(env["AWS_REGION"].clone()))
        .endpoint_url(env["AWS_ENDPOINT_URL"].clone())
        .credentials_provider(aws_sdk_rekognition::config::Credentials::new(
            env["AWS_ACCESS_KEY_ID"].clone(),
            env["AWS_SECRET_ACCESS_KEY"].clone(),
            None,
            None,
            "aws.env",
        ))
        .load()
        .await;
    let rekognition = aws_sdk_rekognition::Client::new(&sdk);
    rekognition
        .create_collection()
        .collection_id("from-aws-env")
        .send()
        .await?;
    let listed = rekognition.list_collections().send().await?;
    assert_eq!(listed.collection_ids(), ["from-aws-env"]);
    assert!(env.contains_key("REKOGNITION_EMULATOR_ADMIN_URL"));
    // boto3 and older AWS CLIs read only AWS_DEFAULT_REGION.
    assert_eq!(
        env.get("AWS_DEFAULT_REGION"),
        Some(&env["AWS_REGION"]),
        "aws.env sets AWS_DEFAULT_REGION as well as AWS_REGION"
    );

    // SIGTERM: stops everything and removes what it wrote.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let started = Instant::now();
    let exit = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert!(
        exit.success(),
        "testbed up exits cleanly on SIGTERM: {exit}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!kubeconfig.exists());
    Ok(())
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta(name),
        ..ConfigMap::default()
    }
}

#[tokio::test]
async fn the_api_server_restarts_on_the_same_port_with_the_same_etcd_and_credentials() -> Result<()>
{
    let plane = ControlPlane::start(ControlPlaneOptions {
        crd_dirs: vec![],
        ..ControlPlaneOptions::default()
    })
    .await?;
    let client = plane.client().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client, "default");
    config_maps
        .create(&PostParams::default(), &config_map("before-restart"))
        .await?;
    let before = plane.pids();

    plane.restart_api_server(ApiServerStop::Graceful).await?;

    let after = plane.pids();
    assert_eq!(before[0], after[0], "etcd kept running");
    assert_ne!(before[1], after[1], "a new kube-apiserver process");
    assert!(alive(after[1]) && !alive(before[1]));
    // The client made before the restart reconnects with its token, and finds what etcd kept.
    config_maps.get("before-restart").await?;
    config_maps
        .create(&PostParams::default(), &config_map("after-restart"))
        .await?;

    plane.restart_api_server(ApiServerStop::Kill).await?;
    config_maps.get("after-restart").await?;
    Ok(())
}

#[tokio::test]
async fn expiring_watches_makes_a_kube_watcher_get_410_gone_and_relist() -> Result<()> {
    use futures::StreamExt;
    use kube::runtime::watcher;

    let plane = ControlPlane::start(ControlPlaneOptions {
        crd_dirs: vec![],
        ..ControlPlaneOptions::default()
    })
    .await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(plane.client().await?, "default");
    let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let watching = config_maps.clone();
    let watch = tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(watching, watcher::Config::default()));
        while let Some(event) = stream.next().await {
            let what = match event {
                Ok(watcher::Event::Init) => "init".to_owned(),
                Ok(watcher::Event::InitDone) => "init-done".to_owned(),
                Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => {
                    format!("apply {}", cm.metadata.name.unwrap_or_default())
                }
                Ok(watcher::Event::Delete(_)) => "delete".to_owned(),
                Err(watcher::Error::WatchError(status)) => format!("watch error {}", status.code),
                Err(other) => format!("error {other}"),
            };
            if events.send(what).is_err() {
                break;
            }
        }
    });
    let (listed, log) = next_event(&mut seen, "init-done").await;
    assert!(listed, "the watcher listed: {log:?}");
    // An object the watcher sees through its watch, so it resumes from a revision of its own.
    config_maps
        .create(&PostParams::default(), &config_map("seen"))
        .await?;
    let (watched, log) = next_event(&mut seen, "apply seen").await;
    assert!(watched, "the watcher watched: {log:?}");

    let compacted = plane.expire_watches().await?;
    assert!(compacted > 0);

    let (gone, log) = next_event(&mut seen, "watch error 410").await;
    assert!(gone, "the resumed watch was answered 410 Gone: {log:?}");
    let (relisted, log) = next_event(&mut seen, "init-done").await;
    assert!(relisted, "the watcher relisted: {log:?}");
    watch.abort();
    Ok(())
}

/// Waits (up to the test bed's deadline) for the watcher to report `wanted`; returns whether it
/// did and everything it reported meanwhile.
async fn next_event(
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    wanted: &str,
) -> (bool, Vec<String>) {
    let mut log = Vec::new();
    let found = tokio::time::timeout(testbed::DEFAULT_WAIT, async {
        while let Some(event) = seen.recv().await {
            let matched = event == wanted;
            log.push(event);
            if matched {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    (found, log)
}
