//! What tenants can write (docs/tenancy.md, "Threat model") end to end: a tenant who holds every verb on
//! `rekognitioncollections` and their `status` in its own namespace (a generous namespace admin,
//! acting with its ServiceAccount's TokenRequest token, never the admin client) forges the
//! account, role, region and ARN pinned in its objects' status. None of it may take the operator
//! into an account or region the platform team's mapping and policy do not give the namespace:
//! a forged pin is `PolicyDenied`, with no AWS call in any account.
//!
//! Two namespaces are mapped to two roles in two accounts; a third role, in a third account, is
//! mapped to no namespace. The operator runs with `--require-mapping` and `--allowed-regions`
//! and watches team A's namespace.

use crate::support;

use anyhow::{Context as _, Result};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use rekognition_operator::model::crd::{
    CollectionSpec, FINALIZER, PAUSED_ANNOTATION, RekognitionCollection,
};
use serde_json::{Value, json};
use support::{Options, World, eventually};

const TEAM_A: &str = "210987654321";
const TEAM_B: &str = "310987654321";
const TEAM_C: &str = "410987654321";

/// Team A's namespace (the world's), team B's, the three roles, and team A's tenant.
struct Teams {
    world: World,
    team_b: String,
    role_a: String,
    role_b: String,
    role_c: String,
    /// Team A's objects, as team A's tenant ServiceAccount.
    tenant: Api<RekognitionCollection>,
    region: String,
}

impl Teams {
    async fn start(prefix: &str) -> Result<Self> {
        let mut world = World::without_operator(prefix, Options::default()).await?;
        let team_b = testbed::shared()
            .await?
            .namespace(&format!("{prefix}-b"))
            .await?
            .name;
        let role_a = world
            .role_for_operator(TEAM_A, "team-a", Some("ext-a"))
            .await?;
        let role_b = world
            .role_for_operator(TEAM_B, "team-b", Some("ext-b"))
            .await?;
        let role_c = world
            .role_for_operator(TEAM_C, "nobodys", Some("ext-c"))
            .await?;
        world
            .put_account_mapping(&format!(
                "{}:\n  roleArn: {role_a}\n  externalId: ext-a\n{team_b}:\n  roleArn: {role_b}\n  externalId: ext-b\n",
                world.ns.name
            ))
            .await?;
        let region = world.emulator.config().region.clone();
        let mut args = world.account_mapping_args();
        args.extend([
            "--require-mapping".into(),
            "--allowed-regions".into(),
            region.clone(),
        ]);
        world
            .start_operator(&Options {
                args,
                ..Options::default()
            })
            .await?;
        let tenant = generous_namespace_admin(&world.ns.client, &world.ns.name).await?;
        Ok(Self {
            tenant: Api::namespaced(tenant, &world.ns.name),
            world,
            team_b,
            role_a,
            role_b,
            role_c,
            region,
        })
    }

