//! Server-side verification of AWS Signature Version 4 (`Authorization` header form).
//!
//! The client's canonical request is rebuilt from what arrived on the wire, signed with the
//! secret of the access key it names (looked up by the caller), and compared in constant time. Failures are answered with the error types
//! AWS uses for them. Only the header form is supported; presigned query strings are not used by
//! the SDK for JSON protocols.

use axum::http::HeaderMap;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::protocol::{AuthErrorKind, AuthFailure};

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Format of `X-Amz-Date` and of the date in the string to sign.
pub const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const TERMINATOR: &str = "aws4_request";

type HmacSha256 = Hmac<Sha256>;

/// Verifies signatures for one region and service; the secret of each access key comes from
/// whoever calls [`Verifier::verify`].
#[derive(Debug, Clone)]
pub struct Verifier {
    region: String,
    service: String,
    max_skew: TimeDelta,
}

/// The parts of an HTTP request that a SigV4 signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Path exactly as it arrived (still percent-encoded).
    pub path: &'a str,
    /// Raw query string without the `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The fields of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminator: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Verifier {
    pub fn new(
        region: impl Into<String>,
        service: impl Into<String>,
        max_skew: std::time::Duration,
    ) -> Self {
        Verifier {
            region: region.into(),
            service: service.into(),
            max_skew: TimeDelta::from_std(max_skew).unwrap_or(TimeDelta::MAX),
        }
    }

    /// Checks the request's signature as of `now`. `secret_for` resolves the access key of the
    /// parsed `Authorization` header to its secret, or refuses it; on success the header is
    /// returned so the caller knows which key signed.
    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        now: DateTime<Utc>,
        secret_for: impl FnOnce(&Authorization) -> Result<String, AuthFailure>,
    ) -> Result<Authorization, AuthFailure> {
        let Some(header) = request.headers.get("authorization") else {
            return Err(AuthFailure::of_kind(
                AuthErrorKind::MissingAuthenticationToken,
            ));
        };
        let header = header.to_str().map_err(|_| {
            incomplete("Authorization header contains characters that are not visible ASCII.")
        })?;
        let auth = parse_authorization(header)?;

        let secret = secret_for(&auth)?;

        let (signed_at, amz_date) = request_time(request.headers)?;
        self.check_scope(&auth, &amz_date)?;
        if !auth.signed_headers.iter().any(|h| h == "host") {
            return Err(incomplete(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ));
        }
        self.check_clock(signed_at, now)?;

        let payload_hash = payload_hash(request)?;
        let canonical = canonical_request(request, &auth.signed_headers, &payload_hash);
        let scope = format!(
            "{}/{}/{}/{TERMINATOR}",
            auth.date, auth.region, auth.service
        );
        let to_sign = string_to_sign(&amz_date, &scope, &canonical);
        let key =
            signing_key(&secret, &auth.date, &self.region, &self.service).map_err(internal)?;

        let provided = hex::decode(&auth.signature).unwrap_or_default();
        let mut mac = HmacSha256::new_from_slice(&key).map_err(internal)?;
        mac.update(to_sign.as_bytes());
        // `verify_slice` compares in constant time, so timing reveals nothing about the secret.
        mac.verify_slice(&provided).map_err(|_| {
            AuthFailure::new(
                AuthErrorKind::InvalidSignature,
                format!(
                    "The request signature we calculated does not match the signature you \
                     provided. Check your AWS Secret Access Key and signing method. Consult the \
                     service documentation for details.\n\nThe Canonical String for this request \
                     should have been\n'{canonical}'\n\nThe String-to-Sign should have been\n\
                     '{to_sign}'\n"
                ),
            )
        })?;
        Ok(auth)
    }

    fn check_scope(&self, auth: &Authorization, amz_date: &str) -> Result<(), AuthFailure> {
        let invalid =
            |message: String| Err(AuthFailure::new(AuthErrorKind::InvalidSignature, message));
        if !amz_date.starts_with(&auth.date) || auth.date.len() != 8 {
            return invalid(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{}', from '{amz_date}'.",
                auth.date,
                amz_date.get(..8).unwrap_or(amz_date)
            ));
        }
        if auth.region != self.region {
            return invalid(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                auth.region
            ));
        }
        if auth.service != self.service {
            return invalid(format!(
                "Credential should be scoped to correct service: '{}'. ",
                self.service
            ));
        }
        if auth.terminator != TERMINATOR {
            return invalid(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'. ",
                auth.terminator
            ));
        }
        Ok(())
    }

    fn check_clock(&self, signed_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), AuthFailure> {
        let fmt = |t: DateTime<Utc>| t.format(AMZ_DATE_FORMAT).to_string();
        let minutes = self.max_skew.num_minutes();
        let earliest = now - self.max_skew;
        let latest = now + self.max_skew;
        if signed_at < earliest {
            return Err(AuthFailure::new(
                AuthErrorKind::InvalidSignature,
                format!(
                    "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
                    fmt(signed_at),
                    fmt(earliest),
                    fmt(now)
                ),
            ));
        }
        if signed_at > latest {
            return Err(AuthFailure::new(
                AuthErrorKind::InvalidSignature,
                format!(
                    "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
                    fmt(signed_at),
                    fmt(latest),
                    fmt(now)
                ),
            ));
        }
        Ok(())
    }
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization<'a>(value: &'a str) -> Result<Authorization, AuthFailure> {
    let value = value.trim();
    let (algorithm, parameters) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Only {ALGORITHM} is supported."
        )));
    }

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in parameters
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let Some((key, val)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization \
                 header: '{value}'."
            )));
        };
        match key.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed_headers = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }
    let require = |field: Option<&'a str>, name: &str| {
        field.filter(|v| !v.is_empty()).ok_or_else(|| {
            incomplete(format!(
                "Authorization header requires '{name}' parameter. Authorization={value}"
            ))
        })
    };
    let credential = require(credential, "Credential")?;
    let signed_headers = require(signed_headers, "SignedHeaders")?;
    let signature = require(signature, "Signature")?;

    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(incomplete(format!(
            "Credential '{credential}' is not of the form \
             <AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request."
        )));
    };
    Ok(Authorization {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        terminator: terminator.to_owned(),
        signed_headers: signed_headers
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        signature: signature.to_owned(),
    })
}

