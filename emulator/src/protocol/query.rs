//! The AWS Query protocol as STS speaks it: form-encoded `Action=…&Version=2011-06-15`
//! parameters (in the body of a POST or the query string), XML answers wrapped in
//! `<{Action}Response><{Action}Result>`, and XML errors in an `<ErrorResponse>`.

use std::collections::BTreeMap;
use std::fmt;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

use super::{AuthErrorKind, AuthFailure, REQUEST_ID_HEADER};

/// The only API version STS has.
pub const STS_VERSION: &str = "2011-06-15";
/// The XML namespace of every STS answer.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// Content type of Query requests.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
const XML_CONTENT_TYPE: &str = "text/xml";

/// A decoded Query request: the action, the version and every other parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryRequest {
    pub action: Option<String>,
    pub version: Option<String>,
    pub params: BTreeMap<String, String>,
}

impl QueryRequest {
    /// Parameters from the URL's query string and the form body; the body wins on conflicts.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<QueryRequest, QueryError> {
        let malformed = |err: serde_urlencoded::de::Error| {
            QueryError::new(QueryErrorKind::MalformedQueryString, err.to_string())
        };
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        if let Some(query) = query {
            params.extend(
                serde_urlencoded::from_str::<Vec<(String, String)>>(query).map_err(malformed)?,
            );
        }
        params.extend(
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).map_err(malformed)?,
        );
        Ok(QueryRequest {
            action: params.remove("Action"),
            version: params.remove("Version"),
            params,
        })
    }

    /// A parameter, if present and non-empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Every error code the emulated STS answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryErrorKind {
    // Errors of STS's service model.
    AccessDenied,
    ExpiredTokenException,
    IdpRejectedClaim,
    InvalidIdentityToken,
    // Errors every Query service shares.
    ExpiredToken,
    IncompleteSignature,
    InternalFailure,
    InvalidAction,
    InvalidClientTokenId,
    MalformedQueryString,
    MissingAction,
    MissingAuthenticationToken,
    SignatureDoesNotMatch,
    ValidationError,
}

