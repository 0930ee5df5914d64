//! gatehouse's own security telemetry: authentication failures, permission denials, token and
//! key lifecycle, pack reloads, as ECS-shaped events in the event store.
//!
//! The audit log answers "what happened, provably"; it is not something detection rules read.
//! Attacks on gatehouse itself (password spraying, a stolen token probing for permissions, an
//! unexpected pack reload) must be alertable like any other source, so each security-relevant
//! outcome is also appended to the event store with source [`SOURCE`] (`gatehouse`), where the
//! online detector runs the Sigma rules over it. The taxonomy (categories, actions, fields) is
//! documented in `docs/events.md`, "gatehouse security events".
//!
//! The request's client address, method and path are picked up from the task-local
//! [`RequestContext`] that [`capture_request`] sets around each request, so callers deep in a
//! handler need not thread them through. Emitting never fails the caller's request: a store
//! failure is logged, and without an attached event store (detection not started) the event
//! only goes to the log.

use axum::extract::{ConnectInfo, Request};

use crate::hardening::ClientAddr;
use axum::middleware::Next;
use axum::response::Response;
use gatehouse_core::events::{EventStore, NewEvent};
use gatehouse_core::store::StoreError;
use serde_json::{Map, Value, json};

use crate::state::AppState;

/// Event source name of gatehouse's own security events.
pub const SOURCE: &str = "gatehouse";

/// `event.category` values used (ECS allowed values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Logins, token checks.
    Authentication,
    /// Permission checks, tokens, users, roles.
    Iam,
    /// Pack reloads, key rotation.
    Configuration,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authentication => "authentication",
            Self::Iam => "iam",
            Self::Configuration => "configuration",
        }
    }
}

/// `event.outcome` (ECS allowed values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// The `event.action` values of the taxonomy; keep `docs/events.md` in step.
pub mod action {
    /// A request presented no valid credential (category authentication, failure).
    pub const AUTHENTICATION_FAILED: &str = "authentication-failed";
    /// A credential was accepted (category authentication, success). Emitted for interactive
    /// logins only; per-request token checks would flood the store.
    pub const LOGIN: &str = "login";
    /// An authenticated principal lacked a permission or its service scope (iam, failure).
    pub const PERMISSION_DENIED: &str = "permission-denied";
    /// An API token was created (iam, success).
    pub const TOKEN_CREATED: &str = "token-created";
    /// An API token was used for the first time in a while (iam, success).
    pub const TOKEN_USED: &str = "token-used";
    /// An API token was revoked (iam, success).
    pub const TOKEN_REVOKED: &str = "token-revoked";
    /// The key-encryption key was rotated (configuration, success or failure).
    pub const KEY_ROTATED: &str = "key-rotated";
    /// The policy pack was reloaded (configuration, success or failure).
    pub const PACK_RELOADED: &str = "pack-reloaded";
}

/// One security event before it is stored.
#[derive(Debug, Clone)]
pub struct SecurityEvent {
    pub category: Category,
    /// One of [`action`].
    pub action: &'static str,
    pub outcome: Outcome,
    /// `user.id`: the principal acting, when known.
    pub user_id: Option<String>,
    /// `event.reason`: why it failed, in words (never a secret).
    pub reason: Option<String>,
    /// Further ECS or `gatehouse.*` fields, merged into the document (dotted keys allowed:
    /// `"gatehouse.permission"` becomes `{"gatehouse": {"permission": …}}`).
    pub fields: Map<String, Value>,
}

impl SecurityEvent {
    pub fn new(category: Category, action: &'static str, outcome: Outcome) -> Self {
        Self {
            category,
            action,
            outcome,
            user_id: None,
            reason: None,
            fields: Map::new(),
        }
    }