/// Builds the canonical request: method, URI, query, headers, signed header list, payload hash.
pub fn canonical_request(
    request: &SignedRequest<'_>,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let mut out = String::new();
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_uri(request.path));
    out.push('\n');
    out.push_str(&canonical_query(request.query.unwrap_or("")));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = request
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| normalize_header_value(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// The string to sign: algorithm, request time, credential scope and canonical request hash.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Derives the signing key from the secret and the credential scope.
pub fn signing_key(
    secret_access_key: &str,
    date: &str,
    region: &str,
    service: &str,
) -> Result<[u8; 32], hmac::digest::InvalidLength> {
    let k_date = hmac_sha256(
        format!("AWS4{secret_access_key}").as_bytes(),
        date.as_bytes(),
    )?;
    let k_region = hmac_sha256(&k_date, region.as_bytes())?;
    let k_service = hmac_sha256(&k_region, service.as_bytes())?;
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// Percent-encodes as SigV4 requires: everything but `A-Za-z0-9-_.~` (and `/` unless asked).
pub fn uri_encode(bytes: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (b == b'/' && !encode_slash) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// Services other than S3 sign the path as sent, encoded once more.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        uri_encode(path.as_bytes(), false)
    }
}

fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), true),
                uri_encode(&percent_decode(v), true),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

