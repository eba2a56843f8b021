//! The `RekognitionCollection` API (`rekognition.aws-operators.dev/v1alpha1`).
//!
//! Field docs (`///`) are what `kubectl explain` shows; developer notes use `//`. Every rule that
//! the API server can check lives in the schema or a CEL rule here, so bad input is refused at
//! `kubectl apply` time with a message that names the field.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The finalizer that guards every object that may own a collection.
pub const FINALIZER: &str = "rekognition.aws-operators.dev/cleanup";
/// The tag that marks a collection as owned by one object: its value is the object's UID.
pub const OWNER_TAG: &str = "rekognition.aws-operators.dev/owner";
/// The tag that says which cluster installation, namespace and name claim a collection:
/// `<cluster>/<namespace>/<name>`, so the object's next incarnation (a restore, a re-bootstrap from
/// Git) can prove the collection was its own, and another cluster can see whose it is.
pub const CLAIM_TAG: &str = "rekognition.aws-operators.dev/claim";
/// Rekognition allows 200 tags on a collection; one slot is the ownership tag. The claim tag takes
/// a second slot when there is one: an object with all 199 spec tags has no claim tag.
pub const MAX_USER_TAGS: usize = 199;
/// The annotation that stops every AWS call for an object while its value is "true".
pub const PAUSED_ANNOTATION: &str = "rekognition.aws-operators.dev/paused";
/// The annotation that asks for a reconcile now (any value; a new value is a new request), as
/// Flux's `reconcile.fluxcd.io/requestedAt`: `status.lastHandledReconcileAt` records the value
/// handled.
pub const RECONCILE_REQUEST_ANNOTATION: &str =
    "rekognition.aws-operators.dev/reconcile-requested-at";
/// The region the operator pinned for the object at first contact, written with its finalizer
/// before any CreateCollection: one API write gives both the crash safety of the finalizer and
/// the pin, so no status write is needed before the create. `status.region` repeats it once
/// written and takes precedence.
pub const REGION_PIN_ANNOTATION: &str = "rekognition.aws-operators.dev/region";
/// The IAM role pinned beside [`REGION_PIN_ANNOTATION`] (absent: the operator's own identity),
/// as `status.roleArn` records it.
pub const ROLE_PIN_ANNOTATION: &str = "rekognition.aws-operators.dev/role-arn";

/// Desired state of an Amazon Rekognition face collection.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "rekognition.aws-operators.dev",
    version = "v1alpha1",
    kind = "RekognitionCollection",
    plural = "rekognitioncollections",
    shortname = "rekcol",
    category = "aws",
    namespaced,
    status = "CollectionStatus",
    doc = "An Amazon Rekognition face collection managed from Kubernetes.",
    printcolumn = r#"{"name":"Ready","type":"string","description":"Whether the collection can be used","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Synced","type":"string","description":"Whether the operator's last attempt succeeded","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","description":"The failure when there is one, else why Ready is as it is","jsonPath":".status.conditions[?(@.type==\"Synced\")].reason"}"#,
    printcolumn = r#"{"name":"Model","type":"string","description":"Face model version","jsonPath":".status.faceModelVersion"}"#,
    printcolumn = r#"{"name":"Collection","type":"string","priority":1,"description":"Collection ID in Rekognition","jsonPath":".status.collectionId"}"#,
    printcolumn = r#"{"name":"ARN","type":"string","priority":1,"jsonPath":".status.collectionArn"}"#,
    printcolumn = r#"{"name":"Account","type":"string","priority":1,"description":"AWS account of the collection","jsonPath":".status.accountId"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.collectionId) == has(oldSelf.collectionId)")
        .message("collectionId is immutable: it cannot be added or removed after creation")
        .field_path(".collectionId"),
    validation = Rule::new("has(self.region) == has(oldSelf.region)")
        .message("region is immutable: it cannot be added or removed after creation")
        .field_path(".region"),
)]
pub struct CollectionSpec {
    /// ID of the collection in Rekognition: 1-255 characters of letters, digits, '_', '.' and
    /// '-'. Defaults to metadata.name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[a-zA-Z0-9_.\-]+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("collectionId is immutable"))]
    pub collection_id: Option<String>,

