//! The `IdentityStore` port: local people, browser sessions and labelled API tokens.
//!
//! Kept apart from the [`Store`](crate::store::Store) port so that identity features grow
//! without every adapter of the control-plane store having to follow; `gatehouse-store`
//! implements it over the same database (migration 0420).
//!
//! A local person's record holds a password hash and a fallback list of roles. When the served
//! pack declares a `Person` with the same id, the pack's roles and name win (see
//! [`LocalUser::effective_roles`]): the pack is where people and their duties are reviewed, the
//! database only proves who someone is.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::identity::{ApiTokenRecord, TokenId};
use crate::session::{SessionId, SessionRecord};
use crate::store::StoreError;

/// A person who signs in to this gatehouse with a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalUser {
    /// The principal id (the same id as the pack `Person`, when there is one).
    pub id: String,
    /// Display name (the pack `Person`'s name wins when there is one).
    pub display: String,
    /// Roles used when the pack declares no `Person` with this id.
    pub roles: Vec<String>,
    /// Argon2id PHC string; `None` when the person cannot sign in with a password.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Set by `gatehouse user disable`: no sign-in, sessions and tokens ended.
    pub disabled_at: Option<Timestamp>,
}

impl LocalUser {
    /// Whether the person is disabled at `now`.
    pub fn is_disabled(&self, now: Timestamp) -> bool {
        self.disabled_at.is_some_and(|at| at <= now)
    }

    /// The roles the person holds: the pack `Person`'s when the pack declares one with this id
    /// (`pack_roles`), otherwise the stored ones.
    pub fn effective_roles(&self, pack_roles: Option<Vec<String>>) -> Vec<String> {
        pack_roles.unwrap_or_else(|| self.roles.clone())
    }
}

/// An API token record with the label its creator gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledToken {
    pub record: ApiTokenRecord,
    pub label: Option<String>,
}

/// What disabling a person ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DisableOutcome {
    /// API tokens of the person revoked by the disable.
    pub tokens_revoked: u64,
    /// Sessions of the person ended by the disable.
    pub sessions_ended: u64,
    /// Whether the person was already disabled (the original time is kept).
    pub already_disabled: bool,
}

/// Persistence of local people, sessions and token labels.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Stores a new person; [`StoreError::Conflict`] if the id exists.
    async fn insert_user(&self, user: &LocalUser) -> Result<(), StoreError>;

    /// The person with id `id`, if any.
    async fn find_user(&self, id: &str) -> Result<Option<LocalUser>, StoreError>;

    /// All people, by id, capped at [`crate::store::MAX_PAGE_SIZE`].
    async fn list_users(&self) -> Result<Vec<LocalUser>, StoreError>;

    /// Disables the person as of `at` and, in the same transaction, revokes their API tokens
    /// and ends their sessions. [`StoreError::NotFound`] if the person does not exist.
    async fn disable_user(&self, id: &str, at: Timestamp) -> Result<DisableOutcome, StoreError>;

    /// Stores a new session; [`StoreError::Conflict`] if its id exists.
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// The session with id `id`, if any.
    async fn find_session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError>;

    /// Records activity on the session at `at`; [`StoreError::NotFound`] if it does not exist.
    async fn touch_session(&self, id: &SessionId, at: Timestamp) -> Result<(), StoreError>;

    /// Ends the session at `at` (logout); ending an ended session keeps the first time.
    /// [`StoreError::NotFound`] if it does not exist.
    async fn end_session(&self, id: &SessionId, at: Timestamp) -> Result<(), StoreError>;

    /// Deletes sessions that expired (absolute timeout) or ended before `before`, so the table
    /// stays bounded; returns how many were deleted.
    async fn purge_sessions(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Stores a new API token with a label; [`StoreError::Conflict`] if its id exists.
    async fn insert_labeled_token(
        &self,
        record: &ApiTokenRecord,
        label: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Token records with their labels, oldest first, capped at
    /// [`crate::store::MAX_PAGE_SIZE`]; only `principal`'s when given.
    async fn list_labeled_tokens(
        &self,
        principal: Option<&str>,
    ) -> Result<Vec<LabeledToken>, StoreError>;

    /// The label of token `id`, if the token exists and has one.
    async fn token_label(&self, id: &TokenId) -> Result<Option<String>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_roles_win_over_stored_roles() {
        let user = LocalUser {
            id: "alice".into(),
            display: "alice".into(),
            roles: vec!["admin".into()],
            password_hash: Some("$argon2id$secret".into()),
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            disabled_at: None,
        };
        assert_eq!(user.effective_roles(None), vec!["admin".to_owned()]);
        assert_eq!(
            user.effective_roles(Some(vec!["submitter".into()])),
            vec!["submitter".to_owned()]
        );
        assert_eq!(user.effective_roles(Some(vec![])), Vec::<String>::new());
        assert!(!serde_json::to_string(&user).unwrap().contains("$argon2id$"));
        assert!(!user.is_disabled(Timestamp::MAX));
    }
}