    /// Creates `name` as the tenant, paused (a pause pins nothing), so its status can be forged
    /// before the operator's first AWS call.
    async fn create_paused(&self, name: &str) -> Result<()> {
        let mut obj = RekognitionCollection::new(name, CollectionSpec::default());
        obj.metadata.annotations = Some([(PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
        self.tenant.create(&PostParams::default(), &obj).await?;
        self.world.wait_synced(name, "Paused").await?;
        Ok(())
    }

    /// Merges `status` into the object's status, as the tenant, through the status subresource.
    async fn forge_status(&self, name: &str, status: Value) -> Result<()> {
        self.tenant
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
            .context("the tenant patches status")?;
        Ok(())
    }

    async fn unpause(&self, name: &str) -> Result<()> {
        let patch = json!({ "metadata": { "annotations": { PAUSED_ANNOTATION: null } } });
        self.tenant
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Sets the spec tag `key` to `value`, as the tenant, and waits until it is on the collection
    /// of that name in team A's account.
    async fn retag_in_team_a(&self, name: &str, key: &str, value: &str) -> Result<()> {
        let tag = json!({ "spec": { "tags": { key: value } } });
        self.tenant
            .patch(name, &PatchParams::default(), &Patch::Merge(&tag))
            .await?;
        eventually(
            &format!("tag {key}={value} reaches {name} in team A's account"),
            support::WAIT,
            || async {
                Ok(self
                    .world
                    .aws_tags_in(TEAM_A, name)
                    .await?
                    .get(key)
                    .map(String::as_str)
                    == Some(value))
            },
        )
        .await
    }

    /// Deletes `name` as the tenant while its status is refused, and checks that the deletion
    /// waits (the refusal says so, the object stays) with no Rekognition call since `before`.
    async fn delete_and_see_it_wait(&self, name: &str, before: [u64; 4]) -> Result<()> {
        let done = self.world.triggers_done().await?;
        self.tenant.delete(name, &Default::default()).await?;
        eventually(
            "the refusal says the deletion waits",
            support::WAIT,
            || async {
                let obj = self.world.api.get(name).await?;
                Ok(obj.metadata.deletion_timestamp.is_some()
                    && support::ready_message(&obj).contains("cleaned up once this is resolved"))
            },
        )
        .await?;
        self.show(name).await?;
        // The refusal's own write comes back as a trigger; once the operator is quiet, no call.
        self.world.until_quiet(done, 1.0).await?;
        assert_eq!(
            self.calls().await?,
            before,
            "no Rekognition call in any account while {name}'s deletion waits"
        );
        Ok(())
    }

    /// Rekognition calls the emulator answered in each account, and in the operator's own.
    async fn calls(&self) -> Result<[u64; 4]> {
        let own = self.world.emulator.config().account_id.clone();
        let mut calls = [0; 4];
        for (slot, account) in calls.iter_mut().zip([TEAM_A, TEAM_B, TEAM_C, own.as_str()]) {
            *slot = self.world.rekognition_calls_in(account).await?;
        }
        Ok(calls)
    }

    /// Waits for PolicyDenied and returns its message, after printing what the tenant sees.
    async fn denied(&self, name: &str) -> Result<String> {
        let obj = self.world.wait_reason(name, "PolicyDenied").await?;
        let message = support::ready_message(&obj);
        self.show(name).await?;
        Ok(message)
    }

    /// Prints `kubectl get rekcol -o wide` and the object's Events, for the record.
    async fn show(&self, name: &str) -> Result<()> {
        let testbed = testbed::shared().await?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = self.world.kubeconfig_file(dir.path()).await?;
        let kubectl = &testbed.control_plane.binaries().kubectl;
        for args in [
            vec!["get", "rekcol", name, "-o", "wide"],
            vec![
                "get",
                "events",
                "--field-selector",
                &format!("involvedObject.name={name}"),
                "-o",
                "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message",
            ],
        ] {
            let output = std::process::Command::new(kubectl)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["--namespace", &self.world.ns.name])
                .args(&args)
                .output()?;
            println!(
                "$ kubectl {}\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

/// A ServiceAccount in `namespace` with what a generous namespace admin holds on the API group
/// (every verb on every resource, `status` included), and a client acting as it.
async fn generous_namespace_admin(admin: &kube::Client, namespace: &str) -> Result<kube::Client> {
    let roles: Api<Role> = Api::namespaced(admin.clone(), namespace);
    let role = Role {
        metadata: ObjectMeta {
            name: Some("namespace-admin".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["rekognition.aws-operators.dev".into()]),
            resources: Some(vec!["*".into()]),
            verbs: vec!["*".into()],
            ..PolicyRule::default()
        }]),
    };
    roles.create(&PostParams::default(), &role).await?;
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), namespace);
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("namespace-admin".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "namespace-admin".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "tenant".into(),
            namespace: Some(namespace.into()),
            ..Subject::default()
        }]),
    };
    bindings.create(&PostParams::default(), &binding).await?;
    let (client, _) = support::service_account_client(admin, namespace, "tenant").await?;
    Ok(client)
}

fn collection_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:rekognition:{region}:{account}:collection/{id}")
}

