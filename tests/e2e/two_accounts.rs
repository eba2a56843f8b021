//! Two namespaces mapped to two AWS accounts, with the same collection ID in each: two
//! collections, one per account, each object's ARN naming its account, and deletion removing each
//! from its own account. The operator watches every namespace here, so this test has its test
//! binary (and control plane) to itself.

use crate::support;

use anyhow::Result;
use rekognition_operator::model::crd::{CollectionSpec, RekognitionCollection};
use support::{Options, World};

const TEAM_A: &str = "210987654321";
const TEAM_B: &str = "310987654321";

#[tokio::test]
async fn two_namespaces_mapped_to_two_accounts_each_get_their_own_collection() -> Result<()> {
    let mut world = World::alone("two-accounts", Options::default()).await?;
    let team_b = world.namespace("team-b").await?;
    let role_a = world
        .role_for_operator(TEAM_A, "team-a", Some("ext-a"))
        .await?;
    let role_b = world.role_for_operator(TEAM_B, "team-b", None).await?;
    world
        .put_account_mapping(&format!(
            "{}:\n  roleArn: {role_a}\n  externalId: ext-a\n{}:\n  roleArn: {role_b}\n",
            world.ns.name, team_b.name
        ))
        .await?;
    world
        .start_operator(&Options {
            args: world.account_mapping_args(),
            all_namespaces: true,
            ..Options::default()
        })
        .await?;

    let same_id = || CollectionSpec {
        collection_id: Some("photos".into()),
        ..CollectionSpec::default()
    };
    let api_b = world.api_in(&team_b.name);
    world.create("photos", same_id()).await?;
    api_b
        .create(
            &Default::default(),
            &RekognitionCollection::new("photos", same_id()),
        )
        .await?;
    let a = world.wait_reason("photos", "Available").await?;
    support::eventually("team B's object is Available", support::WAIT, || async {
        Ok(api_b
            .get("photos")
            .await?
            .ready_condition()
            .is_some_and(|c| c.reason == "Available"))
    })
    .await?;
    let b = api_b.get("photos").await?;
    let region = world.emulator.config().region.clone();
    for (obj, account) in [(&a, TEAM_A), (&b, TEAM_B)] {
        let status = obj.status.clone().unwrap_or_default();
        assert_eq!(
            status.collection_arn,
            Some(format!(
                "arn:aws:rekognition:{region}:{account}:collection/photos"
            ))
        );
        assert_eq!(status.account_id.as_deref(), Some(account));
        assert_eq!(world.collections_in(account).await?, ["photos"]);
    }
    assert!(
        world
            .collections_in(&world.emulator.config().account_id)
            .await?
            .is_empty(),
        "nothing in the operator's own account"
    );

    // Deleting team B's object removes team B's collection only; then team A's.
    api_b.delete("photos", &Default::default()).await?;
    support::eventually("team B's object is gone", support::WAIT, || async {
        Ok(api_b.get_opt("photos").await?.is_none())
    })
    .await?;
    assert!(world.collections_in(TEAM_B).await?.is_empty());
    assert_eq!(world.collections_in(TEAM_A).await?, ["photos"]);
    world.delete("photos").await?;
    world.wait_gone("photos").await?;
    assert!(world.collections_in(TEAM_A).await?.is_empty());
    Ok(())
}
