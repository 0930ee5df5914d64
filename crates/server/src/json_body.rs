//! A JSON body extractor whose errors name the offending field.
//!
//! axum's `Json` rejects bad input with plain text; API clients (and the people reading CI logs)
//! need to know *which* field is wrong, so this extractor tracks the path while deserializing
//! and answers with the standard JSON error carrying `field`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A deserialized JSON request body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::BadRequest(
                "the request body must be JSON: send `Content-Type: application/json`".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(rejection.body_text())
            } else {
                ApiError::BadRequest(format!(
                    "cannot read the request body: {}",
                    rejection.body_text()
                ))
            }
        })?;
        parse(&bytes).map(Self)
    }
}

/// Deserializes `bytes`, turning any error into an [`ApiError`] naming the field at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(describe)?;
    deserializer
        .end()
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON after the body: {e}")))?;
    Ok(value)
}

fn describe(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_syntax() || inner.is_eof() || inner.is_io() {
        return ApiError::BadRequest(format!("the request body is not valid JSON: {inner}"));
    }
    let message = inner.to_string();
    // serde reports a missing field at the *containing* object's path, with the field's name
    // only in the message between backticks; an unknown field's path already ends with it.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let field = match (missing, path.as_str()) {
        (Some(name), ".") => name.to_owned(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, ".") => message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            .unwrap_or("body")
            .to_owned(),
        (None, at) => at.to_owned(),
    };
    // Drop serde_json's " at line 1 column 42" suffix: the field name says more.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(head, _)| head)
        .to_owned();
    ApiError::invalid_field(field, message)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        summary: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        service: String,
        #[allow(dead_code)]
        digests: Vec<String>,
        #[allow(dead_code)]
        change: Inner,
    }

    fn field_of(json: &str) -> String {
        match parse::<Body>(json.as_bytes()).unwrap_err() {
            ApiError::InvalidField(problems) => problems[0].field.clone(),
            other => panic!("expected invalid_field, got {other:?}"),
        }
    }

    #[test]
    fn missing_top_level_field_is_named() {
        assert_eq!(
            field_of(r#"{"digests": [], "change": {"summary": "x"}}"#),
            "service"
        );
    }

    #[test]
    fn missing_nested_field_is_named_with_its_parent() {
        assert_eq!(
            field_of(r#"{"service": "s", "digests": [], "change": {}}"#),
            "change.summary"
        );
    }

    #[test]
    fn wrong_type_in_array_names_the_index() {
        assert_eq!(
            field_of(r#"{"service": "s", "digests": ["a", 7], "change": {"summary": "x"}}"#),
            "digests[1]"
        );
    }

    #[test]
    fn unknown_field_is_named() {
        assert_eq!(
            field_of(r#"{"service": "s", "digests": [], "change": {"summary": "x"}, "sevice": 1}"#),
            "sevice"
        );
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        assert!(matches!(
            parse::<Body>(b"{\"service\": "),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse::<Body>(b"{} trailing"),
            Err(ApiError::BadRequest(_)) | Err(ApiError::InvalidField(_))
        ));
    }
}
