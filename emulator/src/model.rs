//! Rekognition's collection model: request shapes, ARNs and the validation rules of the service
//! model (lengths, patterns, list sizes), reported the way AWS reports constraint violations.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

use crate::error::Error;
use crate::protocol::{ApiError, ErrorKind};

/// Most tags one collection may carry.
pub const MAX_TAGS: usize = 200;
/// Most tag keys one `UntagResource` call may name.
pub const MAX_UNTAG_KEYS: usize = 50;
/// Largest `MaxResults` of `ListCollections`.
pub const MAX_PAGE_SIZE: i64 = 4096;
/// Page size used when `MaxResults` is absent or 0.
pub const DEFAULT_PAGE_SIZE: usize = 1000;
/// Longest `NextToken` the model allows.
pub const MAX_PAGINATION_TOKEN_LEN: usize = 255;

const COLLECTION_ID_PATTERN: &str = r"[a-zA-Z0-9_.\-]+";
const TAG_KEY_PATTERN: &str = r"^(?!aws:)[\p{L}\p{Z}\p{N}_.:/=+\-@]*$";
const TAG_VALUE_PATTERN: &str = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$";
// The `regex` crate has no look-ahead, so the `(?!aws:)` part of the key pattern is checked on
// its own and both patterns share this character class.
const TAG_CHARS: &str = r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$";

/// `CreateCollection` input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateCollectionInput {
    pub collection_id: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

/// `DescribeCollection` / `DeleteCollection` input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CollectionIdInput {
    pub collection_id: Option<String>,
}

/// `ListCollections` input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListCollectionsInput {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

/// `TagResource` input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    pub resource_arn: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

/// `UntagResource` input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    pub resource_arn: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

/// `ListTagsForResource` input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceArnInput {
    pub resource_arn: Option<String>,
}

/// The parts of `arn:<partition>:rekognition:<region>:<account>:collection/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionArn {
    pub partition: String,
    pub region: String,
    pub account_id: String,
    pub collection_id: String,
}

impl CollectionArn {
    /// Splits an ARN of a Rekognition collection; `None` when it is not one.
    pub fn parse(arn: &str) -> Option<CollectionArn> {
        let mut parts = arn.splitn(6, ':');
        let (prefix, partition, service, region, account_id, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        let collection_id = resource.strip_prefix("collection/")?;
        (prefix == "arn" && service == "rekognition" && !partition.is_empty()).then(|| {
            CollectionArn {
                partition: partition.to_owned(),
                region: region.to_owned(),
                account_id: account_id.to_owned(),
                collection_id: collection_id.to_owned(),
            }
        })
    }

    /// The canonical form, with the `arn:` prefix.
    pub fn to_arn(&self) -> String {
        format!("arn:{}", self.without_arn_prefix())
    }

    /// The form `CreateCollection` answers with: the service leaves out the `arn:` prefix.
    pub fn without_arn_prefix(&self) -> String {
        format!(
            "{}:rekognition:{}:{}:collection/{}",
            self.partition, self.region, self.account_id, self.collection_id
        )
    }
}

/// The collection ID a request is about, from `CollectionId` or a collection ARN in
/// `ResourceArn`. Used to label calls in the call log, before any validation.
pub fn collection_id_of(input: &serde_json::Value) -> Option<String> {
    if let Some(id) = input.get("CollectionId").and_then(|v| v.as_str()) {
        return Some(id.to_owned());
    }
    let arn = input.get("ResourceArn").and_then(|v| v.as_str())?;
    CollectionArn::parse(arn).map(|a| a.collection_id)
}

/// Checks inputs against the service model's constraints and words violations as AWS does
/// (`1 validation error detected: Value '...' at '...' failed to satisfy constraint: ...`).
#[derive(Debug, Clone)]
pub struct Validator {
    tag_chars: Regex,
}

impl Validator {
    pub fn new() -> Result<Self, Error> {
        Ok(Validator {
            tag_chars: Regex::new(TAG_CHARS)?,
        })
    }

    pub fn create_collection(&self, input: &CreateCollectionInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.collection_id("collectionId", input.collection_id.as_deref());
        if let Some(tags) = &input.tags {
            self.tags(&mut v, tags);
        }
        v.finish()
    }

    pub fn collection_id(&self, id: Option<&str>) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.collection_id("collectionId", id);
        v.finish()
    }

    pub fn list_collections(&self, input: &ListCollectionsInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        if let Some(max) = input.max_results {
            if max < 0 {
                v.push(
                    max,
                    "maxResults",
                    "Member must have value greater than or equal to 0",
                );
            } else if max > MAX_PAGE_SIZE {
                v.push(
                    max,
                    "maxResults",
                    &format!("Member must have value less than or equal to {MAX_PAGE_SIZE}"),
                );
            }
        }
        if let Some(token) = &input.next_token
            && token.chars().count() > MAX_PAGINATION_TOKEN_LEN
        {
            v.push(
                token,
                "nextToken",
                &format!(
                    "Member must have length less than or equal to {MAX_PAGINATION_TOKEN_LEN}"
                ),
            );
        }
        v.finish()
    }