    /// AWS region of the collection, for example us-east-1. Defaults to the operator's region.
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("region is immutable"))]
    pub region: Option<String>,

    /// Tags on the collection. At most 199 (one slot is kept for the operator's ownership tag);
    /// keys 1-128 characters, not starting with 'aws:'; values up to 256 characters; both of
    /// letters, digits, spaces and _ . : / = + - @. The operator keeps the collection's tags equal
    /// to this map.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "tags_schema")]
    pub tags: BTreeMap<String, String>,

    /// What happens to the collection when this object is deleted: Delete removes it from AWS,
    /// Retain leaves it (and only removes the operator's ownership tag).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// How the operator treats the collection: Manage creates and owns it; Adopt also claims a
    /// collection that already exists under this ID; ObserveOnly never writes to AWS and only
    /// reports what it finds.
    #[serde(default)]
    pub management_policy: ManagementPolicy,
}

/// What happens to the collection when the object is deleted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Retain,
}

/// How the operator treats the collection.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ManagementPolicy {
    #[default]
    Manage,
    Adopt,
    ObserveOnly,
}

// The tag rules of Rekognition's service model. The map size bound also keeps the CEL rules'
// estimated cost inside the API server's budget.
fn tags_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let char_class = r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$";
    schemars::json_schema!({
        "type": "object",
        "description": "Tags on the collection. At most 199 (one slot is kept for the operator's ownership tag); keys 1-128 characters, not starting with 'aws:'; values up to 256 characters; both of letters, digits, spaces and _ . : / = + - @. The operator keeps the collection's tags equal to this map.",
        "maxProperties": MAX_USER_TAGS,
        "additionalProperties": {
            "type": "string",
            "maxLength": 256,
            "pattern": char_class,
        },
        "x-kubernetes-validations": [
            {
                "rule": "self.all(k, size(k) >= 1 && size(k) <= 128)",
                "message": "tag keys must be 1-128 characters",
            },
            {
                "rule": "self.all(k, !k.startsWith('aws:'))",
                "message": "tag keys must not start with 'aws:' (reserved by AWS)",
            },
            {
                "rule": format!("self.all(k, k.matches('{}'))", char_class.replace('\\', "\\\\")),
                "message": "tag keys may contain only letters, digits, spaces and _ . : / = + - @",
            },
            {
                "rule": format!("!('{OWNER_TAG}' in self)"),
                "message": format!("tag key '{OWNER_TAG}' is reserved for the operator"),
            },
            {
                "rule": format!("!('{CLAIM_TAG}' in self)"),
                "message": format!("tag key '{CLAIM_TAG}' is reserved for the operator"),
            },
        ],
    })
}

/// Observed state of the collection, written by the operator.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CollectionStatus {
    /// Canonical ARN of the collection: arn:<partition>:rekognition:<region>:<account>:collection/<id>.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_arn: Option<String>,
    /// Version of the face model the collection uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_model_version: Option<String>,
    /// The collection ID the operator uses (spec.collectionId or metadata.name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_id: Option<String>,
    /// The region the operator uses (spec.region or the operator's region), pinned at the first
    /// AWS call: a later change of the operator's default never moves the collection. Used only
    /// where the tenancy policy allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: Option<String>,
    /// The IAM role the operator assumes to reach this collection's AWS account, from the
    /// platform team's account mapping for the namespace, pinned with the region at the first AWS
    /// call. It is honoured only while the mapping gives the namespace this role (its current
    /// role or one of its formerRoles); otherwise the object is PolicyDenied and nothing is done
    /// in any account. Absent once the region is pinned: the operator's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")
    )]
    pub role_arn: Option<String>,
    /// The 12-digit AWS account that holds the collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Number of faces in the collection, as of the last describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_count: Option<i64>,
    /// Number of users in the collection, as of the last describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_count: Option<i64>,
    /// When the collection was created in AWS (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The metadata.generation that this status fully describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The value of the annotation rekognition.aws-operators.dev/reconcile-requested-at that the
    /// operator last handled with a full reconcile (describe, tag check, drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub last_handled_reconcile_at: Option<String>,
    /// Standard conditions. Ready: can an application use the collection? Synced: did the
    /// operator's last attempt succeed? Its reason is the failure when there is one, else Ready's.
    /// Stalled (True, only while so): the object waits for a person, as kstatus reads it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// A standard Kubernetes condition.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, for example Ready.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// One word, CamelCase, saying why (docs/reference.md lists the reasons).
    pub reason: String,
    /// Human-readable detail, including AWS's own message when AWS refused a call.
    #[serde(default)]
    pub message: String,
    /// When status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The metadata.generation the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The closed set of condition reasons (Ready and Synced). Each says whether the operator retries
