//! Scenario tests of the reconciler, in milliseconds: the real [`reconcile`] against an AWS kept
//! in memory behind the operator's own [`CollectionApi`] and a mocked API server (`tower-test`)
//! that answers one object and its Events as the real one does (merge patches with their
//! resourceVersion precondition, the status subresource, the finalizer that holds a deletion).
//! Each scenario states the requests it expects, in order, API server and AWS together.
//!
//! What needs the real API server (admission, the watch, server-side apply's field ownership,
//! RBAC) stays in the end-to-end tests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};

use super::*;
use crate::adapters::aws::{AwsError, AwsErrorKind, CollectionDescription, Tags};
use crate::core::accounts::Mapping;
use crate::core::ownership::ClusterIdentity;
use crate::core::policy::Rules;
use crate::model::crd::{
    CLAIM_TAG, CollectionSpec, DeletionPolicy, ManagementPolicy, PAUSED_ANNOTATION,
    RECONCILE_REQUEST_ANNOTATION, REGION_PIN_ANNOTATION,
};

const NAMESPACE: &str = "team";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const CLUSTER: &str = "scenario-cluster";

/// One request the reconcile made, as a scenario states it: `PATCH object`, `PATCH status`,
/// `GET object`, `POST Event Created`, or an AWS operation with the collection ID.
type Seen = String;

/// Rekognition, in memory: collections by ID with their tags, the calls made, and failures to
/// answer with next.
#[derive(Clone, Default)]
struct MemoryAws(Arc<Mutex<AwsState>>);

#[derive(Default)]
struct AwsState {
    collections: BTreeMap<String, Tags>,
    /// The next calls of an operation fail with this kind, first in first out.
    failures: VecDeque<(&'static str, AwsErrorKind)>,
    /// The next CreateCollection creates the collection, then its answer is lost (a timeout).
    lose_create_answer: bool,
    calls: Vec<Seen>,
}

fn arn(id: &str) -> String {
    format!("arn:aws:rekognition:{REGION}:{ACCOUNT}:collection/{id}")
}

impl MemoryAws {
    fn state(&self) -> std::sync::MutexGuard<'_, AwsState> {
        self.0.lock().expect("aws state")
    }

    /// Records the call; answers the failure queued for it, if any.
    fn call(&self, operation: &'static str, id: &str) -> Result<(), AwsError> {
        let mut state = self.state();
        state.calls.push(format!("{operation} {id}"));
        match state.failures.front() {
            Some((op, kind)) if *op == operation => {
                let kind = *kind;
                state.failures.pop_front();
                Err(AwsError {
                    kind,
                    operation,
                    code: None,
                    message: format!("{operation} failed ({kind:?}), as the scenario asked"),
                })
            }
            _ => Ok(()),
        }
    }

    fn fail_next(&self, operation: &'static str, kind: AwsErrorKind) {
        self.state().failures.push_back((operation, kind));
    }

    fn put(&self, id: &str, tags: Tags) {
        self.state().collections.insert(id.to_owned(), tags);
    }

    fn tags(&self, id: &str) -> Option<Tags> {
        self.state().collections.get(id).cloned()
    }

    fn calls(&self) -> Vec<Seen> {
        std::mem::take(&mut self.state().calls)
    }
}

