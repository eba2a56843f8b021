//! Many AWS accounts end to end: the platform team's mapping (a watched ConfigMap) sends a
//! namespace's collections to the account of an assumed role; a mapping change moves only new
//! objects, and existing ones stay only where the mapping's formerRoles keep them; a refused AssumeRole names the role and reaches no Rekognition API; requireMapping
//! refuses unmapped namespaces with no AWS call.

use crate::support;

use anyhow::{Context as _, Result};
use rekognition_operator::model::crd::CollectionSpec;
use support::{Options, World, eventually};

const TEAM_A: &str = "210987654321";
const TEAM_B: &str = "310987654321";

fn mapping(namespace: &str, role_arn: &str, external_id: Option<&str>) -> String {
    match external_id {
        Some(id) => format!("{namespace}:\n  roleArn: {role_arn}\n  externalId: {id}\n"),
        None => format!("{namespace}:\n  roleArn: {role_arn}\n"),
    }
}

/// Starts the operator with the mapping ConfigMap already holding `initial` (the chart installs
/// both together), so no object is reconciled before the mapping is known.
async fn start_with_mapping(world: &mut World, initial: &str, extra: &[&str]) -> Result<()> {
    let mut args = world.account_mapping_args();
    args.extend(extra.iter().map(|a| a.to_string()));
    world.put_account_mapping(initial).await?;
    world
        .start_operator(&Options {
            args,
            ..Options::default()
        })
        .await
}

/// After a mapping change, creates `<prefix>-<n>` objects until one shows `wanted` (the watch
/// applies the change within moments, but nothing tells the test when); with `delete_early`,
/// deletes those created before the change reached the operator. Returns the one that shows it.
async fn create_until<F>(
    world: &World,
    prefix: &str,
    delete_early: bool,
    wanted: F,
) -> Result<String>
where
    F: Fn(&rekognition_operator::model::crd::RekognitionCollection) -> bool,
{
    let mut early = Vec::new();
    let mut found = None;
    for n in 0..20 {
        let name = format!("{prefix}-{n}");
        world.create(&name, CollectionSpec::default()).await?;
        eventually(&format!("{name} settles"), support::WAIT, || async {
            let obj = world.api.get(&name).await?;
            Ok(obj
                .ready_condition()
                .is_some_and(|c| c.reason != "Creating"))
        })
        .await?;
        if wanted(&world.api.get(&name).await?) {
            found = Some(name);
            break;
        }
        early.push(name);
    }
    for name in early.iter().filter(|_| delete_early) {
        world.delete(name).await?;
        world.wait_gone(name).await?;
    }
    found.ok_or_else(|| anyhow::anyhow!("no {prefix} object showed the mapping change"))
}

