//! Rekognition: the seven collection operations, from decoded JSON input to JSON output, in
//! the caller's account.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::{Config, partition_of};
use crate::error::Error;
use crate::locking::lock;
use crate::model::{
    CollectionArn, CollectionIdInput, CreateCollectionInput, DEFAULT_PAGE_SIZE,
    ListCollectionsInput, MAX_TAGS, ResourceArnInput, TagResourceInput, UntagResourceInput,
    Validator, is_collection_id,
};
use crate::protocol::{ApiError, ErrorKind, Operation};
use crate::state::{Collection, Scope, Store};

// Page tokens handed out and not yet used; old ones are forgotten first.
const PAGE_TOKEN_CAPACITY: usize = 10_000;

/// Rekognition's collection API for every account in every served region.
#[derive(Debug)]
pub struct Rekognition {
    face_model_version: String,
    validator: Validator,
    store: Mutex<Store>,
    page_tokens: Mutex<PageTokens>,
}

impl Rekognition {
    pub fn new(config: &Config) -> Result<Self, Error> {
        Ok(Rekognition {
            face_model_version: config.face_model_version.clone(),
            validator: Validator::new()?,
            store: Mutex::new(Store::open(config)?),
            page_tokens: Mutex::new(PageTokens::default()),
        })
    }

    /// Runs one operation of an already authenticated, admitted request in `scope`.
    pub fn call(&self, scope: &Scope, op: Operation, input: Value) -> Result<Value, ApiError> {
        match op {
            Operation::CreateCollection => self.create_collection(scope, decode(input)?),
            Operation::DescribeCollection => self.describe_collection(scope, decode(input)?),
            Operation::DeleteCollection => self.delete_collection(scope, decode(input)?),
            Operation::ListCollections => self.list_collections(scope, decode(input)?),
            Operation::TagResource => self.tag_resource(scope, decode(input)?),
            Operation::UntagResource => self.untag_resource(scope, decode(input)?),
            Operation::ListTagsForResource => self.list_tags_for_resource(scope, decode(input)?),
        }
    }

    /// A copy of every collection of `scope`, in ID order.
    pub fn collections(&self, scope: &Scope) -> Vec<Collection> {
        lock(&self.store).scope(scope).values().cloned().collect()
    }

    /// The ARN of collection `id` in `scope`.
    pub fn arn(&self, scope: &Scope, id: &str) -> CollectionArn {
        CollectionArn {
            partition: partition_of(&scope.region).to_owned(),
            region: scope.region.clone(),
            account_id: scope.account_id.clone(),
            collection_id: id.to_owned(),
        }
    }

    /// Deletes every collection of every account and forgets every page token.
    pub fn reset(&self) -> Result<(), Error> {
        lock(&self.store).clear()?;
        *lock(&self.page_tokens) = PageTokens::default();
        Ok(())
    }

    fn create_collection(
        &self,
        scope: &Scope,
        input: CreateCollectionInput,
    ) -> Result<Value, ApiError> {
        self.validator.create_collection(&input)?;
        let id = input.collection_id.unwrap_or_default();
        let collection = Collection {
            collection_id: id.clone(),
            tags: input.tags.unwrap_or_default(),
            created_at: now_millis(),
            face_model_version: self.face_model_version.clone(),
            face_count: 0,
            user_count: 0,
        };
        lock(&self.store).update(scope, |collections| {
            if collections.contains_key(&id) {
                return Err(ApiError::new(
                    ErrorKind::ResourceAlreadyExists,
                    format!("The collection id: {id} already exists"),
                ));
            }
            collections.insert(id.clone(), collection);
            Ok(())
        })?;
        Ok(json!({
            "StatusCode": 200,
            "CollectionArn": self.arn(scope, &id).without_arn_prefix(),
            "FaceModelVersion": self.face_model_version,
        }))
    }

    fn describe_collection(
        &self,
        scope: &Scope,
        input: CollectionIdInput,
    ) -> Result<Value, ApiError> {
        self.validator
            .collection_id(input.collection_id.as_deref())?;
        let id = input.collection_id.unwrap_or_default();
        let store = lock(&self.store);
        let collection = store
            .get(scope, &id)
            .ok_or_else(|| collection_not_found(&id))?;
        Ok(json!({
            "CollectionARN": self.arn(scope, &id).to_arn(),
            "FaceCount": collection.face_count,
            "UserCount": collection.user_count,
            "FaceModelVersion": collection.face_model_version,
            // Epoch seconds with millisecond fraction, as the service sends it.
            "CreationTimestamp": collection.created_at.timestamp_millis() as f64 / 1000.0,
        }))
    }