/// on its own: [`ReadyReason::description`] says what each means, and the API reference
/// (`docs/reference.md`) is generated from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadyReason {
    Creating,
    Available,
    Adopted,
    Throttled,
    AccessDenied,
    InvalidParameter,
    AlreadyExists,
    QuotaExceeded,
    NotFound,
    Deleting,
    AwsUnavailable,
    AwsError,
    RegionConflict,
    PolicyDenied,
    CredentialsUnavailable,
    Paused,
    HandedOver,
    AwaitingHandover,
}

impl ReadyReason {
    pub const ALL: [ReadyReason; 18] = [
        Self::Creating,
        Self::Available,
        Self::Adopted,
        Self::Throttled,
        Self::AccessDenied,
        Self::InvalidParameter,
        Self::AlreadyExists,
        Self::QuotaExceeded,
        Self::NotFound,
        Self::Deleting,
        Self::AwsUnavailable,
        Self::AwsError,
        Self::RegionConflict,
        Self::PolicyDenied,
        Self::CredentialsUnavailable,
        Self::Paused,
        Self::HandedOver,
        Self::AwaitingHandover,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "Creating",
            Self::Available => "Available",
            Self::Adopted => "Adopted",
            Self::Throttled => "Throttled",
            Self::AccessDenied => "AccessDenied",
            Self::InvalidParameter => "InvalidParameter",
            Self::AlreadyExists => "AlreadyExists",
            Self::QuotaExceeded => "QuotaExceeded",
            Self::NotFound => "NotFound",
            Self::Deleting => "Deleting",
            Self::AwsUnavailable => "AwsUnavailable",
            Self::AwsError => "AwsError",
            Self::RegionConflict => "RegionConflict",
            Self::PolicyDenied => "PolicyDenied",
            Self::CredentialsUnavailable => "CredentialsUnavailable",
            Self::Paused => "Paused",
            Self::HandedOver => "HandedOver",
            Self::AwaitingHandover => "AwaitingHandover",
        }
    }

    pub fn parse(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == reason)
    }

    /// What the reason means and what the operator does about it.
    pub fn description(self) -> &'static str {
        match self {
            Self::Creating => "The operator is creating the collection.",
            Self::Available => "The collection exists and matches the spec.",
            Self::Adopted => {
                "The collection existed before this object and was claimed (managementPolicy Adopt)."
            }
            Self::Throttled => "AWS throttled the operator; retrying with backoff.",
            Self::AccessDenied => {
                "AWS refused the call for lack of permission; retrying on a long backoff."
            }
            Self::InvalidParameter => "AWS refused a parameter; waits for a spec change.",
            Self::AlreadyExists => {
                "A collection with this ID exists and is not owned by this object; waits for a spec change."
            }
            Self::QuotaExceeded => "An AWS service quota is exhausted; retrying on a long backoff.",
            Self::NotFound => {
                "ObserveOnly: no collection with this ID exists; checked again every resync."
            }
            Self::Deleting => "The object is being deleted and the collection cleaned up.",
            Self::AwsUnavailable => {
                "AWS failed or could not be reached (server error, timeout, connection); retrying with backoff."
            }
            Self::AwsError => {
                "AWS answered with an error the operator does not know; retrying on a long backoff."
            }
            Self::RegionConflict => {
                "spec.region differs from the region the collection lives in (status.region); waits for a spec change."
            }
            Self::PolicyDenied => {
                "The platform team's tenancy policy or account mapping refuses the object; no AWS call, checked again until the policy allows it or the spec changes."
            }
            Self::CredentialsUnavailable => {
                "No AWS credentials could be obtained (IRSA, Pod Identity, STS); retrying on a long backoff."
            }
            Self::Paused => {
                "The object carries the annotation rekognition.aws-operators.dev/paused: \"true\": no AWS call, and no deletion, until it is removed."
            }
            Self::HandedOver => {
                "The collection was handed over to the same object in another cluster (its claim tag names that cluster): this object never deletes, retags or recreates it; waits for a spec change."
            }
            Self::AwaitingHandover => {
                "The same object in another cluster holds the collection, and this cluster does not take over from it; checked again when the operator restarts set to take over from some cluster."
            }
        }
    }

    /// Whether `Ready` is True with this reason.
    pub fn is_ready(self) -> bool {
        matches!(self, Self::Available | Self::Adopted)
    }

    /// Refusals: the operator makes no AWS call for the object until its spec changes, or (for a
    /// [policy refusal](Self::is_policy_refusal)) until the platform team's configuration allows it.
    pub fn waits_for_spec_change(self) -> bool {
        matches!(
            self,
            Self::InvalidParameter
                | Self::AlreadyExists
                | Self::RegionConflict
                | Self::PolicyDenied
                | Self::HandedOver
                | Self::AwaitingHandover
        )
    }

    /// A refusal by the operator's own configuration (tenancy policy, account mapping), which the
    /// platform team can lift without the object changing. It is checked again whenever the object
    /// is reconciled, which costs no AWS call.
    pub fn is_policy_refusal(self) -> bool {
        matches!(self, Self::PolicyDenied)
    }
}