#[tokio::test]
async fn a_mapping_change_moves_new_objects_and_keeps_existing_ones_only_where_former_roles_say()
-> Result<()> {
    let mut world = World::without_operator("accounts-move", Options::default()).await?;
    let role_a = world
        .role_for_operator(TEAM_A, "team-a", Some("ext-a"))
        .await?;
    let role_b = world.role_for_operator(TEAM_B, "team-b", None).await?;
    let ns = world.ns.name.clone();
    start_with_mapping(&mut world, &mapping(&ns, &role_a, Some("ext-a")), &[]).await?;
    world.create("first", CollectionSpec::default()).await?;
    let first = world.wait_reason("first", "Available").await?;
    let status = first.status.clone().unwrap_or_default();
    assert_eq!(status.role_arn.as_deref(), Some(role_a.as_str()));
    assert_eq!(status.account_id.as_deref(), Some(TEAM_A));
    assert!(
        status
            .collection_arn
            .as_deref()
            .is_some_and(|arn| arn.contains(&format!(":{TEAM_A}:collection/first"))),
        "{status:?}"
    );
    assert_eq!(world.collections_in(TEAM_A).await?, ["first"]);

    // The platform team moves the namespace to team B's account, without a restart, and keeps
    // team A's role for the objects already there (formerRoles).
    let moved = format!(
        "{}  formerRoles:\n    - roleArn: {role_a}\n      externalId: ext-a\n",
        mapping(&ns, &role_b, None)
    );
    world.put_account_mapping(&moved).await?;
    let second = create_until(&world, "moved", true, |obj| {
        obj.status.as_ref().and_then(|s| s.account_id.as_deref()) == Some(TEAM_B)
    })
    .await?;
    world.wait_reason(&second, "Available").await?;
    assert_eq!(world.collections_in(TEAM_B).await?, vec![second.clone()]);
    let calls_a = world.rekognition_calls_in(TEAM_A).await?;
    // The existing object stays where it is, pinned: a spec change still goes to team A.
    let tag = |value: &str| serde_json::json!({ "spec": { "tags": { "team": value } } });
    let patch_first = |value: String| {
        let api = world.api.clone();
        let patch = tag(&value);
        async move {
            api.patch(
                "first",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        }
    };
    patch_first("a".into()).await?;
    let tagged = |value: String| {
        let world = &world;
        async move {
            let collections = world.admin().for_account(TEAM_A).collections().await?;
            Ok(collections
                .iter()
                .any(|c| c.collection_id == "first" && c.tags.get("team") == Some(&value)))
        }
    };
    eventually("the tag reaches team A's collection", support::WAIT, || {
        tagged("a".into())
    })
    .await?;
    assert!(world.rekognition_calls_in(TEAM_A).await? > calls_a);
    assert_eq!(world.collections_in(TEAM_A).await?, ["first"]);
    assert_eq!(world.collections_in(TEAM_B).await?, vec![second.clone()]);
    let first = world.api.get("first").await?;
    assert_eq!(
        first.status.and_then(|s| s.role_arn).as_deref(),
        Some(role_a.as_str())
    );

    // Without formerRoles the pin to team A's role is no longer the platform team's word: the
    // object is refused until the role is listed again.
    world
        .put_account_mapping(&mapping(&ns, &role_b, None))
        .await?;
    // Nothing tells the test when the operator has the new mapping: change the spec until a
    // reconcile under it refuses the object.
    let mut last_tag = String::new();
    let mut refused = None;
    for attempt in 0..20 {
        last_tag = format!("refused-{attempt}");
        patch_first(last_tag.clone()).await?;
        if let Ok(obj) = world
            .wait_reason_within("first", "PolicyDenied", std::time::Duration::from_secs(3))
            .await
        {
            refused = Some(obj);
            break;
        }
    }
    let refused = refused.context("first was never refused under the new mapping")?;
    let message = support::ready_message(&refused);
    assert!(
        message.contains(&role_a) && message.contains("formerRoles"),
        "names the role and the way out: {message}"
    );
    let calls_a = world.rekognition_calls_in(TEAM_A).await?;
    world.put_account_mapping(&moved).await?;
    eventually(
        "the tag reaches team A's collection again",
        support::WAIT,
        || tagged(last_tag.clone()),
    )
    .await?;
    world.wait_reason("first", "Available").await?;
    assert!(world.rekognition_calls_in(TEAM_A).await? > calls_a);
    assert_eq!(
        world.collections_in(TEAM_B).await?,
        vec![second.clone()],
        "first never went to team B"
    );

    // Deletion removes each collection from its own account.
    world.delete("first").await?;
    world.delete(&second).await?;
    world.wait_gone("first").await?;
    world.wait_gone(&second).await?;
    assert!(world.collections_in(TEAM_A).await?.is_empty());
    assert!(world.collections_in(TEAM_B).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_refused_assume_role_is_credentials_unavailable_naming_the_role() -> Result<()> {
    let mut world = World::without_operator("accounts-refused", Options::default()).await?;
    let ns = world.ns.name.clone();
    // Trusted only with an external ID the mapping does not send…
    let wants_id = world
        .role_for_operator(TEAM_A, "wants-external-id", Some("the-right-one"))
        .await?;
    start_with_mapping(
        &mut world,
        &mapping(&ns, &wants_id, Some("a-wrong-one")),
        &[],
    )
    .await?;
    world.create("wrong-id", CollectionSpec::default()).await?;
    let obj = world
        .wait_reason("wrong-id", "CredentialsUnavailable")
        .await?;
    let message = support::ready_message(&obj);
    assert!(message.contains(&wants_id), "names the role: {message}");

    // …and a role whose trust policy names someone else entirely.
    let untrusted = world
        .admin()
        .put_role(&rekognition_emulator::RoleConfig {
            account_id: TEAM_B.into(),
            name: "trusts-nobody-here".into(),
            max_session_duration_seconds: 3600,
            trust: vec![rekognition_emulator::TrustRule::Principal {
                principal: "arn:aws:iam::999999999999:root".into(),
                external_id: None,
            }],
        })
        .await?
        .arn;
    world
        .put_account_mapping(&mapping(&ns, &untrusted, None))
        .await?;
    create_until(&world, "untrusted", false, |obj| {
        obj.ready_condition()
            .is_some_and(|c| c.reason == "CredentialsUnavailable" && c.message.contains(&untrusted))
    })
    .await?;
    // A signed STS call is logged in the caller's account: the operator's own.
    let counters = world.admin().counters().await?;
    assert!(
        counters.get("AssumeRole", "AccessDenied") >= 2,
        "STS refused both: {counters:?}"
    );
    for account in [TEAM_A, TEAM_B, world.emulator.config().account_id.as_str()] {
        assert_eq!(
            world.rekognition_calls_in(account).await?,
            0,
            "no call reached Rekognition in {account}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn with_require_mapping_an_unmapped_namespace_is_refused_with_no_aws_call() -> Result<()> {
    let mut world = World::without_operator("accounts-required", Options::default()).await?;
    start_with_mapping(&mut world, "", &["--require-mapping"]).await?;
    world.create("unmapped", CollectionSpec::default()).await?;
    let obj = world.wait_reason("unmapped", "PolicyDenied").await?;
    let message = support::ready_message(&obj);
    assert!(message.contains("requireMapping"), "{message}");
    let status = obj.status.unwrap_or_default();
    assert_eq!(
        (status.region, status.role_arn),
        (None, None),
        "a refusal pins nothing"
    );
    assert_eq!(world.call_totals().await?.total, 0, "no AWS call");
    world.delete("unmapped").await?;
    world.wait_gone("unmapped").await?;
    Ok(())
}

/// The platform team answers a PolicyDenied by mapping the namespace: the refused object goes
/// ahead with no spec change and no restart, in the newly mapped account.
#[tokio::test]
async fn an_unmapped_object_goes_ahead_once_its_namespace_is_mapped() -> Result<()> {
    let mut world = World::without_operator("accounts-later", Options::default()).await?;
    let role_a = world.role_for_operator(TEAM_A, "team-a", None).await?;
    start_with_mapping(&mut world, "", &["--require-mapping"]).await?;
    world.create("waiting", CollectionSpec::default()).await?;
    world.wait_reason("waiting", "PolicyDenied").await?;
    assert_eq!(
        world.call_totals().await?.total,
        0,
        "no AWS call while refused"
    );

    let ns = world.ns.name.clone();
    world
        .put_account_mapping(&mapping(&ns, &role_a, None))
        .await?;
    let obj = world.wait_reason("waiting", "Available").await?;
    let status = obj.status.unwrap_or_default();
    assert_eq!(status.account_id.as_deref(), Some(TEAM_A), "{status:?}");
    assert_eq!(world.collections_in(TEAM_A).await?, ["waiting"]);
    world.delete("waiting").await?;
    world.wait_gone("waiting").await?;
    assert!(world.collections_in(TEAM_A).await?.is_empty());
    Ok(())
}