fn id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl CollectionApi for MemoryAws {
    async fn create(&self, _: &Target, id: &str, tags: &Tags) -> Result<CreateOutcome, AwsError> {
        self.call("CreateCollection", id)?;
        let mut state = self.state();
        if state.collections.contains_key(id) {
            return Ok(CreateOutcome::AlreadyExists);
        }
        state.collections.insert(id.to_owned(), tags.clone());
        if std::mem::take(&mut state.lose_create_answer) {
            return Err(AwsError {
                kind: AwsErrorKind::Unavailable,
                operation: "CreateCollection",
                code: None,
                message: "the answer was lost".into(),
            });
        }
        Ok(CreateOutcome::Created(CreatedCollection {
            arn: arn(id),
            face_model_version: Some("7.0".into()),
        }))
    }

    async fn describe(&self, _: &Target, id: &str, _: Priority) -> Result<Described, AwsError> {
        self.call("DescribeCollection", id)?;
        Ok(match self.state().collections.contains_key(id) {
            true => Described::Exists(CollectionDescription {
                arn: arn(id),
                face_model_version: Some("7.0".into()),
                face_count: Some(0),
                user_count: Some(0),
                created_at: None,
            }),
            false => Described::Missing,
        })
    }

    async fn delete(&self, _: &Target, id: &str) -> Result<bool, AwsError> {
        self.call("DeleteCollection", id)?;
        Ok(self.state().collections.remove(id).is_some())
    }

    async fn list_tags(&self, _: &Target, arn: &str) -> Result<Option<Tags>, AwsError> {
        self.call("ListTagsForResource", id_of(arn))?;
        Ok(self.tags(id_of(arn)))
    }

    async fn tag(&self, _: &Target, arn: &str, tags: &Tags) -> Result<(), AwsError> {
        self.call("TagResource", id_of(arn))?;
        if let Some(held) = self.state().collections.get_mut(id_of(arn)) {
            held.extend(tags.clone());
        }
        Ok(())
    }

    async fn untag(&self, _: &Target, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        self.call("UntagResource", id_of(arn))?;
        if let Some(held) = self.state().collections.get_mut(id_of(arn)) {
            held.retain(|key, _| !keys.contains(key));
        }
        Ok(())
    }

    async fn list_collections(&self, _: &Target) -> Result<Vec<String>, AwsError> {
        self.call("ListCollections", "*")?;
        Ok(self.state().collections.keys().cloned().collect())
    }
}

/// The API server, for one object and its Events.
struct ApiServer {
    /// The object as stored; `None` once it is gone.
    object: Option<Value>,
    version: u64,
    /// Answer the next write of the status with 404, as if the object vanished just before.
    vanish_at_status: bool,
}

impl ApiServer {
    fn answer(&mut self, method: &Method, path: &str, body: &[u8]) -> (Seen, StatusCode, Value) {
        let collection_path = format!(
            "/apis/rekognition.aws-operators.dev/v1alpha1/namespaces/{NAMESPACE}/rekognitioncollections/"
        );
        if path.starts_with(&format!(
            "/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events"
        )) {
            let event: Value = serde_json::from_slice(body).expect("an Event");
            let reason = event["reason"].as_str().unwrap_or_default().to_owned();
            return (format!("POST Event {reason}"), StatusCode::CREATED, event);
        }
        let rest = path
            .split('?')
            .next()
            .and_then(|p| p.strip_prefix(&collection_path))
            .unwrap_or_else(|| panic!("a request for something else: {method} {path}"));
        let subresource = if rest.ends_with("/status") {
            "status"
        } else {
            "object"
        };
        let seen = format!("{method} {subresource}");
        if subresource == "status" && std::mem::take(&mut self.vanish_at_status) {
            self.object = None;
        }
        let Some(object) = self.object.as_mut() else {
            return (seen, StatusCode::NOT_FOUND, not_found());
        };
        if *method == Method::GET {
            return (seen, StatusCode::OK, object.clone());
        }
        assert_eq!(*method, Method::PATCH, "{seen}");
        let patch: Value = serde_json::from_slice(body).expect("a JSON patch");
        if subresource == "status" {
            object["status"] = patch["status"].clone();
        } else {
            let precondition = patch["metadata"]["resourceVersion"].as_str();
            if precondition
                .is_some_and(|v| Some(v) != object["metadata"]["resourceVersion"].as_str())
            {
                return (seen, StatusCode::CONFLICT, conflict());
            }
            json_patch::merge(object, &patch);
        }
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        let answer = object.clone();
        let released = answer["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty());
        if released && !answer["metadata"]["deletionTimestamp"].is_null() {
            self.object = None;
        }
        (seen, StatusCode::OK, answer)
    }
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}

fn conflict() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "the object has been modified"})
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A reconciler's world: its context, the AWS in memory and the mocked API server's handle.
struct Scenario {
    ctx: Arc<Context<MemoryAws>>,
    aws: MemoryAws,
    handle: Handle,
    server: ApiServer,
}

impl Scenario {
    fn new() -> Self {
        Self::with(|_| {})
    }

