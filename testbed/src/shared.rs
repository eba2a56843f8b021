//! One control plane per test binary, a namespace per test. Emulators are not shared: each test
//! starts its own ([`crate::BackgroundEmulator`]), so faults and quotas never leak between tests.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::OnceCell;

use crate::{ControlPlane, ControlPlaneOptions};

/// The test bed that every test of one test binary shares.
pub struct SharedTestbed {
    pub control_plane: ControlPlane,
}

static SHARED: OnceCell<SharedTestbed> = OnceCell::const_new();

/// The shared test bed, started on first use. Fails with the reason (and the control plane's log
/// tails) when it cannot start: a test that needs it must fail, never skip.
pub async fn shared() -> Result<&'static SharedTestbed> {
    SHARED
        .get_or_try_init(|| async {
            let control_plane = ControlPlane::start(ControlPlaneOptions::default())
                .await
                .context("starting the shared control plane")?;
            Ok(SharedTestbed { control_plane })
        })
        .await
}

/// A namespace created for one test, with an admin client.
pub struct TestNamespace {
    pub name: String,
    pub client: kube::Client,
}

impl SharedTestbed {
    /// Creates a fresh namespace named `<prefix>-<random>`. Namespaces are left in place: the test
    /// bed has no namespace controller to finish a deletion, and the whole etcd goes away at exit.
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        let client = self.control_plane.client().await?;
        let suffix: u32 = rand::random();
        let name = format!("{prefix}-{suffix:08x}");
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(TestNamespace { name, client })
    }
}