impl QueryErrorKind {
    /// The `<Code>` of the error, which the SDK reports as the error code.
    pub fn code(self) -> &'static str {
        match self {
            QueryErrorKind::AccessDenied => "AccessDenied",
            QueryErrorKind::ExpiredTokenException => "ExpiredTokenException",
            QueryErrorKind::IdpRejectedClaim => "IDPRejectedClaim",
            QueryErrorKind::InvalidIdentityToken => "InvalidIdentityToken",
            QueryErrorKind::ExpiredToken => "ExpiredToken",
            QueryErrorKind::IncompleteSignature => "IncompleteSignature",
            QueryErrorKind::InternalFailure => "InternalFailure",
            QueryErrorKind::InvalidAction => "InvalidAction",
            QueryErrorKind::InvalidClientTokenId => "InvalidClientTokenId",
            QueryErrorKind::MalformedQueryString => "MalformedQueryString",
            QueryErrorKind::MissingAction => "MissingAction",
            QueryErrorKind::MissingAuthenticationToken => "MissingAuthenticationToken",
            QueryErrorKind::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            QueryErrorKind::ValidationError => "ValidationError",
        }
    }

    /// The HTTP status STS answers the error with.
    pub fn status(self) -> StatusCode {
        match self {
            QueryErrorKind::AccessDenied
            | QueryErrorKind::IdpRejectedClaim
            | QueryErrorKind::ExpiredToken
            | QueryErrorKind::InvalidClientTokenId
            | QueryErrorKind::MissingAuthenticationToken
            | QueryErrorKind::SignatureDoesNotMatch => StatusCode::FORBIDDEN,
            QueryErrorKind::ExpiredTokenException
            | QueryErrorKind::InvalidIdentityToken
            | QueryErrorKind::IncompleteSignature
            | QueryErrorKind::InvalidAction
            | QueryErrorKind::MalformedQueryString
            | QueryErrorKind::MissingAction
            | QueryErrorKind::ValidationError => StatusCode::BAD_REQUEST,
            QueryErrorKind::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for QueryErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An error answered to a Query client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub kind: QueryErrorKind,
    pub message: String,
}

impl QueryError {
    pub fn new(kind: QueryErrorKind, message: impl Into<String>) -> Self {
        QueryError {
            kind,
            message: message.into(),
        }
    }

    /// `ValidationError` in the "N validation error detected" form of the service.
    pub fn validation(message: impl fmt::Display) -> Self {
        QueryError::new(
            QueryErrorKind::ValidationError,
            format!("1 validation error detected: {message}"),
        )
    }

    /// The XML body: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`.
    pub fn body(&self, request_id: &str) -> String {
        // Client mistakes are the `Sender`'s, server failures the `Receiver`'s.
        let party = if self.kind.status().is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        render(
            "ErrorResponse",
            &[
                Node::branch(
                    "Error",
                    vec![
                        Node::leaf("Type", party),
                        Node::leaf("Code", self.kind.code()),
                        Node::leaf("Message", &self.message),
                    ],
                ),
                Node::leaf("RequestId", request_id),
            ],
        )
    }

    /// The complete HTTP response.
    pub fn into_response(self, request_id: &str) -> Response {
        xml_response(self.kind.status(), self.body(request_id), request_id)
    }
}

impl From<AuthFailure> for QueryError {
    fn from(failure: AuthFailure) -> Self {
        let kind = match failure.kind {
            AuthErrorKind::MissingAuthenticationToken => QueryErrorKind::MissingAuthenticationToken,
            AuthErrorKind::IncompleteSignature => QueryErrorKind::IncompleteSignature,
            AuthErrorKind::InvalidSignature => QueryErrorKind::SignatureDoesNotMatch,
            AuthErrorKind::UnrecognizedClient => QueryErrorKind::InvalidClientTokenId,
            AuthErrorKind::ExpiredToken => QueryErrorKind::ExpiredToken,
        };
        QueryError::new(kind, failure.message)
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// One XML element of an answer: text, or child elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Leaf(&'static str, String),
    Branch(&'static str, Vec<Node>),
}

impl Node {
    pub fn leaf(name: &'static str, text: impl Into<String>) -> Node {
        Node::Leaf(name, text.into())
    }

    pub fn branch(name: &'static str, children: Vec<Node>) -> Node {
        Node::Branch(name, children)
    }
}

/// A `200 OK` answer to `action`: its result elements inside `<{action}Result>`, then the
/// response metadata.
pub fn success_response(action: &str, result: Vec<Node>, request_id: &str) -> Response {
    let root = format!("{action}Response");
    let result_name = format!("{action}Result");
    let mut writer = Writer::new(Vec::new());
    let written = (|| {
        writer.write_event(Event::Start(
            BytesStart::new(root.as_str()).with_attributes([("xmlns", STS_NAMESPACE)]),
        ))?;
        writer.write_event(Event::Start(BytesStart::new(result_name.as_str())))?;
        for node in &result {
            write_node(&mut writer, node)?;
        }
        writer.write_event(Event::End(BytesEnd::new(result_name.as_str())))?;
        write_node(
            &mut writer,
            &Node::branch(
                "ResponseMetadata",
                vec![Node::leaf("RequestId", request_id)],
            ),
        )?;
        writer.write_event(Event::End(BytesEnd::new(root.as_str())))
    })();
    match written {
        Ok(()) => xml_response(
            StatusCode::OK,
            String::from_utf8_lossy(&writer.into_inner()).into_owned(),
            request_id,
        ),
        Err(err) => QueryError::new(QueryErrorKind::InternalFailure, err.to_string())
            .into_response(request_id),
    }
}

// Writing into a `Vec` cannot fail; should it ever, the document is left empty.
fn render(root: &str, children: &[Node]) -> String {
    let mut writer = Writer::new(Vec::new());
    let written = (|| {
        writer.write_event(Event::Start(
            BytesStart::new(root).with_attributes([("xmlns", STS_NAMESPACE)]),
        ))?;
        for node in children {
            write_node(&mut writer, node)?;
        }
        writer.write_event(Event::End(BytesEnd::new(root)))
    })();
    match written {
        Ok(()) => String::from_utf8_lossy(&writer.into_inner()).into_owned(),
        Err(_) => String::new(),
    }
}

fn write_node(writer: &mut Writer<Vec<u8>>, node: &Node) -> std::io::Result<()> {
    match node {
        Node::Leaf(name, text) => {
            writer.write_event(Event::Start(BytesStart::new(*name)))?;
            writer.write_event(Event::Text(BytesText::new(text)))?;
            writer.write_event(Event::End(BytesEnd::new(*name)))
        }
        Node::Branch(name, children) => {
            writer.write_event(Event::Start(BytesStart::new(*name)))?;
            for child in children {
                write_node(writer, child)?;
            }
            writer.write_event(Event::End(BytesEnd::new(*name)))
        }
    }
}

fn xml_response(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(XML_CONTENT_TYPE),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_come_from_the_form_body_and_the_query_string() {
        let request = QueryRequest::parse(
            Some("Version=2011-06-15"),
            b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=s",
        )
        .unwrap();
        assert_eq!(request.action.as_deref(), Some("AssumeRole"));
        assert_eq!(request.version.as_deref(), Some(STS_VERSION));
        assert_eq!(request.param("RoleArn"), Some("arn:aws:iam::1:role/r"));
        assert_eq!(request.param("RoleSessionName"), Some("s"));
        assert_eq!(request.param("ExternalId"), None);
    }

    #[test]
    fn errors_are_written_in_the_error_response_shape() {
        let body = QueryError::new(QueryErrorKind::AccessDenied, "no <way>").body("rid");
        assert_eq!(
            body,
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
             <Type>Sender</Type><Code>AccessDenied</Code><Message>no &lt;way&gt;</Message>\
             </Error><RequestId>rid</RequestId></ErrorResponse>"
        );
    }

    #[test]
    fn server_failures_are_the_receivers() {
        let body = QueryError::new(QueryErrorKind::InternalFailure, "oops").body("rid");
        assert!(body.contains("<Type>Receiver</Type>"));
    }

    #[test]
    fn authentication_failures_take_the_query_protocol_codes() {
        let cases = [
            (
                AuthErrorKind::UnrecognizedClient,
                "InvalidClientTokenId",
                403,
            ),
            (
                AuthErrorKind::InvalidSignature,
                "SignatureDoesNotMatch",
                403,
            ),
            (AuthErrorKind::ExpiredToken, "ExpiredToken", 403),
            (
                AuthErrorKind::MissingAuthenticationToken,
                "MissingAuthenticationToken",
                403,
            ),
            (
                AuthErrorKind::IncompleteSignature,
                "IncompleteSignature",
                400,
            ),
        ];
        for (kind, code, status) in cases {
            let err = QueryError::from(AuthFailure::of_kind(kind));
            assert_eq!(err.kind.code(), code);
            assert_eq!(err.kind.status().as_u16(), status);
        }
    }
}