    fn delete_collection(
        &self,
        scope: &Scope,
        input: CollectionIdInput,
    ) -> Result<Value, ApiError> {
        self.validator
            .collection_id(input.collection_id.as_deref())?;
        let id = input.collection_id.unwrap_or_default();
        lock(&self.store).update(scope, |collections| {
            collections
                .remove(&id)
                .map(|_| ())
                .ok_or_else(|| collection_not_found(&id))
        })?;
        Ok(json!({ "StatusCode": 200 }))
    }

    fn list_collections(
        &self,
        scope: &Scope,
        input: ListCollectionsInput,
    ) -> Result<Value, ApiError> {
        self.validator.list_collections(&input)?;
        let after = match &input.next_token {
            None => None,
            Some(token) => Some(lock(&self.page_tokens).resolve(scope, token).ok_or_else(
                || {
                    ApiError::new(
                        ErrorKind::InvalidPaginationToken,
                        "Invalid pagination token",
                    )
                },
            )?),
        };
        let limit = match input.max_results {
            Some(n) if n > 0 => usize::try_from(n).unwrap_or(DEFAULT_PAGE_SIZE),
            _ => DEFAULT_PAGE_SIZE,
        };
        let store = lock(&self.store);
        let (page, more) = store.page_after(scope, after.as_deref(), limit);
        let mut output = json!({
            "CollectionIds": page.iter().map(|c| c.collection_id.as_str()).collect::<Vec<_>>(),
            "FaceModelVersions":
                page.iter().map(|c| c.face_model_version.as_str()).collect::<Vec<_>>(),
        });
        if let (true, Some(last)) = (more, page.last()) {
            output["NextToken"] = lock(&self.page_tokens)
                .issue(scope, &last.collection_id)
                .into();
        }
        Ok(output)
    }

    fn tag_resource(&self, scope: &Scope, input: TagResourceInput) -> Result<Value, ApiError> {
        self.validator.tag_resource(&input)?;
        let arn = input.resource_arn.unwrap_or_default();
        let id = self.resolve_arn(scope, &arn)?;
        let tags = input.tags.unwrap_or_default();
        lock(&self.store).update(scope, |collections| {
            let collection = collections
                .get_mut(&id)
                .ok_or_else(|| resource_not_found(&arn))?;
            let added = tags
                .keys()
                .filter(|k| !collection.tags.contains_key(*k))
                .count();
            if collection.tags.len() + added > MAX_TAGS {
                return Err(ApiError::new(
                    ErrorKind::InvalidParameter,
                    format!(
                        "The resource {arn} would have {} tags; at most {MAX_TAGS} are allowed",
                        collection.tags.len() + added
                    ),
                ));
            }
            collection.tags.extend(tags);
            Ok(())
        })?;
        Ok(json!({}))
    }

    fn untag_resource(&self, scope: &Scope, input: UntagResourceInput) -> Result<Value, ApiError> {
        self.validator.untag_resource(&input)?;
        let arn = input.resource_arn.unwrap_or_default();
        let id = self.resolve_arn(scope, &arn)?;
        let keys = input.tag_keys.unwrap_or_default();
        lock(&self.store).update(scope, |collections| {
            let collection = collections
                .get_mut(&id)
                .ok_or_else(|| resource_not_found(&arn))?;
            for key in &keys {
                collection.tags.remove(key);
            }
            Ok(())
        })?;
        Ok(json!({}))
    }

    fn list_tags_for_resource(
        &self,
        scope: &Scope,
        input: ResourceArnInput,
    ) -> Result<Value, ApiError> {
        self.validator.resource_arn(input.resource_arn.as_deref())?;
        let arn = input.resource_arn.unwrap_or_default();
        let id = self.resolve_arn(scope, &arn)?;
        let store = lock(&self.store);
        let collection = store
            .get(scope, &id)
            .ok_or_else(|| resource_not_found(&arn))?;
        Ok(json!({ "Tags": collection.tags }))
    }

