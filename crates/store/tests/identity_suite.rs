#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The identity store (local people, sessions, token labels), run against both backends.
//!
//! Same harness as `suite.rs`: every case runs on SQLite, and on PostgreSQL when
//! `GATEHOUSE_TEST_POSTGRES_URL` is set (each test in a fresh schema);
//! `scripts/with-postgres cargo test -p gatehouse-store --test identity_suite` runs both.

#[macro_use]
mod common;

use common::TestDb;
use std::sync::Arc;

use gatehouse_core::identity::{self, AuthMethod, IssuedToken};
use gatehouse_core::identity_store::{IdentityStore, LocalUser};
use gatehouse_core::password;
use gatehouse_core::session::{self, NewSession, PresentedSession, SessionPolicy};
use gatehouse_core::store::{Store, StoreError};
use gatehouse_store::open_with_identity;
use jiff::{SignedDuration, Timestamp};

impl TestDb {
    async fn open(&self) -> (Arc<dyn Store>, Arc<dyn IdentityStore>) {
        open_with_identity(&self.config()).await.unwrap()
    }
}

suite!(
    user_round_trip_and_conflict,
    users_are_listed_by_id,
    disable_revokes_tokens_and_ends_sessions_atomically,
    disable_unknown_person_is_not_found,
    session_round_trip_touch_and_end,
    purge_deletes_only_finished_sessions,
    labeled_tokens_round_trip_and_are_seen_by_the_store_port,
    corrupt_session_row_is_reported_by_record,
);

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn person(id: &str, roles: &[&str], password_hash: Option<String>) -> LocalUser {
    LocalUser {
        id: id.into(),
        display: format!("{id} (display)"),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        password_hash,
        created_at: at(1_000),
        updated_at: at(1_000),
        disabled_at: None,
    }
}

fn policy() -> SessionPolicy {
    SessionPolicy {
        idle_timeout: SignedDuration::from_secs(600),
        absolute_timeout: SignedDuration::from_secs(3_600),
    }
}

async fn user_round_trip_and_conflict(db: &TestDb) {
    let (_, identity) = db.open().await;
    let hash = password::hash("correct horse battery").unwrap();
    let alice = person("alice", &["submitter", "approver"], Some(hash.clone()));
    identity.insert_user(&alice).await.unwrap();
    let read = identity.find_user("alice").await.unwrap().unwrap();
    assert_eq!(read, alice);
    assert!(
        password::verify(
            "correct horse battery",
            read.password_hash.as_deref().unwrap()
        )
        .unwrap()
    );
    assert!(identity.find_user("bob").await.unwrap().is_none());

    let again = person("alice", &["admin"], None);
    assert!(matches!(
        identity.insert_user(&again).await,
        Err(StoreError::Conflict { .. })
    ));
    // The first record is untouched by the refused insert.
    assert_eq!(
        identity.find_user("alice").await.unwrap().unwrap().roles,
        alice.roles
    );
}

async fn users_are_listed_by_id(db: &TestDb) {
    let (_, identity) = db.open().await;
    for id in ["carol", "alice", "bob"] {
        identity.insert_user(&person(id, &[], None)).await.unwrap();
    }
    let ids: Vec<String> = identity
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(ids, ["alice", "bob", "carol"]);
}

async fn disable_revokes_tokens_and_ends_sessions_atomically(db: &TestDb) {
    let (store, identity) = db.open().await;
    identity
        .insert_user(&person("alice", &["submitter"], None))
        .await
        .unwrap();
    identity
        .insert_user(&person("bob", &["submitter"], None))
        .await
        .unwrap();
    let alice_token =
        IssuedToken::generate("alice", vec!["submitter".into()], at(1_000), None).unwrap();
    let bob_token =
        IssuedToken::generate("bob", vec!["submitter".into()], at(1_000), None).unwrap();
    store.insert_api_token(alice_token.record()).await.unwrap();
    identity
        .insert_labeled_token(bob_token.record(), Some("bob's ci"))
        .await
        .unwrap();
    let alice_session =
        NewSession::generate("alice", AuthMethod::Password, at(1_000), &policy()).unwrap();
    let bob_session =
        NewSession::generate("bob", AuthMethod::Password, at(1_000), &policy()).unwrap();
    identity
        .insert_session(alice_session.record())
        .await
        .unwrap();
    identity.insert_session(bob_session.record()).await.unwrap();

    let outcome = identity.disable_user("alice", at(2_000)).await.unwrap();
    assert_eq!(outcome.tokens_revoked, 1);
    assert_eq!(outcome.sessions_ended, 1);
    assert!(!outcome.already_disabled);

    let alice = identity.find_user("alice").await.unwrap().unwrap();
    assert_eq!(alice.disabled_at, Some(at(2_000)));
    let token = store
        .find_api_token(&alice_token.record().id)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        identity::verify(alice_token.token(), &token, at(2_001)),
        Err(identity::TokenError::Revoked { .. })
    ));
    let stored = identity
        .find_session(&alice_session.record().id)
        .await
        .unwrap()
        .unwrap();
    let presented = PresentedSession::parse(alice_session.cookie_value()).unwrap();
    assert!(matches!(
        session::verify(&presented, &stored, at(2_001), &policy()),
        Err(session::SessionError::Ended { .. })
    ));
    // Bob is untouched.
    let bob = store
        .find_api_token(&bob_token.record().id)
        .await
        .unwrap()
        .unwrap();
    identity::verify(bob_token.token(), &bob, at(2_001)).unwrap();
    let bob_stored = identity
        .find_session(&bob_session.record().id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_stored.ended_at, None);

    // Disabling again keeps the first time and revokes nothing more.
    let again = identity.disable_user("alice", at(3_000)).await.unwrap();
    assert!(again.already_disabled);
    assert_eq!((again.tokens_revoked, again.sessions_ended), (0, 0));
    assert_eq!(
        identity
            .find_user("alice")
            .await
            .unwrap()
            .unwrap()
            .disabled_at,
        Some(at(2_000))
    );
}

