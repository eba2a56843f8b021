//! `testbed up`: a real control plane and the Rekognition emulator, for people and scripts.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use testbed::{
    BackgroundEmulator, ControlPlane, ControlPlaneOptions, aws_env_lines, workspace_root,
};

#[derive(Parser)]
#[command(
    version,
    about = "Real kube-apiserver + etcd and the Rekognition emulator on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start everything, write target/testbed/{kubeconfig,aws.env}, print `testbed ready`, and run
    /// until SIGINT or SIGTERM.
    Up(Up),
}

#[derive(clap::Args)]
struct Up {
    /// Where to write kubeconfig and aws.env.
    #[arg(long, default_value_os_t = workspace_root().join("target/testbed"))]
    out_dir: PathBuf,
    /// Directories of CRD manifests to install (default: the repository's crds/).
    #[arg(long = "crds")]
    crd_dirs: Vec<PathBuf>,
    /// Emulator quota per operation in calls per second (0 turns quotas off).
    #[arg(long, default_value_t = 5.0)]
    emulator_rate: f64,
    /// Emulator state file, so collections survive restarts of the test bed.
    #[arg(long)]
    emulator_state_file: Option<PathBuf>,
    /// Also run a node (kubelet, kube-proxy, containerd) and kube-scheduler, so that pods
    /// run; needs root. The API server and the emulator then listen on the host's end of
    /// the node's link, which pods reach.
    #[arg(long)]
    node: bool,
    /// With --node: images to import into the node's runtime, as NAME=TARBALL (a `docker
    /// save` tarball), so that pods find NAME without a registry.
    #[arg(long = "image", value_name = "NAME=TARBALL", requires = "node")]
    images: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The readiness poll expects failures while the API server starts; kube's client
                // logs each as an error, which would only alarm.
                .unwrap_or_else(|_| "info,kube_client::client::builder=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Up(options) => up(options).await,
    }
}

async fn up(up: Up) -> Result<()> {
    let Up {
        out_dir,
        crd_dirs,
        emulator_rate,
        emulator_state_file,
        node,
        images,
    } = up;
    let mut options = ControlPlaneOptions {
        node,
        ..ControlPlaneOptions::default()
    };
    if !crd_dirs.is_empty() {
        options.crd_dirs = crd_dirs;
    }
    let control_plane = ControlPlane::start(options).await?;
    if let Some(node) = control_plane.node() {
        for image in &images {
            let (name, tarball) = image
                .split_once('=')
                .with_context(|| format!("--image {image}: expected NAME=TARBALL"))?;
            node.import_image(std::path::Path::new(tarball), name)?;
        }
    }
    let mut config = testbed::emulator_config();
    config.quota.rate_per_sec = emulator_rate;
    config.state_file = emulator_state_file;
    let emulator = match control_plane.node() {
        Some(node) => BackgroundEmulator::start_on(config, node.addresses().host)?,
        None => BackgroundEmulator::start(config)?,
    };

    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let kubeconfig = out_dir.join("kubeconfig");
    std::fs::write(&kubeconfig, control_plane.kubeconfig_yaml()?)?;
    let aws_env = out_dir.join("aws.env");
    std::fs::write(&aws_env, aws_env_lines(&emulator))?;

    println!("kube-apiserver:  {}", control_plane.server());
    println!("emulator:        {}", emulator.endpoint_url());
    println!("emulator admin:  {}", emulator.admin_url());
    if let Some(node) = control_plane.node() {
        println!(
            "node:            {} at {} (logs in {})",
            testbed::node::NODE_NAME,
            node.addresses().node,
            node.dir().display()
        );
    }
    println!("export KUBECONFIG={}", kubeconfig.display());
    println!(". {}", aws_env.display());
    println!("testbed ready");

    wait_for_shutdown_signal().await?;
    eprintln!("testbed: stopping");
    drop(emulator);
    control_plane.stop().await;
    let _ = std::fs::remove_file(&kubeconfig);
    let _ = std::fs::remove_file(&aws_env);
    Ok(())
}

async fn wait_for_shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}