    /// The collection ID an ARN names. An ARN that is not a collection ARN of this partition
    /// is invalid; one of another account or region names nothing this endpoint holds.
    fn resolve_arn(&self, scope: &Scope, arn: &str) -> Result<String, ApiError> {
        let invalid = || {
            ApiError::new(
                ErrorKind::InvalidParameter,
                format!(
                    "{arn} is not a valid collection ARN \
                     (arn:{}:rekognition:<region>:<account>:collection/<id>)",
                    partition_of(&scope.region)
                ),
            )
        };
        let parsed = CollectionArn::parse(arn).ok_or_else(invalid)?;
        if parsed.partition != partition_of(&scope.region)
            || !is_collection_id(&parsed.collection_id)
        {
            return Err(invalid());
        }
        if parsed.region != scope.region || parsed.account_id != scope.account_id {
            return Err(resource_not_found(arn));
        }
        Ok(parsed.collection_id)
    }
}

fn decode<T: DeserializeOwned>(input: Value) -> Result<T, ApiError> {
    serde_json::from_value(input)
        .map_err(|err| ApiError::new(ErrorKind::Serialization, err.to_string()))
}

fn collection_not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        format!("The collection id: {id} does not exist"),
    )
}

fn resource_not_found(arn: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        format!("The resource {arn} does not exist"),
    )
}

// Stored at millisecond precision: what the API reports, and what survives the state file.
fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Opaque `NextToken`s mapped to the scope and last collection ID of the page they follow.
#[derive(Debug, Default)]
struct PageTokens {
    after: HashMap<String, (Scope, String)>,
    order: VecDeque<String>,
}