impl std::fmt::Display for ReadyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RekognitionCollection {
    /// The collection ID in effect: spec.collectionId, else metadata.name.
    pub fn collection_id(&self) -> String {
        self.spec
            .collection_id
            .clone()
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }

    /// The `Ready` condition, if any.
    pub fn ready_condition(&self) -> Option<&Condition> {
        self.status.as_ref()?.condition("Ready")
    }

    /// The `Synced` condition, if any.
    pub fn synced_condition(&self) -> Option<&Condition> {
        self.status.as_ref()?.condition("Synced")
    }

    /// Whether the pause annotation is set to "true".
    pub fn paused(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PAUSED_ANNOTATION))
            .is_some_and(|v| v == "true")
    }

    /// The region and role the operator pinned for the object: `status.region` and
    /// `status.roleArn` once a status records them, else the pin annotations written with the
    /// finalizer. Both are writable by tenants, so a pin is only a claim: the mapping and the
    /// policy decide whether it is honoured.
    pub fn recorded_pin(&self) -> (Option<&str>, Option<&str>) {
        if let Some(status) = self.status.as_ref().filter(|s| s.region.is_some()) {
            return (status.region.as_deref(), status.role_arn.as_deref());
        }
        let annotations = self.metadata.annotations.as_ref();
        let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
        match get(REGION_PIN_ANNOTATION) {
            Some(region) => (Some(region), get(ROLE_PIN_ANNOTATION)),
            None => (None, None),
        }
    }

    /// A reconcile asked for by annotation and not handled yet: its value.
    pub fn pending_reconcile_request(&self) -> Option<&str> {
        let requested = self
            .metadata
            .annotations
            .as_ref()?
            .get(RECONCILE_REQUEST_ANNOTATION)?;
        let handled = self
            .status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_ref());
        (handled != Some(requested)).then_some(requested.as_str())
    }
}

impl CollectionStatus {
    /// The condition of this type, if any.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}