    pub fn user(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn field(mut self, dotted: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(dotted.to_owned(), value.into());
        self
    }

    /// The ECS document stored (and matched by rules), stamped `at`.
    pub fn to_ecs(&self, at: jiff::Timestamp, request: Option<&RequestContext>) -> Value {
        let mut doc = json!({
            "@timestamp": at.to_string(),
            "event": {
                "kind": "event",
                "category": [self.category.as_str()],
                "action": self.action,
                "outcome": self.outcome.as_str(),
                "provider": SOURCE,
                "dataset": "gatehouse.security",
            },
        });
        if let Some(reason) = &self.reason {
            insert_dotted(&mut doc, "event.reason", Value::String(reason.clone()));
        }
        if let Some(user) = &self.user_id {
            insert_dotted(&mut doc, "user.id", Value::String(user.clone()));
        }
        if let Some(request) = request {
            insert_dotted(&mut doc, "source.ip", Value::String(request.ip.clone()));
            insert_dotted(
                &mut doc,
                "http.request.method",
                Value::String(request.method.clone()),
            );
            insert_dotted(&mut doc, "url.path", Value::String(request.path.clone()));
        }
        for (key, value) in &self.fields {
            insert_dotted(&mut doc, key, value.clone());
        }
        doc
    }
}

/// Sets `a.b.c` in a JSON object, creating intermediate objects (replacing non-objects).
fn insert_dotted(doc: &mut Value, dotted: &str, value: Value) {
    let mut parts = dotted.split('.').peekable();
    let mut current = doc;
    while let Some(part) = parts.next() {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(map) = current else { return };
        if parts.peek().is_none() {
            map.insert(part.to_owned(), value);
            return;
        }
        current = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The client side of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The peer address of the connection (no proxy headers are trusted).
    pub ip: String,
    pub method: String,
    pub path: String,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// Middleware: makes the request's peer address, method and path available to [`emit`].
pub async fn capture_request(request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.0.ip().to_string());
    let context = RequestContext {
        ip,
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
    };
    REQUEST.scope(context, next.run(request)).await
}

/// The context of the request being served on this task, if any.
pub fn current_request() -> Option<RequestContext> {
    REQUEST.try_with(Clone::clone).ok()
}

/// Appends `event` to `events` directly, stamped `at`: for offline commands without a running
/// server (`gatehouse keys rotate`, `gatehouse token create --data-dir`). The detector of a
/// server sharing the database picks it up on its next poll.
pub async fn append_offline(
    events: &dyn EventStore,
    at: jiff::Timestamp,
    event: &SecurityEvent,
) -> Result<(), StoreError> {
    let ecs = event.to_ecs(at, None);
    let stored = NewEvent {
        source: SOURCE.to_owned(),
        received_at: at,
        event_time: Some(at),
        raw: ecs.to_string(),
        ecs,
    };
    events.append_events(&[stored]).await.map(|_| ())
}

/// Appends `event` to the event store (source `gatehouse`) and wakes the detector. Never fails:
/// a security event must not turn a denial into a 500, so a store failure is logged instead.
pub async fn emit(state: &AppState, event: SecurityEvent) {
    let now = state.clock().now();
    let request = current_request();
    let ecs = event.to_ecs(now, request.as_ref());
    tracing::info!(
        action = event.action,
        outcome = event.outcome.as_str(),
        user = event.user_id.as_deref().unwrap_or("-"),
        source_ip = request.as_ref().map_or("-", |r| r.ip.as_str()),
        reason = event.reason.as_deref().unwrap_or("-"),
        "security event"
    );
    let Some(detection) = state.detection() else {
        return;
    };
    let stored = NewEvent {
        source: SOURCE.to_owned(),
        received_at: now,
        event_time: Some(now),
        raw: ecs.to_string(),
        ecs,
    };
    match detection.events().append_events(&[stored]).await {
        Ok(_) => detection.wake(),
        Err(err) => {
            tracing::error!(error = %err, action = event.action, "cannot store a security event");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_document_uses_ecs_names_and_nests_dotted_fields() {
        let event = SecurityEvent::new(Category::Iam, action::PERMISSION_DENIED, Outcome::Failure)
            .user("alice")
            .reason("permission_not_granted")
            .field("gatehouse.permission", "gate.bypass");
        let request = RequestContext {
            ip: "192.0.2.7".into(),
            method: "POST".into(),
            path: "/api/v1/releases/x/bypass".into(),
        };
        let at: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let doc = event.to_ecs(at, Some(&request));
        assert_eq!(doc["event"]["category"], json!(["iam"]));
        assert_eq!(doc["event"]["action"], "permission-denied");
        assert_eq!(doc["event"]["outcome"], "failure");
        assert_eq!(doc["user"]["id"], "alice");
        assert_eq!(doc["source"]["ip"], "192.0.2.7");
        assert_eq!(doc["http"]["request"]["method"], "POST");
        assert_eq!(doc["gatehouse"]["permission"], "gate.bypass");
        assert_eq!(doc["@timestamp"], "2026-01-01T00:00:00Z");
    }
}
