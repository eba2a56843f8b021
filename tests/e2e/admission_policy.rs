//! The chart's tenancy policy on the real API server: the ValidatingAdmissionPolicy refuses at
//! `kubectl apply` time with a message naming the rule, and an object admitted before the policy
//! existed is refused by the operator (running with the Deployment's own tenancy flags) with
//! PolicyDenied and no AWS call. Its own test binary: the policy is cluster-wide.

use crate::support;

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use rekognition_operator::model::crd::{CollectionSpec, ManagementPolicy, RekognitionCollection};
use support::{Options, World, ensure_namespace};

const SNAPSHOT: &str = "deploy/helm/snapshots/tenancy.yaml";
const EXTERNAL_LABEL: &str = "rekognition.aws-operators.dev/external-collections";

fn documents() -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(testbed::workspace_root().join(SNAPSHOT))?;
    let mut docs = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_json::to_value(<serde_yaml::Value as serde::Deserialize>::deserialize(
            document,
        )?)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Applies the rendered policy, its binding and its parameters. The binding is scoped to
/// `namespace`: the end-to-end tier shares one API server, and the chart's binding, cluster-wide
/// as a platform team wants it, would refuse the other tests' unprefixed collection IDs.
async fn install_policy(
    client: &kube::Client,
    docs: &[serde_json::Value],
    namespace: &str,
) -> Result<()> {
    for doc in docs {
        let mut doc = doc.clone();
        if doc["kind"] == "ValidatingAdmissionPolicyBinding" {
            doc["spec"]["matchResources"] = serde_json::json!({"namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": namespace}
            }});
        }
        let doc = &doc;
        let kind = doc["kind"].as_str().unwrap_or_default();
        let (resource, namespaced) = match kind {
            "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding" => {
                let plural = if kind == "ValidatingAdmissionPolicy" {
                    "validatingadmissionpolicies"
                } else {
                    "validatingadmissionpolicybindings"
                };
                let gvk = GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
                (ApiResource::from_gvk_with_plural(&gvk, plural), false)
            }
            "ConfigMap"
                if doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with("-tenancy") =>
            {
                let gvk = GroupVersionKind::gvk("", "v1", "ConfigMap");
                (ApiResource::from_gvk_with_plural(&gvk, "configmaps"), true)
            }
            _ => continue,
        };
        let object: DynamicObject = serde_json::from_value(doc.clone())?;
        let name = object.metadata.name.clone().context("name")?;
        let api: Api<DynamicObject> = if namespaced {
            let ns = object.metadata.namespace.clone().context("namespace")?;
            ensure_namespace(client, &ns).await?;
            Api::namespaced_with(client.clone(), &ns, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        };
        api.patch(
            &name,
            &PatchParams::apply("tenancy-test").force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {kind} {name}"))?;
    }
    Ok(())
}

fn object(name: &str, spec: CollectionSpec) -> RekognitionCollection {
    RekognitionCollection {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

/// Creates `obj` as a dry run and returns the API server's refusal message, if any.
async fn refusal(
    api: &Api<RekognitionCollection>,
    obj: &RekognitionCollection,
) -> Result<Option<String>> {
    match api
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            obj,
        )
        .await
    {
        Ok(_) => Ok(None),
        Err(kube::Error::Api(status)) => Ok(Some(status.message)),
        Err(error) => Err(error.into()),
    }
}

#[tokio::test]
async fn the_tenancy_policy_refuses_at_admission_and_the_operator_refuses_what_came_before()
-> Result<()> {
    let docs = documents().context("the rendered tenancy snapshot (run the chart test)")?;
    let args: Vec<String> = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .and_then(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .cloned()
        })
        .context("the Deployment's args")?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .filter(|a| {
            [
                "--allowed-regions",
                "--require-namespace-prefix",
                "--prefix-exempt-namespaces",
                "--external-powers",
            ]
            .iter()
            .any(|flag| a.starts_with(flag))
        })
        .collect();
    assert!(
        args.len() >= 4,
        "the chart passes the tenancy flags: {args:?}"
    );
    let options = Options {
        args,
        ..Options::default()
    };
    let mut world = World::without_operator("tenant", options.clone()).await?;
    let ns = world.ns.name.clone();
    let prefix = format!("{ns}-");

    // Admitted before the policy exists: an Adopt object in an unlabelled namespace.
    world
        .create(
            &format!("{prefix}early"),
            CollectionSpec {
                management_policy: ManagementPolicy::Adopt,
                ..CollectionSpec::default()
            },
        )
        .await?;

    install_policy(&world.ns.client, &docs, &ns).await?;
    let probe = object("no-prefix", CollectionSpec::default());
    support::eventually(
        "the admission policy takes effect",
        Duration::from_secs(30),
        || async { Ok(refusal(&world.api, &probe).await?.is_some()) },
    )
    .await?;

    let adopt = CollectionSpec {
        management_policy: ManagementPolicy::Adopt,
        ..CollectionSpec::default()
    };
    let cases = [
        (
            object("photos", CollectionSpec::default()),
            "must start with",
        ),
        (
            object(
                &format!("{prefix}far"),
                CollectionSpec {
                    region: Some("ap-south-1".into()),
                    ..CollectionSpec::default()
                },
            ),
            "region ap-south-1 is not allowed",
        ),
        (
            object(&format!("{prefix}legacy"), adopt.clone()),
            EXTERNAL_LABEL,
        ),
    ];
    for (obj, words) in &cases {
        let message = refusal(&world.api, obj).await?.with_context(|| {
            format!(
                "{} should be refused",
                obj.metadata.name.clone().unwrap_or_default()
            )
        })?;
        assert!(message.contains(words), "{message}");
    }
    assert_eq!(
        refusal(
            &world.api,
            &object(&format!("{prefix}ok"), CollectionSpec::default())
        )
        .await?,
        None
    );

    // A namespace the platform team labels may adopt.
    let namespaces: Api<Namespace> = Api::all(world.ns.client.clone());
    let label = serde_json::json!({ "metadata": { "labels": { EXTERNAL_LABEL: "true" } } });
    namespaces
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&label))
        .await?;
    let legacy = object(&format!("{prefix}legacy"), adopt.clone());
    support::eventually(
        "a labelled namespace may adopt",
        Duration::from_secs(30),
        || async { Ok(refusal(&world.api, &legacy).await?.is_none()) },
    )
    .await?;
    namespaces
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(
                &serde_json::json!({ "metadata": { "labels": { EXTERNAL_LABEL: null } } }),
            ),
        )
        .await?;

    // The operator, with the Deployment's tenancy flags, refuses what was admitted before.
    world.start_operator(&options).await?;
    let early = world
        .wait_reason(&format!("{prefix}early"), "PolicyDenied")
        .await?;
    let message = support::ready_message(&early);
    assert!(message.contains("spec.managementPolicy"), "{message}");
    assert!(
        world.admin().calls().await?.is_empty(),
        "no AWS call for a refused object"
    );
    // Its deletion is not blocked by the policy either.
    world.delete(&format!("{prefix}early")).await?;
    world.wait_gone(&format!("{prefix}early")).await?;
    Ok(())
}