    pub fn tag_resource(&self, input: &TagResourceInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.resource_arn(input.resource_arn.as_deref());
        match &input.tags {
            None => v.push("null", "tags", "Member must not be null"),
            Some(tags) => self.tags(&mut v, tags),
        }
        v.finish()
    }

    pub fn untag_resource(&self, input: &UntagResourceInput) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.resource_arn(input.resource_arn.as_deref());
        match &input.tag_keys {
            None => v.push("null", "tagKeys", "Member must not be null"),
            Some(keys) => {
                if keys.len() > MAX_UNTAG_KEYS {
                    v.push(
                        format!("{keys:?}"),
                        "tagKeys",
                        &format!("Member must have length less than or equal to {MAX_UNTAG_KEYS}"),
                    );
                }
                for (i, key) in keys.iter().enumerate() {
                    for problem in self.tag_key_problems(key) {
                        v.push(key, &format!("tagKeys.{}.member", i + 1), &problem);
                    }
                }
            }
        }
        v.finish()
    }

    pub fn resource_arn(&self, arn: Option<&str>) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.resource_arn(arn);
        v.finish()
    }

    fn tags(&self, v: &mut Violations, tags: &BTreeMap<String, String>) {
        if tags.len() > MAX_TAGS {
            v.push(
                format!("map of {} tags", tags.len()),
                "tags",
                &format!("Member must have length less than or equal to {MAX_TAGS}"),
            );
        }
        for (key, value) in tags {
            for problem in self.tag_key_problems(key) {
                v.push(
                    key,
                    "tags",
                    &format!("Map keys must satisfy constraint: [{problem}]"),
                );
            }
            for problem in self.tag_value_problems(value) {
                v.push(
                    value,
                    "tags",
                    &format!("Map value must satisfy constraint: [{problem}]"),
                );
            }
        }
    }

    fn tag_key_problems(&self, key: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let len = key.chars().count();
        if len < 1 {
            problems.push("Member must have length greater than or equal to 1".to_owned());
        }
        if len > 128 {
            problems.push("Member must have length less than or equal to 128".to_owned());
        }
        if key.starts_with("aws:") || !self.tag_chars.is_match(key) {
            problems.push(format!(
                "Member must satisfy regular expression pattern: {TAG_KEY_PATTERN}"
            ));
        }
        problems
    }

    fn tag_value_problems(&self, value: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if value.chars().count() > 256 {
            problems.push("Member must have length less than or equal to 256".to_owned());
        }
        if !self.tag_chars.is_match(value) {
            problems.push(format!(
                "Member must satisfy regular expression pattern: {TAG_VALUE_PATTERN}"
            ));
        }
        problems
    }
}

#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    fn push(&mut self, value: impl std::fmt::Display, field: &str, constraint: &str) {
        self.0.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    fn collection_id(&mut self, field: &str, id: Option<&str>) {
        let Some(id) = id else {
            self.push("null", field, "Member must not be null");
            return;
        };
        let len = id.chars().count();
        if len < 1 {
            self.push(
                id,
                field,
                "Member must have length greater than or equal to 1",
            );
        }
        if len > 255 {
            self.push(
                id,
                field,
                "Member must have length less than or equal to 255",
            );
        }
        if !id.is_empty() && !is_collection_id(id) {
            self.push(
                id,
                field,
                &format!("Member must satisfy regular expression pattern: {COLLECTION_ID_PATTERN}"),
            );
        }
    }

    fn resource_arn(&mut self, arn: Option<&str>) {
        let Some(arn) = arn else {
            self.push("null", "resourceArn", "Member must not be null");
            return;
        };
        let len = arn.chars().count();
        if len < 20 {
            self.push(
                arn,
                "resourceArn",
                "Member must have length greater than or equal to 20",
            );
        }
        if len > 2048 {
            self.push(
                arn,
                "resourceArn",
                "Member must have length less than or equal to 2048",
            );
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(ApiError::new(
                ErrorKind::InvalidParameter,
                format!(
                    "{n} validation error{} detected: {}",
                    if n == 1 { "" } else { "s" },
                    self.0.join("; ")
                ),
            )),
        }
    }
}