fn normalize_header_value(value: &str) -> String {
    value
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

fn request_time(headers: &HeaderMap) -> Result<(DateTime<Utc>, String), AuthFailure> {
    if let Some(value) = headers.get("x-amz-date") {
        let text = value.to_str().unwrap_or_default().trim();
        let parsed = NaiveDateTime::parse_from_str(text, AMZ_DATE_FORMAT).map_err(|_| {
            incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{text}'. See \
                 http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })?;
        return Ok((parsed.and_utc(), text.to_owned()));
    }
    if let Some(value) = headers.get("date") {
        let text = value.to_str().unwrap_or_default().trim();
        let parsed = DateTime::parse_from_rfc2822(text)
            .map_err(|_| incomplete(format!("Date header '{text}' is not an HTTP date.")))?
            .with_timezone(&Utc);
        return Ok((parsed, parsed.format(AMZ_DATE_FORMAT).to_string()));
    }
    Err(incomplete(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    ))
}

// The client may declare the payload hash; a declared hash must match what was received, or the
// signature would cover a body other than the one being processed.
fn payload_hash(request: &SignedRequest<'_>) -> Result<String, AuthFailure> {
    let actual = sha256_hex(request.body);
    match request
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(actual),
        Some(UNSIGNED_PAYLOAD) => Ok(UNSIGNED_PAYLOAD.to_owned()),
        Some(declared) if declared.eq_ignore_ascii_case(&actual) => Ok(declared.to_owned()),
        Some(_) => Err(AuthFailure::new(
            AuthErrorKind::InvalidSignature,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )),
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<[u8; 32], hmac::digest::InvalidLength> {
    let mut mac = HmacSha256::new_from_slice(key)?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

fn incomplete(message: impl Into<String>) -> AuthFailure {
    AuthFailure::new(AuthErrorKind::IncompleteSignature, message)
}

// HMAC takes keys of any length, so this cannot happen; it is refused rather than unwrapped.
fn internal(_: hmac::digest::InvalidLength) -> AuthFailure {
    AuthFailure::new(
        AuthErrorKind::InvalidSignature,
        "The signing key could not be derived.",
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use axum::http::HeaderValue;
    use chrono::TimeZone;

    use super::*;

    // The worked example of AWS's SigV4 documentation (IAM ListUsers, 2015-08-30).
    const DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const DOC_SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    fn doc_headers(signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        headers.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
        );
        headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        headers
    }

    fn doc_request(headers: &HeaderMap) -> SignedRequest<'_> {
        SignedRequest {
            method: "GET",
            path: "/",
            query: Some("Version=2010-05-08&Action=ListUsers"),
            headers,
            body: b"",
        }
    }

    fn doc_verifier() -> Verifier {
        Verifier::new("us-east-1", "iam", Duration::from_secs(900))
    }

    fn doc_secret(auth: &Authorization) -> Result<String, AuthFailure> {
        match auth.access_key_id.as_str() {
            "AKIDEXAMPLE" => Ok(DOC_SECRET.to_owned()),
            _ => Err(AuthFailure::of_kind(AuthErrorKind::UnrecognizedClient)),
        }
    }

    fn doc_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap()
    }

    #[test]
    fn canonical_request_matches_the_documented_example() {
        let headers = doc_headers(DOC_SIGNATURE);
        let signed: Vec<String> = ["content-type", "host", "x-amz-date"]
            .map(String::from)
            .to_vec();
        let canonical = canonical_request(&doc_request(&headers), &signed, &sha256_hex(b""));
        assert_eq!(
            canonical,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
             content-type:application/x-www-form-urlencoded; charset=utf-8\n\
             host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             content-type;host;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
    }

    #[test]
    fn signing_key_matches_the_documented_example() {
        let key = signing_key(DOC_SECRET, "20150830", "us-east-1", "iam").unwrap();
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn accepts_the_documented_signature() {
        let headers = doc_headers(DOC_SIGNATURE);
        let auth = doc_verifier()
            .verify(&doc_request(&headers), doc_time(), doc_secret)
            .unwrap();
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
    }

    #[test]
    fn rejects_a_signature_off_by_one_digit() {
        let headers = doc_headers(&DOC_SIGNATURE.replace("5d67", "5d68"));
        let err = doc_verifier()
            .verify(&doc_request(&headers), doc_time(), doc_secret)
            .unwrap_err();
        assert_eq!(err.kind, AuthErrorKind::InvalidSignature);
        assert!(err.message.contains("Canonical String"), "{}", err.message);
    }

    #[test]
    fn rejects_a_request_signed_twenty_minutes_ago_as_expired() {
        let headers = doc_headers(DOC_SIGNATURE);
        let later = doc_time() + TimeDelta::minutes(20);
        let err = doc_verifier()
            .verify(&doc_request(&headers), later, doc_secret)
            .unwrap_err();
        assert_eq!(err.kind, AuthErrorKind::InvalidSignature);
        assert!(
            err.message.starts_with("Signature expired"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rejects_a_request_signed_twenty_minutes_ahead() {
        let headers = doc_headers(DOC_SIGNATURE);
        let earlier = doc_time() - TimeDelta::minutes(20);
        let err = doc_verifier()
            .verify(&doc_request(&headers), earlier, doc_secret)
            .unwrap_err();
        assert!(
            err.message.starts_with("Signature not yet current"),
            "{}",
            err.message
        );
    }

    #[test]
    fn missing_authorization_is_a_missing_token() {
        let headers = HeaderMap::new();
        let err = doc_verifier()
            .verify(&doc_request(&headers), doc_time(), doc_secret)
            .unwrap_err();
        assert_eq!(err.kind, AuthErrorKind::MissingAuthenticationToken);
    }

    #[test]
    fn unknown_access_key_is_an_unrecognized_client() {
        let mut headers = doc_headers(DOC_SIGNATURE);
        let auth = headers["authorization"]
            .to_str()
            .unwrap()
            .replace("AKIDEXAMPLE", "AKIDOTHER");
        headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        let err = doc_verifier()
            .verify(&doc_request(&headers), doc_time(), doc_secret)
            .unwrap_err();
        assert_eq!(err.kind, AuthErrorKind::UnrecognizedClient);
    }

    #[test]
    fn a_scope_for_another_region_is_an_invalid_signature() {
        let verifier = Verifier::new("eu-west-1", "iam", Duration::from_secs(900));
        let headers = doc_headers(DOC_SIGNATURE);
        let err = verifier
            .verify(&doc_request(&headers), doc_time(), doc_secret)
            .unwrap_err();
        assert_eq!(err.kind, AuthErrorKind::InvalidSignature);
        assert!(err.message.contains("valid region"), "{}", err.message);
    }

    #[test]
    fn authorization_without_signature_is_incomplete() {
        let err = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=host",
        )
        .unwrap_err();
        assert_eq!(err.kind, AuthErrorKind::IncompleteSignature);
    }

    #[test]
    fn parses_all_authorization_fields() {
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request,\
             SignedHeaders=Host;X-Amz-Date,Signature=abc",
        )
        .unwrap();
        assert_eq!(auth.access_key_id, "AKID");
        assert_eq!(auth.date, "20150830");
        assert_eq!(auth.region, "us-east-1");
        assert_eq!(auth.service, "iam");
        assert_eq!(auth.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(auth.signature, "abc");
    }

    #[test]
    fn query_parameters_are_decoded_reencoded_and_sorted() {
        assert_eq!(canonical_query("b=2&a=x%20y&a=%41&c"), "a=A&a=x%20y&b=2&c=");
        assert_eq!(canonical_query("k=a+b/c"), "k=a%2Bb%2Fc");
    }

    #[test]
    fn paths_are_encoded_once_more() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a b/%41"), "/a%20b/%2541");
    }

    #[test]
    fn header_values_are_trimmed_and_inner_spaces_collapsed() {
        assert_eq!(normalize_header_value("  a   b  c "), "a b c");
    }

    #[test]
    fn a_declared_payload_hash_must_match_the_body() {
        let mut headers = doc_headers(DOC_SIGNATURE);
        headers.insert("x-amz-content-sha256", HeaderValue::from_static("00"));
        let err = doc_verifier()
            .verify(&doc_request(&headers), doc_time(), doc_secret)
            .unwrap_err();
        assert_eq!(err.kind, AuthErrorKind::InvalidSignature);
    }

    #[test]
    fn accepts_what_the_aws_signer_produces() {
        use aws_credential_types::Credentials;
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;

        let body = br#"{"CollectionId":"abc"}"#;
        let identity =
            Credentials::new("AKID", "secret", Some("token".into()), None, "test").into();
        let now = SystemTime::now();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("rekognition")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let base = [
            ("host", "127.0.0.1:4566"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "RekognitionService.DescribeCollection"),
        ];
        let signable = SignableRequest::new(
            "POST",
            "http://127.0.0.1:4566/",
            base.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut headers = HeaderMap::new();
        for (name, value) in base {
            headers.insert(name, HeaderValue::from_static(value));
        }
        for (name, value) in instructions.headers() {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            headers.insert(name, HeaderValue::from_str(value).unwrap());
        }
        let request = SignedRequest {
            method: "POST",
            path: "/",
            query: None,
            headers: &headers,
            body,
        };
        let verifier = Verifier::new("us-east-1", "rekognition", Duration::from_secs(900));
        let auth = verifier
            .verify(&request, DateTime::<Utc>::from(now), |_| {
                Ok("secret".to_owned())
            })
            .unwrap();
        assert!(
            auth.signed_headers
                .iter()
                .any(|h| h == "x-amz-security-token")
        );
    }
}
