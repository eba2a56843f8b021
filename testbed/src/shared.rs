//! One control plane and one emulator per test binary, a namespace per test.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::OnceCell;

use crate::{BackgroundEmulator, ControlPlane, ControlPlaneOptions};

/// The test bed that every test of one test binary shares.
pub struct SharedTestbed {
    pub control_plane: ControlPlane,
    /// A shared emulator with quotas off, for tests that do not change its faults or quotas.
    /// Tests that do should start their own [`BackgroundEmulator`].
    pub emulator: BackgroundEmulator,
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
            let mut config = crate::with_generated_credentials(Default::default());
            config.quota.rate_per_sec = 0.0;
            let emulator = BackgroundEmulator::start(config)?;
            Ok(SharedTestbed {
                control_plane,
                emulator,
            })
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