/// Forges a pin before the first AWS call (paused object), unpauses it, and checks the refusal:
/// PolicyDenied naming what was refused, and no Rekognition call in any account.
async fn forged_before_first_call(
    teams: &Teams,
    name: &str,
    status: Value,
    words: &[&str],
) -> Result<()> {
    teams.create_paused(name).await?;
    teams.forge_status(name, status).await?;
    let before = teams.calls().await?;
    let done = teams.world.triggers_done().await?;
    teams.unpause(name).await?;
    let message = teams.denied(name).await?;
    for word in words {
        assert!(
            message.contains(word),
            "the refusal names {word}: {message}"
        );
    }
    // The refusal's own write comes back as a trigger; once the operator is quiet, no call.
    teams.world.until_quiet(done, 1.0).await?;
    assert_eq!(
        teams.calls().await?,
        before,
        "no Rekognition call in any account (A, B, C, own)"
    );
    for account in [TEAM_A, TEAM_B, TEAM_C] {
        assert!(
            teams.world.collections_in(account).await?.is_empty(),
            "no collection in {account}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_pin_forged_to_another_namespaces_role_before_the_first_call_is_refused() -> Result<()> {
    let teams = Teams::start("forge-b").await?;
    let status = json!({
        "region": teams.region,
        "roleArn": teams.role_b,
        "accountId": TEAM_B,
    });
    forged_before_first_call(
        &teams,
        "stolen",
        status,
        &[&teams.role_b, &teams.world.ns.name, &teams.role_a],
    )
    .await
}

#[tokio::test]
async fn a_pin_forged_to_a_role_no_namespace_is_mapped_to_with_its_external_id_is_refused()
-> Result<()> {
    let teams = Teams::start("forge-c").await?;
    // The tenant knows the role's external ID too: the status may carry it (earlier versions
    // read status.externalId), and the operator must still not assume the role.
    let status = json!({
        "region": teams.region,
        "roleArn": teams.role_c,
        "externalId": "ext-c",
        "accountId": TEAM_C,
    });
    forged_before_first_call(&teams, "nobodys", status, &[&teams.role_c]).await
}

#[tokio::test]
async fn a_pin_copied_from_another_namespaces_object_is_refused() -> Result<()> {
    let teams = Teams::start("forge-copy").await?;
    // Team B's object "photos", Ready in team B's account, as the operator writes its status.
    let team_b = teams.world.api_in(&teams.team_b);
    team_b
        .create(
            &PostParams::default(),
            &RekognitionCollection::new("photos", CollectionSpec::default()),
        )
        .await?;
    let arn = collection_arn(&teams.region, TEAM_B, "photos");
    let genuine = json!({
        "collectionArn": arn,
        "collectionId": "photos",
        "faceModelVersion": "7.0",
        "region": teams.region,
        "roleArn": teams.role_b,
        "accountId": TEAM_B,
        "faceCount": 0,
        "userCount": 0,
        "observedGeneration": 1,
    });
    team_b
        .patch_status(
            "photos",
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": genuine })),
        )
        .await?;
    // Team A's tenant copies it onto an object of its own with the same collection ID.
    let copied = team_b
        .get_status("photos")
        .await?
        .status
        .context("team B's status")?;
    let copied = serde_json::to_value(copied)?;
    forged_before_first_call(&teams, "photos", copied, &[&teams.role_b]).await
}

#[tokio::test]
async fn a_pin_forged_after_the_first_call_is_refused_and_its_deletion_waits_without_aws_calls()
-> Result<()> {
    let teams = Teams::start("forge-after").await?;
    teams
        .tenant
        .create(
            &PostParams::default(),
            &RekognitionCollection::new("mine", CollectionSpec::default()),
        )
        .await?;
    let ready = teams.world.wait_reason("mine", "Available").await?;
    assert_eq!(
        ready.status.clone().and_then(|s| s.account_id).as_deref(),
        Some(TEAM_A)
    );
    assert_eq!(teams.world.collections_in(TEAM_A).await?, ["mine"]);

    // The tenant moves the pin to team B's role and changes a tag, so the operator looks again.
    teams
        .forge_status(
            "mine",
            json!({
                "roleArn": teams.role_b,
                "accountId": TEAM_B,
                "collectionArn": collection_arn(&teams.region, TEAM_B, "mine"),
            }),
        )
        .await?;
    let before = teams.calls().await?;
    let done = teams.world.triggers_done().await?;
    let tag = json!({ "spec": { "tags": { "team": "a" } } });
    teams
        .tenant
        .patch("mine", &PatchParams::default(), &Patch::Merge(&tag))
        .await?;
    let message = teams.denied("mine").await?;
    assert!(message.contains(&teams.role_b), "{message}");
    teams.world.until_quiet(done, 1.0).await?;
    assert_eq!(
        teams.calls().await?,
        before,
        "no Rekognition call in any account"
    );
    assert!(
        teams.world.collections_in(TEAM_B).await?.is_empty(),
        "nothing in team B's account"
    );

    // Deleted while the forged pin stands: nothing is deleted in any account, the finalizer stays.
    teams.delete_and_see_it_wait("mine", before).await?;
    assert_eq!(
        teams.world.collections_in(TEAM_A).await?,
        ["mine"],
        "team A's collection stays"
    );

    // The tenant takes its forgery back (clears the pins, so the mapping decides): the
    // deletion goes ahead in team A's account, where the collection is.
    teams
        .forge_status(
            "mine",
            json!({ "roleArn": null, "region": null, "accountId": null, "collectionArn": null }),
        )
        .await?;
    teams.world.wait_gone("mine").await?;
    assert!(
        teams.world.collections_in(TEAM_A).await?.is_empty(),
        "deleted in team A's account"
    );
    assert!(teams.world.collections_in(TEAM_B).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_region_pin_forged_outside_the_allowed_regions_is_refused() -> Result<()> {
    let teams = Teams::start("forge-region").await?;
    let status = json!({ "region": "eu-west-1", "roleArn": teams.role_a, "accountId": TEAM_A });
    forged_before_first_call(&teams, "elsewhere", status, &["eu-west-1"]).await?;

    // The tenant adds the operator's finalizer itself and deletes the object: the recorded
    // region is still refused, so nothing is asked of AWS there, not even to clean up.
    let finalizer = json!({ "metadata": { "finalizers": [FINALIZER] } });
    teams
        .tenant
        .patch(
            "elsewhere",
            &PatchParams::default(),
            &Patch::Merge(&finalizer),
        )
        .await?;
    let before = teams.calls().await?;
    teams.delete_and_see_it_wait("elsewhere", before).await?;
    // Once the forged region is gone, the deletion finds nothing in team A's region and ends.
    teams
        .forge_status("elsewhere", json!({ "region": null }))
        .await?;
    teams.world.wait_gone("elsewhere").await?;
    let own = teams.world.emulator.config().account_id.clone();
    for account in [TEAM_B, TEAM_C, own.as_str()] {
        assert_eq!(
            teams.world.rekognition_calls_in(account).await?,
            0,
            "no call in {account}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_forged_arn_never_leads_the_operator_to_another_collection() -> Result<()> {
    let teams = Teams::start("forge-arn").await?;
    teams
        .tenant
        .create(
            &PostParams::default(),
            &RekognitionCollection::new("mine", CollectionSpec::default()),
        )
        .await?;
    teams.world.wait_reason("mine", "Available").await?;
    // The tenant points its status at team B's collection "victim", then at "theirs" in team A's
    // own account, and changes a tag so the operator looks again.
    for (account, arn) in [
        (TEAM_B, collection_arn(&teams.region, TEAM_B, "victim")),
        (TEAM_A, collection_arn(&teams.region, TEAM_A, "theirs")),
    ] {
        let calls_before: Vec<_> = teams.world.admin().for_account(account).calls().await?;
        teams
            .forge_status("mine", json!({ "collectionArn": arn }))
            .await?;
        teams.retag_in_team_a("mine", "arn", account).await?;
        let calls: Vec<_> = teams.world.admin().for_account(account).calls().await?;
        let touched: Vec<_> = calls
            .iter()
            .skip(calls_before.len())
            .filter(|c| c.collection_id.as_deref() != Some("mine"))
            .collect();
        assert!(
            touched.is_empty(),
            "no call names another collection: {touched:?}"
        );
        // The status is written after the TagResource that the wait above saw: awaited too.
        let own = collection_arn(&teams.region, TEAM_A, "mine");
        eventually(
            "the status names the object's own collection again",
            support::WAIT,
            || async {
                let status = teams.world.api.get("mine").await?.status;
                Ok(status.and_then(|s| s.collection_arn).as_deref() == Some(own.as_str()))
            },
        )
        .await?;
    }
    // Deleted while the status points at team B's collection: the object's own collection is
    // the one deleted, and no call names another.
    teams
        .forge_status(
            "mine",
            json!({ "collectionArn": collection_arn(&teams.region, TEAM_B, "victim") }),
        )
        .await?;
    teams.tenant.delete("mine", &Default::default()).await?;
    teams.world.wait_gone("mine").await?;
    assert!(
        teams.world.collections_in(TEAM_A).await?.is_empty(),
        "the object's own collection is deleted"
    );
    for account in [TEAM_A, TEAM_B, TEAM_C] {
        let calls = teams.world.admin().for_account(account).calls().await?;
        let named: Vec<_> = calls
            .iter()
            .filter(|c| matches!(c.collection_id.as_deref(), Some("victim" | "theirs")))
            .collect();
        assert!(
            named.is_empty(),
            "no call in {account} names another collection: {named:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_genuine_pin_holds_across_an_operator_restart_and_a_forged_external_id_is_not_kept()
-> Result<()> {
    let mut teams = Teams::start("genuine").await?;
    teams
        .tenant
        .create(
            &PostParams::default(),
            &RekognitionCollection::new("kept", CollectionSpec::default()),
        )
        .await?;
    let ready = teams.world.wait_reason("kept", "Available").await?;
    let status = ready.status.clone().context("status")?;
    assert_eq!(status.role_arn.as_deref(), Some(teams.role_a.as_str()));
    // status.externalId is no field of the API any more: the API server drops it.
    teams
        .forge_status("kept", json!({ "externalId": "forged" }))
        .await?;
    let raw: Value = serde_json::to_value(teams.world.api.get("kept").await?)?;
    assert!(raw["status"].get("externalId").is_none(), "{raw}");

    // A new operator process (nothing remembered) keeps the object where it is.
    teams.world.stop_operator().await?;
    let mut args = teams.world.account_mapping_args();
    args.extend([
        "--require-mapping".into(),
        "--allowed-regions".into(),
        teams.region.clone(),
    ]);
    teams
        .world
        .start_operator(&Options {
            args,
            ..Options::default()
        })
        .await?;
    teams.retag_in_team_a("kept", "after", "restart").await?;
    teams.world.wait_reason("kept", "Available").await?;
    assert_eq!(teams.world.collections_in(TEAM_A).await?, ["kept"]);
    for account in [TEAM_B, TEAM_C] {
        assert_eq!(
            teams.world.rekognition_calls_in(account).await?,
            0,
            "nothing in {account}"
        );
    }
    Ok(())
}

/// The status is the operator's memory of what it owns, not proof: a tenant names another owner's
/// collection in the same account (spec.collectionId) and forges a status saying it is Ready and
/// Synced at this generation, with that collection's ARN. The operator proves ownership by the
/// tags the first time it looks at the object, so the claim is `AlreadyExists`: nothing of that
/// collection is disclosed in the tenant's status, nothing is changed, and the deletion leaves it.
#[tokio::test]
async fn a_status_forged_to_claim_another_owners_collection_is_refused() -> Result<()> {
    use rekognition_operator::model::crd::OWNER_TAG;
    let options = Options::default();
    let mut world = World::without_operator("forge-owner", options.clone()).await?;
    let other_owner = "0b8e6f2c-5d1a-4c3e-9f7a-2e4d6c8a0b1f";
    world
        .rekognition()
        .await
        .create_collection()
        .collection_id("victim")
        .tags(OWNER_TAG, other_owner)
        .send()
        .await?;
    world.start_operator(&options).await?;
    let tenant: Api<RekognitionCollection> = Api::namespaced(
        generous_namespace_admin(&world.ns.client, &world.ns.name).await?,
        &world.ns.name,
    );
    let mut obj = RekognitionCollection::new(
        "mine",
        CollectionSpec {
            collection_id: Some("victim".into()),
            ..CollectionSpec::default()
        },
    );
    obj.metadata.annotations = Some([(PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
    tenant.create(&PostParams::default(), &obj).await?;
    let paused = world.wait_synced("mine", "Paused").await?;
    let generation = paused.metadata.generation.context("generation")?;
    let condition = |type_: &str| {
        json!({
            "type": type_, "status": "True", "reason": "Available",
            "message": "collection victim exists", "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        })
    };
    let region = world.emulator.config().region.clone();
    tenant
        .patch_status(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": {
                "collectionArn": world.arn("victim"),
                "collectionId": "victim",
                "region": region,
                "observedGeneration": generation,
                "conditions": [condition("Ready"), condition("Synced")],
            }})),
        )
        .await?;
    let patch = json!({ "metadata": { "annotations": { PAUSED_ANNOTATION: null } } });
    tenant
        .patch("mine", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let refused = world.wait_reason("mine", "AlreadyExists").await?;
    let status = refused.status.clone().context("status")?;
    assert_eq!(
        (status.face_model_version.as_deref(), status.face_count),
        (None, None),
        "nothing of the other owner's collection in the tenant's status: {status:?}"
    );
    let message = support::ready_message(&refused);
    assert!(message.contains("victim"), "{message}");

    tenant.delete("mine", &Default::default()).await?;
    world.wait_gone("mine").await?;
    assert_eq!(
        world.aws_tags("victim").await?,
        [(OWNER_TAG.to_owned(), other_owner.to_owned())].into(),
        "the other owner's collection is untouched"
    );
    let writes: Vec<_> = world
        .admin()
        .calls_for("victim")
        .await?
        .into_iter()
        .filter(|c| {
            matches!(
                c.operation.as_str(),
                "DeleteCollection" | "TagResource" | "UntagResource"
            )
        })
        .collect();
    assert!(writes.is_empty(), "no write to it: {writes:?}");
    Ok(())
}

/// The forgery of [`a_status_forged_to_claim_another_owners_collection_is_refused`], made after the
/// operator has already refused the object: it read the other owner's tags once, which must prove
/// nothing for the next reconcile. The tenant names the collection of a live object in its own
/// namespace, and one claimed by an object of another namespace on the same AWS identity; it pauses
/// each refused object, writes its status as Ready and Available at the current generation with the
/// other collection's ARN and creation time, and unpauses. Each stays `AlreadyExists`, and nothing
/// of the other owner's collection reaches the tenant's status.
#[tokio::test]
async fn a_status_forged_after_the_refusal_still_shows_nothing_of_another_owners_collection()
-> Result<()> {
    use rekognition_operator::model::crd::{CLAIM_TAG, OWNER_TAG};
    let options = Options::default();
    let mut world = World::without_operator("forge-after", options.clone()).await?;
    // Another namespace's object on the same identity (the operator's own): its collection,
    // claimed for it, as the operator serving that namespace tagged it.
    let cluster = support::default_cluster_name(&world.ns.client).await?;
    let elsewhere = "9d1f2a3b-4c5d-4e6f-8a7b-0c1d2e3f4a5b";
    world
        .rekognition()
        .await
        .create_collection()
        .collection_id("theirs-elsewhere")
        .tags(OWNER_TAG, elsewhere)
        .tags(CLAIM_TAG, format!("{cluster}/team-b/theirs"))
        .send()
        .await?;
    world.start_operator(&options).await?;
    // A live object of the same namespace, with its own collection.
    world
        .create(
            "neighbour",
            CollectionSpec {
                collection_id: Some("theirs-here".into()),
                ..CollectionSpec::default()
            },
        )
        .await?;
    world.wait_reason("neighbour", "Available").await?;

    let tenant: Api<RekognitionCollection> = Api::namespaced(
        generous_namespace_admin(&world.ns.client, &world.ns.name).await?,
        &world.ns.name,
    );
    for (name, victim) in [
        ("copy-here", "theirs-here"),
        ("copy-elsewhere", "theirs-elsewhere"),
    ] {
        let obj = RekognitionCollection::new(
            name,
            CollectionSpec {
                collection_id: Some(victim.into()),
                ..CollectionSpec::default()
            },
        );
        tenant.create(&PostParams::default(), &obj).await?;
        world.wait_reason(name, "AlreadyExists").await?;

        let pause = json!({ "metadata": { "annotations": { PAUSED_ANNOTATION: "true" } } });
        tenant
            .patch(name, &PatchParams::default(), &Patch::Merge(&pause))
            .await?;
        let paused = world.wait_synced(name, "Paused").await?;
        let generation = paused.metadata.generation.context("generation")?;
        let created_at = world
            .admin()
            .collections()
            .await?
            .into_iter()
            .find(|c| c.collection_id == victim)
            .context("the victim's collection")?
            .created_at;
        // Synced keeps saying Paused, as the operator wrote it, so the pause is not said again.
        let condition = |type_: &str, status: &str, reason: &str| {
            json!({
                "type": type_, "status": status, "reason": reason,
                "message": format!("collection {victim} is available"),
                "observedGeneration": generation,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            })
        };
        let conditions = [
            condition("Ready", "True", "Available"),
            condition("Synced", "False", "Paused"),
        ];
        tenant
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": {
                    "collectionArn": world.arn(victim),
                    "collectionId": victim,
                    "createdAt": created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "region": world.emulator.config().region,
                    "observedGeneration": generation,
                    "conditions": conditions,
                }})),
            )
            .await?;
        let unpause = json!({ "metadata": { "annotations": { PAUSED_ANNOTATION: null } } });
        tenant
            .patch(name, &PatchParams::default(), &Patch::Merge(&unpause))
            .await?;

        // The unpause is handled once Synced no longer says Paused; its verdict is the refusal.
        let what = format!("{name}'s unpause handled");
        support::eventually(&what, support::WAIT, || async {
            let obj = world.api.get(name).await?;
            Ok(obj.synced_condition().is_some_and(|c| c.reason != "Paused"))
        })
        .await?;
        let obj = world.api.get(name).await?;
        let status = obj.status.clone().context("status")?;
        let ready = obj.ready_condition().context("Ready")?;
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "AlreadyExists"),
            "{name} (naming {victim}) is refused again, not shown as its own: {status:?}"
        );
        assert_eq!(
            (
                status.face_model_version.as_deref(),
                status.face_count,
                status.user_count
            ),
            (None, None, None),
            "nothing of {victim} in {name}'s status: {status:?}"
        );
    }
    for (victim, owner) in [
        (
            "theirs-here",
            world
                .api
                .get("neighbour")
                .await?
                .metadata
                .uid
                .context("uid")?,
        ),
        ("theirs-elsewhere", elsewhere.to_owned()),
    ] {
        assert_eq!(
            world.aws_tags(victim).await?.get(OWNER_TAG),
            Some(&owner),
            "{victim} keeps its owner"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// the chart's tenant roles

/// kube-controller-manager running only its ClusterRole aggregation controller against the test
/// bed, for as long as this value lives: the built-in admin, edit and view roles take in the
/// chart's tenant roles the way they do on a real cluster.
struct Aggregation {
    process: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Aggregation {
    async fn start() -> Result<Self> {
        let testbed = testbed::shared().await?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, testbed.control_plane.kubeconfig_yaml()?)?;
        let log = std::fs::File::create(dir.path().join("kube-controller-manager.log"))?;
        let process =
            tokio::process::Command::new(&testbed.control_plane.binaries().kube_controller_manager)
                .arg(format!("--kubeconfig={}", kubeconfig.display()))
                .args([
                    "--controllers=clusterrole-aggregation-controller",
                    "--leader-elect=false",
                    "--secure-port=0",
                ])
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .context("starting kube-controller-manager")?;
        let mut started = Self { process, dir };
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        if let Some(exit) = started.process.try_wait()? {
            let log =
                std::fs::read_to_string(started.dir.path().join("kube-controller-manager.log"))
                    .unwrap_or_default();
            anyhow::bail!("kube-controller-manager exited at once ({exit}):\n{log}");
        }
        Ok(started)
    }
}

/// `kubectl auth can-i <args>` as the identity in `kubeconfig`: "yes" or "no".
fn can_i(kubeconfig: &std::path::Path, namespace: &str, args: &[&str]) -> Result<String> {
    let kubectl = kubectl();
    let output = std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["auth", "can-i", "--namespace", namespace])
        .args(args)
        .output()?;
    let answer = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    println!("$ kubectl auth can-i {} -> {answer}", args.join(" "));
    Ok(answer)
}

/// The test bed's kubectl (the control plane is up by the time a test asks).
fn kubectl() -> std::path::PathBuf {
    static KUBECTL: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    KUBECTL
        .get_or_init(|| {
            testbed::ControlPlaneBinaries::locate()
                .expect("control-plane binaries")
                .kubectl
        })
        .clone()
}

fn forbidden<T: std::fmt::Debug>(result: kube::Result<T>) -> bool {
    matches!(result, Err(kube::Error::Api(ref e)) if e.code == 403)
}

/// The chart's tenant roles, aggregated into `edit` and `view`: a tenant bound to `edit` creates,
/// changes (the pause annotation too) and deletes its objects, and may not write their status;
/// one bound to `view` reads them and changes nothing.
#[tokio::test]
async fn a_tenant_bound_to_edit_works_with_its_objects_but_not_their_status() -> Result<()> {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let world = World::start("tenant-roles").await?;
    let ns = world.ns.name.clone();
    let admin = world.ns.client.clone();
    let _aggregation = Aggregation::start().await?;

    // The chart's tenant roles, rendered under a release name of their own (cluster-scoped names
    // must not meet the Helm lifecycle tests' release).
    let release = format!("{ns}-roles");
    let rendered = support::helm::helm_ok(
        None,
        &[
            "template",
            release.as_str(),
            support::helm::CHART,
            "--show-only",
            "templates/tenantroles.yaml",
        ],
    )?;
    let roles = support::helm::Rendered::parse(&rendered)?.all::<ClusterRole>("ClusterRole")?;
    assert_eq!(roles.len(), 2, "an edit and a view role");
    let cluster_roles: Api<ClusterRole> = Api::all(admin.clone());
    for role in &roles {
        cluster_roles.create(&PostParams::default(), role).await?;
    }

    let bind = |account: &'static str, role: &'static str| {
        let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &ns);
        let binding = RoleBinding {
            metadata: ObjectMeta {
                name: Some(account.into()),
                ..ObjectMeta::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: role.into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: account.into(),
                namespace: Some(ns.clone()),
                ..Subject::default()
            }]),
        };
        async move { bindings.create(&PostParams::default(), &binding).await }
    };
    bind("developer", "edit").await?;
    bind("auditor", "view").await?;
    let (developer, developer_config) =
        support::service_account_client(&admin, &ns, "developer").await?;
    let (auditor, auditor_config) = support::service_account_client(&admin, &ns, "auditor").await?;
    let (_dev_dir, developer_config) = support::helm::kubeconfig_file(&developer_config)?;
    let (_aud_dir, auditor_config) = support::helm::kubeconfig_file(&auditor_config)?;

    let resource = "rekognitioncollections.rekognition.aws-operators.dev";
    eventually("edit takes in the tenant role", support::WAIT, || async {
        Ok(can_i(&developer_config, &ns, &["create", resource])? == "yes")
    })
    .await?;
    for verb in [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ] {
        assert_eq!(
            can_i(&developer_config, &ns, &[verb, resource])?,
            "yes",
            "edit may {verb}"
        );
    }
    for verb in ["update", "patch"] {
        assert_eq!(
            can_i(
                &developer_config,
                &ns,
                &[verb, resource, "--subresource=status"]
            )?,
            "no",
            "edit may not {verb} status"
        );
    }
    eventually("view takes in the tenant role", support::WAIT, || async {
        Ok(can_i(&auditor_config, &ns, &["list", resource])? == "yes")
    })
    .await?;
    for verb in ["create", "patch", "delete"] {
        assert_eq!(can_i(&auditor_config, &ns, &[verb, resource])?, "no");
    }
    assert_eq!(
        can_i(
            &auditor_config,
            &ns,
            &["patch", resource, "--subresource=status"]
        )?,
        "no"
    );

    // Real requests, as the developer: create, pause, change, and the status refused.
    let objects: Api<RekognitionCollection> = Api::namespaced(developer, &ns);
    objects
        .create(
            &PostParams::default(),
            &RekognitionCollection::new("team-photos", CollectionSpec::default()),
        )
        .await?;
    world.wait_reason("team-photos", "Available").await?;
    let pause = json!({ "metadata": { "annotations": { PAUSED_ANNOTATION: "true" } } });
    objects
        .patch(
            "team-photos",
            &PatchParams::default(),
            &Patch::Merge(&pause),
        )
        .await?;
    world.wait_synced("team-photos", "Paused").await?;
    let resume = json!({
        "metadata": { "annotations": { PAUSED_ANNOTATION: null } },
        "spec": { "tags": { "team": "photos" } },
    });
    objects
        .patch(
            "team-photos",
            &PatchParams::default(),
            &Patch::Merge(&resume),
        )
        .await?;
    eventually("the tag reaches AWS", support::WAIT, || async {
        Ok(world
            .aws_tags("team-photos")
            .await?
            .get("team")
            .map(String::as_str)
            == Some("photos"))
    })
    .await?;
    let forged = json!({ "status": { "roleArn": "arn:aws:iam::310987654321:role/team-b" } });
    assert!(
        forbidden(
            objects
                .patch_status(
                    "team-photos",
                    &PatchParams::default(),
                    &Patch::Merge(&forged)
                )
                .await
        ),
        "the developer may not patch status"
    );
    // As the auditor: read, and nothing more.
    let read_only: Api<RekognitionCollection> = Api::namespaced(auditor, &ns);
    assert_eq!(read_only.list(&Default::default()).await?.items.len(), 1);
    assert!(forbidden(
        read_only
            .patch(
                "team-photos",
                &PatchParams::default(),
                &Patch::Merge(&pause)
            )
            .await
    ));
    assert!(forbidden(
        read_only.delete("team-photos", &Default::default()).await
    ));
    // The developer deletes it; the operator deletes the collection.
    objects.delete("team-photos", &Default::default()).await?;
    world.wait_gone("team-photos").await?;
    assert!(!world.aws_has("team-photos").await?);

    for role in &roles {
        let name = role.metadata.name.as_deref().context("role name")?;
        cluster_roles.delete(name, &Default::default()).await?;
    }
    Ok(())
}