/// Whether `id` uses only the characters a collection ID may contain.
pub fn is_collection_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator() -> Validator {
        Validator::new().unwrap()
    }

    fn create(id: &str, tags: &[(&str, &str)]) -> Result<(), ApiError> {
        let tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        validator().create_collection(&CreateCollectionInput {
            collection_id: Some(id.to_owned()),
            tags: Some(tags),
        })
    }

    #[test]
    fn accepts_collection_ids_of_the_allowed_characters() {
        for id in ["a", "my_photos-2024.v1", &"x".repeat(255)] {
            assert_eq!(create(id, &[]), Ok(()), "{id}");
        }
    }

    #[test]
    fn rejects_collection_ids_outside_the_pattern_or_length() {
        for id in ["", "has space", "slash/y", "ümlaut", &"x".repeat(256)] {
            let err = create(id, &[]).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidParameter, "{id}");
            assert!(err.message.contains("at 'collectionId'"), "{}", err.message);
        }
    }

    #[test]
    fn a_missing_collection_id_is_an_invalid_parameter() {
        let err = validator().collection_id(None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter);
        assert!(err.message.contains("Member must not be null"));
    }

    #[test]
    fn accepts_tags_with_unicode_letters_numbers_and_separators() {
        assert_eq!(
            create("c", &[("Team Größe", "Ünïcødé 42 _.:/=+-@"), ("k", "")]),
            Ok(())
        );
    }

    #[test]
    fn rejects_tag_keys_starting_with_aws_prefix() {
        let err = create("c", &[("aws:owner", "x")]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter);
    }

    #[test]
    fn rejects_tag_keys_that_are_empty_too_long_or_have_other_symbols() {
        for key in ["", &"k".repeat(129), "a*b", "tab\tkey"] {
            assert!(create("c", &[(key, "v")]).is_err(), "{key:?}");
        }
        assert_eq!(create("c", &[(&"k".repeat(128), "v")]), Ok(()));
    }

    #[test]
    fn rejects_tag_values_that_are_too_long_or_have_other_symbols() {
        assert!(create("c", &[("k", &"v".repeat(257))]).is_err());
        assert!(create("c", &[("k", "semi;colon")]).is_err());
        assert_eq!(create("c", &[("k", &"v".repeat(256))]), Ok(()));
    }

    #[test]
    fn rejects_more_than_two_hundred_tags() {
        let many: Vec<(String, String)> = (0..201).map(|i| (format!("k{i}"), "v".into())).collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(create("c", &refs).is_err());
        assert_eq!(create("c", &refs[..200]), Ok(()));
    }

    #[test]
    fn reports_every_violation_in_one_message() {
        let err = create("bad id", &[("aws:x", "v")]).unwrap_err();
        assert!(
            err.message.starts_with("2 validation errors detected"),
            "{}",
            err.message
        );
    }

    #[test]
    fn untag_accepts_at_most_fifty_keys() {
        let input = |n: usize| UntagResourceInput {
            resource_arn: Some("arn:aws:rekognition:us-east-1:123456789012:collection/c".into()),
            tag_keys: Some((0..n).map(|i| format!("k{i}")).collect()),
        };
        assert_eq!(validator().untag_resource(&input(50)), Ok(()));
        assert!(validator().untag_resource(&input(51)).is_err());
    }

    #[test]
    fn resource_arns_must_be_20_to_2048_characters() {
        assert!(validator().resource_arn(Some("arn:aws:short")).is_err());
        assert!(validator().resource_arn(Some(&"a".repeat(2049))).is_err());
        assert!(validator().resource_arn(None).is_err());
        assert_eq!(validator().resource_arn(Some(&"a".repeat(20))), Ok(()));
    }

    #[test]
    fn max_results_must_be_between_0_and_4096() {
        let input = |n| ListCollectionsInput {
            next_token: None,
            max_results: Some(n),
        };
        assert!(validator().list_collections(&input(-1)).is_err());
        assert!(validator().list_collections(&input(4097)).is_err());
        assert_eq!(validator().list_collections(&input(0)), Ok(()));
        assert_eq!(validator().list_collections(&input(4096)), Ok(()));
    }

    #[test]
    fn parses_collection_arns() {
        let arn = CollectionArn::parse("arn:aws:rekognition:us-east-1:123456789012:collection/a.b")
            .unwrap();
        assert_eq!(arn.region, "us-east-1");
        assert_eq!(arn.account_id, "123456789012");
        assert_eq!(arn.collection_id, "a.b");
        assert_eq!(
            arn.without_arn_prefix(),
            "aws:rekognition:us-east-1:123456789012:collection/a.b"
        );
    }

    #[test]
    fn arns_of_other_services_or_resources_are_not_collection_arns() {
        for arn in [
            "arn:aws:s3:us-east-1:123456789012:collection/a",
            "arn:aws:rekognition:us-east-1:123456789012:project/a",
            "aws:rekognition:us-east-1:123456789012:collection/a",
            "arn:aws:rekognition:us-east-1",
        ] {
            assert_eq!(CollectionArn::parse(arn), None, "{arn}");
        }
    }

    #[test]
    fn call_log_label_comes_from_collection_id_or_arn() {
        let by_id = serde_json::json!({"CollectionId": "a"});
        let by_arn = serde_json::json!({
            "ResourceArn": "arn:aws:rekognition:us-east-1:123456789012:collection/b"
        });
        assert_eq!(collection_id_of(&by_id).as_deref(), Some("a"));
        assert_eq!(collection_id_of(&by_arn).as_deref(), Some("b"));
        assert_eq!(collection_id_of(&serde_json::json!({})), None);
    }
}