    /// A scenario whose context `adjust` changes first (a policy, a mapping).
    fn with(adjust: impl FnOnce(&mut Context<MemoryAws>)) -> Self {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, NAMESPACE);
        let aws = MemoryAws::default();
        let mut ctx = Context {
            client,
            aws: aws.clone(),
            default_region: REGION.into(),
            reporter: Reporter {
                controller: "rekognition-operator".into(),
                instance: None,
            },
            metrics: Metrics::new(),
            resync_interval: Duration::from_secs(600),
            tag_check_interval: None,
            memory: Arc::new(Memory::new(BackoffPolicy::default())),
            policy: TenancyPolicy {
                rules: Rules::default(),
                namespaces: None,
            },
            fence: Arc::new(crate::runtime::leader::Fence::open()),
            accounts: MappingWatch::fixed(Mapping::default()),
            require_mapping: false,
            cluster: Arc::new(ClusterIdentity {
                name: CLUSTER.into(),
                take_over_from: Default::default(),
            }),
            objects: LiveObjects::default(),
            inventory: Arc::default(),
        };
        adjust(&mut ctx);
        Self {
            ctx: Arc::new(ctx),
            aws,
            handle,
            server: ApiServer {
                object: None,
                version: 1,
                vanish_at_status: false,
            },
        }
    }

    /// Stores `obj` in the API server.
    fn store(&mut self, obj: &RekognitionCollection) {
        self.server.object = Some(serde_json::to_value(obj).expect("object"));
    }

    /// The object as the API server holds it now.
    fn stored(&self) -> Option<RekognitionCollection> {
        self.server
            .object
            .clone()
            .map(|o| serde_json::from_value(o).expect("object"))
    }

    /// Reconciles the stored object once, answering its requests; returns the outcome and the
    /// requests made, in order (API server and AWS, interleaved as they happened).
    async fn reconcile(&mut self) -> (Result<Action, Error>, Vec<Seen>) {
        let obj = Arc::new(self.stored().expect("a stored object"));
        let mut run = tokio::spawn(reconcile(obj, self.ctx.clone()));
        let mut seen = Vec::new();
        loop {
            tokio::select! {
                result = &mut run => {
                    seen.extend(self.aws.calls());
                    return (result.expect("reconcile panicked"), seen);
                }
                request = self.handle.next_request() => {
                    let (request, respond) = request.expect("the client is alive");
                    // AWS calls made before this request come first.
                    seen.extend(self.aws.calls());
                    let (method, path) = (request.method().clone(), request.uri().to_string());
                    let body = request.into_body().collect_bytes().await.expect("body");
                    let (what, status, answer) = self.server.answer(&method, &path, &body);
                    seen.push(what);
                    let response = Response::builder()
                        .status(status)
                        .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                        .expect("response");
                    respond.send_response(response);
                }
            }
        }
    }
}

/// A new object as a tenant applies it: no finalizer, no status.
fn new_object(name: &str, spec: CollectionSpec) -> RekognitionCollection {
    let mut obj = RekognitionCollection::new(name, spec);
    obj.metadata.namespace = Some(NAMESPACE.into());
    obj.metadata.uid = Some(format!("uid-{name}"));
    obj.metadata.generation = Some(1);
    obj.metadata.resource_version = Some("1".into());
    obj
}