impl PageTokens {
    fn issue(&mut self, scope: &Scope, last_id: &str) -> String {
        let token = hex::encode(rand::random::<[u8; 24]>());
        if self.order.len() == PAGE_TOKEN_CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.after.remove(&oldest);
        }
        self.after
            .insert(token.clone(), (scope.clone(), last_id.to_owned()));
        self.order.push_back(token.clone());
        token
    }

    // A token is only good in the account and region it was issued to.
    fn resolve(&self, scope: &Scope, token: &str) -> Option<String> {
        self.after
            .get(token)
            .filter(|(issued_to, _)| issued_to == scope)
            .map(|(_, last_id)| last_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = crate::config::DEFAULT_ACCOUNT_ID;

    fn home() -> Scope {
        Scope::new(ACCOUNT, crate::config::DEFAULT_REGION)
    }

    fn service() -> Rekognition {
        Rekognition::new(&Config::default()).unwrap()
    }

    fn create(service: &Rekognition, id: &str) -> Value {
        service
            .call(
                &home(),
                Operation::CreateCollection,
                json!({ "CollectionId": id }),
            )
            .unwrap()
    }

    fn arn(id: &str) -> String {
        format!("arn:aws:rekognition:us-east-1:123456789012:collection/{id}")
    }

    #[test]
    fn create_answers_the_arn_without_the_arn_prefix() {
        let output = create(&service(), "photos");
        assert_eq!(output["StatusCode"], 200);
        assert_eq!(
            output["CollectionArn"],
            "aws:rekognition:us-east-1:123456789012:collection/photos"
        );
        assert_eq!(output["FaceModelVersion"], "7.0");
    }

    #[test]
    fn describe_answers_the_canonical_arn_and_a_numeric_timestamp() {
        let service = service();
        create(&service, "photos");
        let output = service
            .call(
                &home(),
                Operation::DescribeCollection,
                json!({"CollectionId": "photos"}),
            )
            .unwrap();
        assert_eq!(output["CollectionARN"], arn("photos"));
        assert_eq!(output["FaceCount"], 0);
        assert_eq!(output["UserCount"], 0);
        assert!(output["CreationTimestamp"].as_f64().unwrap() > 1.6e9);
    }

    #[test]
    fn creating_twice_is_resource_already_exists() {
        let service = service();
        create(&service, "photos");
        let err = service
            .call(
                &home(),
                Operation::CreateCollection,
                json!({"CollectionId": "photos"}),
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ResourceAlreadyExists);
    }

    #[test]
    fn a_mistyped_member_is_a_serialization_error() {
        let err = service()
            .call(
                &home(),
                Operation::CreateCollection,
                json!({"CollectionId": 5}),
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Serialization);
    }

    #[test]
    fn tags_of_an_arn_in_another_account_are_not_found() {
        let service = service();
        create(&service, "photos");
        let other = "arn:aws:rekognition:us-east-1:999999999999:collection/photos";
        let err = service
            .call(
                &home(),
                Operation::ListTagsForResource,
                json!({"ResourceArn": other}),
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    }

    #[test]
    fn tags_of_a_malformed_arn_are_an_invalid_parameter() {
        let err = service()
            .call(
                &home(),
                Operation::ListTagsForResource,
                json!({"ResourceArn": "arn:aws:s3:::bucket/photos"}),
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter);
    }

    #[test]
    fn tagging_beyond_two_hundred_tags_is_refused_and_changes_nothing() {
        let service = service();
        create(&service, "photos");
        let tags = |range: std::ops::Range<u32>| -> Value {
            range
                .map(|i| (format!("k{i}"), Value::from("v")))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        service
            .call(
                &home(),
                Operation::TagResource,
                json!({"ResourceArn": arn("photos"), "Tags": tags(0..150)}),
            )
            .unwrap();
        let err = service
            .call(
                &home(),
                Operation::TagResource,
                json!({"ResourceArn": arn("photos"), "Tags": tags(100..201)}),
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter);
        let output = service
            .call(
                &home(),
                Operation::ListTagsForResource,
                json!({"ResourceArn": arn("photos")}),
            )
            .unwrap();
        assert_eq!(output["Tags"].as_object().unwrap().len(), 150);
    }

    #[test]
    fn an_unknown_page_token_is_invalid() {
        let err = service()
            .call(
                &home(),
                Operation::ListCollections,
                json!({"NextToken": "nope"}),
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidPaginationToken);
    }

    #[test]
    fn accounts_do_not_see_each_others_collections_or_page_tokens() {
        let service = service();
        for id in ["a", "b"] {
            create(&service, id);
        }
        let other = &Scope::new("210987654321", crate::config::DEFAULT_REGION);
        let output = service
            .call(other, Operation::ListCollections, json!({}))
            .unwrap();
        assert_eq!(output["CollectionIds"], json!([]));
        let err = service
            .call(
                other,
                Operation::DescribeCollection,
                json!({"CollectionId": "a"}),
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ResourceNotFound);
        let page = service
            .call(
                &home(),
                Operation::ListCollections,
                json!({"MaxResults": 1}),
            )
            .unwrap();
        let err = service
            .call(
                other,
                Operation::ListCollections,
                json!({"NextToken": page["NextToken"]}),
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidPaginationToken);
    }

    #[test]
    fn regions_do_not_see_each_others_collections_and_arns_name_their_region() {
        let service = service();
        create(&service, "photos");
        let europe = &Scope::new(ACCOUNT, "eu-west-1");
        let output = service
            .call(europe, Operation::ListCollections, json!({}))
            .unwrap();
        assert_eq!(output["CollectionIds"], json!([]));
        let created = service
            .call(
                europe,
                Operation::CreateCollection,
                json!({"CollectionId": "photos"}),
            )
            .unwrap();
        assert_eq!(
            created["CollectionArn"],
            "aws:rekognition:eu-west-1:123456789012:collection/photos"
        );
        // The home region's ARN names nothing in Europe, and the other way round.
        let err = service
            .call(
                europe,
                Operation::ListTagsForResource,
                json!({"ResourceArn": arn("photos")}),
            )
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ResourceNotFound);
        service
            .call(
                europe,
                Operation::DeleteCollection,
                json!({"CollectionId": "photos"}),
            )
            .unwrap();
        assert_eq!(service.collections(&home()).len(), 1);
        assert_eq!(
            service
                .arn(&Scope::new(ACCOUNT, "cn-north-1"), "x")
                .to_arn(),
            "arn:aws-cn:rekognition:cn-north-1:123456789012:collection/x"
        );
    }

    #[test]
    fn the_last_page_has_no_next_token() {
        let service = service();
        for id in ["a", "b"] {
            create(&service, id);
        }
        let output = service
            .call(
                &home(),
                Operation::ListCollections,
                json!({"MaxResults": 2}),
            )
            .unwrap();
        assert_eq!(output["CollectionIds"], json!(["a", "b"]));
        assert!(output.get("NextToken").is_none());
    }
}