async fn disable_unknown_person_is_not_found(db: &TestDb) {
    let (_, identity) = db.open().await;
    assert!(matches!(
        identity.disable_user("nobody", at(1)).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn session_round_trip_touch_and_end(db: &TestDb) {
    let (_, identity) = db.open().await;
    let new = NewSession::generate("alice", AuthMethod::Password, at(10_000), &policy()).unwrap();
    identity.insert_session(new.record()).await.unwrap();
    assert!(matches!(
        identity.insert_session(new.record()).await,
        Err(StoreError::Conflict { .. })
    ));
    let stored = identity
        .find_session(&new.record().id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&stored, new.record());
    let presented = PresentedSession::parse(new.cookie_value()).unwrap();
    // Idle after 600 s without activity...
    assert!(session::verify(&presented, &stored, at(10_600), &policy()).is_err());
    // ...unless touched: activity moves the idle deadline, never backwards.
    identity
        .touch_session(&new.record().id, at(10_500))
        .await
        .unwrap();
    identity
        .touch_session(&new.record().id, at(10_100))
        .await
        .unwrap();
    let touched = identity
        .find_session(&new.record().id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.last_seen_at, at(10_500));
    session::verify(&presented, &touched, at(10_600), &policy()).unwrap();

    identity
        .end_session(&new.record().id, at(10_700))
        .await
        .unwrap();
    identity
        .end_session(&new.record().id, at(10_800))
        .await
        .unwrap();
    let ended = identity
        .find_session(&new.record().id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.ended_at, Some(at(10_700)));
    assert!(matches!(
        session::verify(&presented, &ended, at(10_701), &policy()),
        Err(session::SessionError::Ended { .. })
    ));

    let other = NewSession::generate("x", AuthMethod::Password, at(1), &policy()).unwrap();
    assert!(matches!(
        identity.touch_session(&other.record().id, at(2)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        identity.end_session(&other.record().id, at(2)).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn purge_deletes_only_finished_sessions(db: &TestDb) {
    let (_, identity) = db.open().await;
    let expired = NewSession::generate("a", AuthMethod::Password, at(1_000), &policy()).unwrap();
    let ended = NewSession::generate("b", AuthMethod::Password, at(5_000), &policy()).unwrap();
    let live = NewSession::generate("c", AuthMethod::Password, at(5_000), &policy()).unwrap();
    for s in [&expired, &ended, &live] {
        identity.insert_session(s.record()).await.unwrap();
    }
    identity
        .end_session(&ended.record().id, at(5_100))
        .await
        .unwrap();
    // `expired` ended at 4_600 (absolute); `ended` at 5_100; `live` runs until 8_600.
    assert_eq!(identity.purge_sessions(at(6_000)).await.unwrap(), 2);
    assert!(
        identity
            .find_session(&expired.record().id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        identity
            .find_session(&ended.record().id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        identity
            .find_session(&live.record().id)
            .await
            .unwrap()
            .is_some()
    );
}

async fn labeled_tokens_round_trip_and_are_seen_by_the_store_port(db: &TestDb) {
    let (store, identity) = db.open().await;
    let a = IssuedToken::generate(
        "alice",
        vec!["submitter".into()],
        at(1_000),
        Some(at(9_000)),
    )
    .unwrap();
    let b = IssuedToken::generate("bob", vec!["viewer".into()], at(1_001), None).unwrap();
    identity
        .insert_labeled_token(a.record(), Some("ci payments"))
        .await
        .unwrap();
    identity
        .insert_labeled_token(b.record(), None)
        .await
        .unwrap();
    assert!(matches!(
        identity.insert_labeled_token(a.record(), None).await,
        Err(StoreError::Conflict { .. })
    ));
    // The control-plane port reads the same record, and authentication works on it.
    let found = store.find_api_token(&a.record().id).await.unwrap().unwrap();
    assert_eq!(&found, a.record());
    identity::verify(a.token(), &found, at(2_000)).unwrap();

    let all = identity.list_labeled_tokens(None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].record, *a.record());
    assert_eq!(all[0].label.as_deref(), Some("ci payments"));
    assert_eq!(all[1].label, None);
    let bobs = identity.list_labeled_tokens(Some("bob")).await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].record.principal, "bob");
    assert_eq!(
        identity
            .token_label(&a.record().id)
            .await
            .unwrap()
            .as_deref(),
        Some("ci payments")
    );
    assert_eq!(identity.token_label(&b.record().id).await.unwrap(), None);
    // No secret anywhere in what listing returns.
    let secret = a.token().rsplit('_').next().unwrap();
    assert!(!format!("{all:?}").contains(secret));
}

async fn corrupt_session_row_is_reported_by_record(db: &TestDb) {
    let (_, identity) = db.open().await;
    let new = NewSession::generate("alice", AuthMethod::Password, at(1_000), &policy()).unwrap();
    identity.insert_session(new.record()).await.unwrap();
    db.raw(&format!(
        "UPDATE sessions SET established_by = 'carrier-pigeon' WHERE id = '{}'",
        new.record().id
    ))
    .await
    .unwrap();
    match identity.find_session(&new.record().id).await {
        Err(StoreError::Corrupt { record, reason }) => {
            assert_eq!(record, format!("sessions {}", new.record().id));
            assert!(reason.contains("established_by"), "{reason}");
        }
        other => panic!("expected a corrupt-record error, got {other:?}"),
    }
}