fn ready(obj: &RekognitionCollection) -> (String, String) {
    let c = obj.ready_condition().expect("a Ready condition");
    (c.status.clone(), c.reason.clone())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Makes `obj` Ready through a first reconcile.
async fn created(
    scenario: &mut Scenario,
    name: &str,
    spec: CollectionSpec,
) -> RekognitionCollection {
    scenario.store(&new_object(name, spec));
    let (result, _) = scenario.reconcile().await;
    result.expect("created");
    scenario.stored().expect("stored")
}

/// Marks the stored object for deletion, as the API server does for a DELETE with a finalizer.
fn mark_deleted(scenario: &mut Scenario) {
    let object = scenario.server.object.as_mut().expect("stored");
    object["metadata"]["deletionTimestamp"] = json!("2026-12-08T00:00:00Z");
}

#[tokio::test]
async fn a_new_object_costs_two_writes_and_one_call() {
    let mut s = Scenario::new();
    s.store(&new_object("faces", CollectionSpec::default()));
    let (result, seen) = s.reconcile().await;
    assert_eq!(result.expect("reconciled"), Action::await_change());
    assert_eq!(
        seen,
        strings(&[
            "PATCH object",
            "CreateCollection faces",
            "POST Event Created",
            "PATCH status",
        ])
    );
    let obj = s.stored().expect("stored");
    assert_eq!(ready(&obj), ("True".into(), "Available".into()));
    assert_eq!(obj.finalizers(), [FINALIZER.to_owned()]);
    let status = obj.status.expect("status");
    assert_eq!(
        status.collection_arn.as_deref(),
        Some(arn("faces").as_str())
    );
    assert_eq!(status.face_model_version.as_deref(), Some("7.0"));
    let tags = s.aws.tags("faces").expect("collection");
    assert!(tags.contains_key(OWNER_TAG), "{tags:?}");
}

#[tokio::test]
async fn a_throttled_create_is_retried_after_its_backoff_and_never_before() {
    let mut s = Scenario::new();
    s.aws.fail_next("CreateCollection", AwsErrorKind::Throttled);
    s.store(&new_object("faces", CollectionSpec::default()));
    let (result, seen) = s.reconcile().await;
    let error = result.expect_err("throttled");
    assert_eq!(
        seen,
        strings(&[
            "PATCH object",
            "CreateCollection faces",
            "PATCH status",
            "POST Event Throttled",
        ])
    );
    assert_eq!(
        ready(&s.stored().expect("stored")),
        ("False".into(), "Throttled".into())
    );
    let obj = Arc::new(s.stored().expect("stored"));
    let Action { .. } = error_policy(obj, &error, s.ctx.clone());
    // A trigger during the backoff (the status write's own watch event, say) reaches nothing.
    let (result, seen) = s.reconcile().await;
    assert!(seen.is_empty(), "{seen:?}");
    assert_ne!(result.expect("gated"), Action::await_change());
    // Once the backoff has passed, the retry creates.
    s.ctx.memory.retain(|_| false);
    let (result, seen) = s.reconcile().await;
    result.expect("created");
    assert_eq!(
        seen,
        // The finalizer is there already: a quorum read first, so no create goes out for an
        // object that is gone although the watch cache still shows it.
        strings(&[
            "GET object",
            "CreateCollection faces",
            "POST Event Created",
            "PATCH status",
            "POST Event Recovered",
        ])
    );
    assert_eq!(
        ready(&s.stored().expect("stored")),
        ("True".into(), "Available".into())
    );
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_claimed_by_the_retry_through_its_tags() {
    let mut s = Scenario::new();
    s.aws.state().lose_create_answer = true;
    s.store(&new_object("faces", CollectionSpec::default()));
    let (result, _) = s.reconcile().await;
    result.expect_err("the answer was lost");
    s.ctx.memory.retain(|_| false);
    let (result, seen) = s.reconcile().await;
    result.expect("claimed");
    assert_eq!(
        seen,
        strings(&[
            "GET object",
            "CreateCollection faces",
            "DescribeCollection faces",
            "ListTagsForResource faces",
            "PATCH status",
            "POST Event Recovered",
        ])
    );
    assert_eq!(
        ready(&s.stored().expect("stored")),
        ("True".into(), "Available".into())
    );
}

#[tokio::test]
async fn a_deletion_proves_ownership_deletes_and_releases_in_one_write() {
    let mut s = Scenario::new();
    created(&mut s, "faces", CollectionSpec::default()).await;
    mark_deleted(&mut s);
    let (result, seen) = s.reconcile().await;
    assert_eq!(result.expect("deleted"), Action::await_change());
    assert_eq!(
        seen,
        strings(&[
            "ListTagsForResource faces",
            "DeleteCollection faces",
            "POST Event Deleted",
            "PATCH object",
        ])
    );
    assert!(s.stored().is_none(), "the finalizer was removed");
    assert!(s.aws.tags("faces").is_none(), "the collection is gone");
}

#[tokio::test]
async fn a_deletion_leaves_another_owners_collection_alone() {
    let mut s = Scenario::new();
    created(&mut s, "faces", CollectionSpec::default()).await;
    // Someone else's collection took the ID meanwhile (the object's was deleted behind its back).
    s.aws.put(
        "faces",
        Tags::from([(OWNER_TAG.to_owned(), "another-uid".to_owned())]),
    );
    mark_deleted(&mut s);
    let (result, seen) = s.reconcile().await;
    result.expect("released");
    assert_eq!(
        seen,
        strings(&["ListTagsForResource faces", "PATCH object"])
    );
    assert!(s.stored().is_none());
    assert!(
        s.aws.tags("faces").is_some(),
        "the other owner's collection stays"
    );
}

#[tokio::test]
async fn retain_untags_and_keeps_the_collection() {
    let mut s = Scenario::new();
    let spec = CollectionSpec {
        deletion_policy: DeletionPolicy::Retain,
        ..Default::default()
    };
    created(&mut s, "faces", spec).await;
    mark_deleted(&mut s);
    let (result, seen) = s.reconcile().await;
    result.expect("retained");
    assert_eq!(
        seen,
        strings(&[
            "ListTagsForResource faces",
            "UntagResource faces",
            "POST Event Retained",
            "PATCH object",
        ])
    );
    let tags = s.aws.tags("faces").expect("kept");
    assert!(!tags.contains_key(OWNER_TAG), "{tags:?}");
}

#[tokio::test]
async fn adopt_claims_an_unowned_collection() {
    let mut s = Scenario::new();
    let team = Tags::from([("team".to_owned(), "search".to_owned())]);
    s.aws.put("legacy", team.clone());
    let spec = CollectionSpec {
        management_policy: ManagementPolicy::Adopt,
        tags: team,
        ..Default::default()
    };
    s.store(&new_object("legacy", spec));
    let (result, seen) = s.reconcile().await;
    result.expect("adopted");
    assert_eq!(
        seen,
        strings(&[
            "PATCH object",
            "CreateCollection legacy",
            "DescribeCollection legacy",
            "ListTagsForResource legacy",
            "TagResource legacy",
            "POST Event Adopted",
            "PATCH status",
        ])
    );
    let tags = s.aws.tags("legacy").expect("kept");
    assert_eq!(tags.get(OWNER_TAG).map(String::as_str), Some("uid-legacy"));
    assert_eq!(tags.get("team").map(String::as_str), Some("search"));
    assert_eq!(
        ready(&s.stored().expect("stored")),
        ("True".into(), "Adopted".into())
    );
}

#[tokio::test]
async fn a_forged_role_pin_is_refused_without_a_call() {
    let mut s = Scenario::new();
    let mut obj = new_object("faces", CollectionSpec::default());
    // Written by a tenant who can edit the object: a region pin (so the pin counts as recorded)
    // and a role the mapping never gave its namespace.
    obj.annotations_mut()
        .insert(REGION_PIN_ANNOTATION.into(), REGION.into());
    obj.annotations_mut().insert(
        ROLE_PIN_ANNOTATION.into(),
        "arn:aws:iam::999999999999:role/other-team".into(),
    );
    s.store(&obj);
    let (result, seen) = s.reconcile().await;
    result.expect("refused");
    assert!(
        seen.iter()
            .all(|r| !r.contains("Collection") && !r.contains("Resource")),
        "no AWS call: {seen:?}"
    );
    let obj = s.stored().expect("stored");
    assert_eq!(ready(&obj), ("False".into(), "PolicyDenied".into()));
    assert!(obj.finalizers().is_empty(), "{:?}", obj.finalizers());
}

#[tokio::test]
async fn a_region_the_policy_does_not_allow_is_refused_without_a_call() {
    let mut s = Scenario::with(|ctx| {
        ctx.policy.rules.allowed_regions = ["eu-west-1".to_owned()].into();
    });
    s.store(&new_object("faces", CollectionSpec::default()));
    let (result, seen) = s.reconcile().await;
    result.expect("refused");
    assert_eq!(seen, strings(&["PATCH status", "POST Event PolicyDenied"]));
    let obj = s.stored().expect("stored");
    assert_eq!(ready(&obj), ("False".into(), "PolicyDenied".into()));
    let message = obj.ready_condition().expect("Ready").message.clone();
    assert!(message.contains("us-east-1"), "{message}");
}

#[tokio::test]
async fn an_object_that_vanished_during_its_create_leaves_no_collection() {
    let mut s = Scenario::new();
    s.server.vanish_at_status = true;
    s.store(&new_object("faces", CollectionSpec::default()));
    let (result, seen) = s.reconcile().await;
    result.expect("cleaned up");
    assert_eq!(
        seen,
        strings(&[
            "PATCH object",
            "CreateCollection faces",
            "POST Event Created",
            "PATCH status",
            "DeleteCollection faces",
            "POST Event Deleted",
            // No finalizer to remove: the object is gone, and the plan knows it.
        ])
    );
    assert!(s.aws.tags("faces").is_none(), "no collection left behind");
}

#[tokio::test]
async fn a_paused_object_makes_no_call_until_unpaused() {
    let mut s = Scenario::new();
    let mut obj = new_object("faces", CollectionSpec::default());
    obj.annotations_mut()
        .insert(PAUSED_ANNOTATION.into(), "true".into());
    s.store(&obj);
    let (result, seen) = s.reconcile().await;
    assert_eq!(result.expect("paused"), Action::await_change());
    assert_eq!(seen, strings(&["PATCH status", "POST Event Paused"]));
    assert_eq!(ready(&s.stored().expect("stored")).1, "Paused");
    // Unpaused: the create goes ahead.
    let object = s.server.object.as_mut().expect("stored");
    object["metadata"]["annotations"][PAUSED_ANNOTATION] = json!("false");
    let (result, seen) = s.reconcile().await;
    result.expect("created");
    assert!(
        seen.contains(&"CreateCollection faces".to_owned()),
        "{seen:?}"
    );
    assert_eq!(ready(&s.stored().expect("stored")).1, "Available");
}

#[tokio::test]
async fn a_reconcile_request_checks_aws_now_and_is_recorded_as_handled() {
    let mut s = Scenario::new();
    created(&mut s, "faces", CollectionSpec::default()).await;
    // Ready and settled: a trigger now reaches nothing…
    let (_, seen) = s.reconcile().await;
    assert!(seen.is_empty(), "{seen:?}");
    // … until the user asks.
    let object = s.server.object.as_mut().expect("stored");
    object["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION] = json!("2026-12-08T10:00:00Z");
    let (result, seen) = s.reconcile().await;
    result.expect("handled");
    assert_eq!(
        seen,
        strings(&[
            "DescribeCollection faces",
            "ListTagsForResource faces",
            "PATCH status"
        ])
    );
    let status = s.stored().expect("stored").status.expect("status");
    assert_eq!(
        status.last_handled_reconcile_at.as_deref(),
        Some("2026-12-08T10:00:00Z")
    );
}

#[tokio::test]
async fn a_restored_object_reclaims_its_earlier_incarnations_collection() {
    let mut s = Scenario::new();
    // The collection of the object before the restore: the same cluster, namespace and name,
    // another UID.
    s.aws.put(
        "faces",
        Tags::from([
            (OWNER_TAG.to_owned(), "uid-before-the-restore".to_owned()),
            (
                CLAIM_TAG.to_owned(),
                crate::core::ownership::claim(CLUSTER, NAMESPACE, "faces"),
            ),
        ]),
    );
    s.store(&new_object("faces", CollectionSpec::default()));
    // The watch cache has synced, and no live object has the earlier UID.
    let (store, _writer) = kube::runtime::reflector::store();
    s.ctx.objects.attach(Some(store));
    let (result, seen) = s.reconcile().await;
    result.expect("reclaimed");
    assert_eq!(
        seen,
        strings(&[
            "PATCH object",
            "CreateCollection faces",
            "DescribeCollection faces",
            "ListTagsForResource faces",
            "TagResource faces",
            "POST Event Reclaimed",
            "PATCH status",
        ])
    );
    let tags = s.aws.tags("faces").expect("kept");
    assert_eq!(tags.get(OWNER_TAG).map(String::as_str), Some("uid-faces"));
    assert_eq!(ready(&s.stored().expect("stored")).1, "Available");
}
