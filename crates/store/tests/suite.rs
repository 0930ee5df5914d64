#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The store test suite, written once and run against both backends.
//!
//! Every case is an `async fn(&TestDb)`; the `suite!` macro instantiates it in module `sqlite`
//! (always) and module `postgres` (when `GATEHOUSE_TEST_POSTGRES_URL` is set; otherwise the test
//! prints "skipped: GATEHOUSE_TEST_POSTGRES_URL not set" and passes). Each PostgreSQL test runs
//! in a fresh schema of that database, so runs and parallel tests never see each other's rows.

#[macro_use]
mod common;

use common::{POSTGRES_URL_VAR, TestDb};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::audit::{AuditOutcome, AuditRecord};
use gatehouse_core::identity::{self, IssuedToken, TokenError, TokenId};
use gatehouse_core::release::{ChangeContext, Digest, Release, ReleaseId};
use gatehouse_core::store::{PackRevision, ReleaseQuery, Store, StoreError};
use gatehouse_store::{StoreConfig, known_schema_version, open};
use jiff::Timestamp;
use serde_json::json;

impl TestDb {
    async fn open(&self) -> Arc<dyn Store> {
        open(&self.config()).await.unwrap()
    }
}

suite!(
    fresh_store_is_migrated_and_answers,
    reopen_keeps_data,
    pack_revision_round_trip,
    release_round_trip_keeps_every_field,
    release_with_existing_id_conflicts,
    list_releases_newest_first_with_filter_and_limit,
    timestamp_outside_storable_range_is_refused,
    token_lookup_touch_and_revoke,
    token_with_existing_id_conflicts,
    active_tokens_with_role_skip_revoked_expired_and_other_roles,
    audit_appends_are_numbered_in_order,
    concurrent_audit_appends_get_gapless_sequence_numbers,
    audit_table_refuses_update_and_delete,
    schema_newer_than_binary_is_refused,
    corrupt_release_row_is_reported_by_record,
    corrupt_token_and_audit_rows_are_reported_by_record,
);

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn digest(n: u8) -> Digest {
    Digest::of_bytes(&[n])
}

fn release(service: &str, version: &str, created_at: Timestamp) -> Release {
    Release {
        id: ReleaseId::generate(created_at).unwrap(),
        service: service.into(),
        version: version.into(),
        release_class: "normal".into(),
        artifact_digests: vec![digest(1), digest(2)],
        owner: "team-payments".into(),
        change: ChangeContext {
            summary: "Rotate card tokenisation keys\nsecond line".into(),
            ticket: Some("CHG-1042".into()),
            pull_request: None,
        },
        target_environment: "production".into(),
        submitter: "alice".into(),
        created_at,
    }
}

fn audit(at: Timestamp, action: &str) -> AuditRecord {
    AuditRecord {
        at,
        actor: "alice".into(),
        action: action.into(),
        target: "release:x".into(),
        outcome: AuditOutcome::Succeeded,
        detail: json!({"note": "ünïcode ✓", "n": 1, "nested": {"list": [1, 2.5, null]}}),
    }
}

async fn fresh_store_is_migrated_and_answers(db: &TestDb) {
    let store = db.open().await;
    store.ping().await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        known_schema_version(&db.config())
    );
    assert!(store.latest_pack_revision().await.unwrap().is_none());
    assert!(store.list_audit(0, 10).await.unwrap().is_empty());
    let description = store.describe();
    assert!(
        description.starts_with(if db.is_postgres() {
            "PostgreSQL at "
        } else {
            "SQLite at "
        }),
        "{description}"
    );
}

async fn reopen_keeps_data(db: &TestDb) {
    let written = release("payments", "1.0.0", at(1_800_000_000));
    {
        let store = db.open().await;
        store.create_release(&written).await.unwrap();
        store
            .append_audit(&audit(at(1_800_000_000), "release.create"))
            .await
            .unwrap();
    }
    let store = db.open().await;
    assert_eq!(store.get_release(written.id).await.unwrap(), Some(written));
    assert_eq!(store.list_audit(0, 10).await.unwrap().len(), 1);
    // A third open finds the schema current and changes nothing.
    drop(store);
    let store = db.open().await;
    assert_eq!(store.list_audit(0, 10).await.unwrap().len(), 1);
}

async fn pack_revision_round_trip(db: &TestDb) {
    let store = db.open().await;
    let first = PackRevision {
        digest: format!("{}", digest(7)),
        document_count: 42,
        loaded_at: at(1_800_000_000),
        source: "./gatehouse (start)".into(),
    };
    let second = PackRevision {
        digest: format!("{}", digest(8)),
        document_count: 43,
        loaded_at: at(1_800_000_100),
        source: "./gatehouse (SIGHUP)".into(),
    };
    store.record_pack_revision(&first).await.unwrap();
    assert_eq!(store.latest_pack_revision().await.unwrap(), Some(first));
    store.record_pack_revision(&second).await.unwrap();
    assert_eq!(store.latest_pack_revision().await.unwrap(), Some(second));
}

async fn release_round_trip_keeps_every_field(db: &TestDb) {
    let store = db.open().await;
    // Nanosecond precision must survive the round trip.
    let created_at = Timestamp::new(1_800_000_000, 123_456_789).unwrap();
    let mut written = release("payments", "2.14.0", created_at);
    written.change.pull_request = Some("https://git.example/acme/payments/pull/77".into());
    store.create_release(&written).await.unwrap();
    let mut minimal = release("ledger", "0.1.0", created_at);
    minimal.artifact_digests.clear();
    minimal.change = ChangeContext::default();
    store.create_release(&minimal).await.unwrap();

    assert_eq!(store.get_release(written.id).await.unwrap(), Some(written));
    assert_eq!(store.get_release(minimal.id).await.unwrap(), Some(minimal));
    let absent = ReleaseId::generate(created_at).unwrap();
    assert_eq!(store.get_release(absent).await.unwrap(), None);
}

async fn release_with_existing_id_conflicts(db: &TestDb) {
    let store = db.open().await;
    let written = release("payments", "1.0.0", at(1_800_000_000));
    store.create_release(&written).await.unwrap();
    let mut again = written.clone();
    again.version = "1.0.1".into();
    let err = store.create_release(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains(&written.id.to_string()), "{err}");
    // The first record is untouched.
    assert_eq!(store.get_release(written.id).await.unwrap(), Some(written));
}

async fn list_releases_newest_first_with_filter_and_limit(db: &TestDb) {
    let store = db.open().await;
    let mut created = Vec::new();
    for (i, service) in ["payments", "ledger", "payments", "payments", "ledger"]
        .into_iter()
        .enumerate()
    {
        let r = release(service, &format!("1.{i}.0"), at(1_800_000_000 + i as i64));
        store.create_release(&r).await.unwrap();
        created.push(r);
    }
    // Two releases in the same instant are ordered by id, still deterministically.
    let twin = release("ledger", "9.9.9", at(1_800_000_004));
    store.create_release(&twin).await.unwrap();

    let versions = |list: &[Release]| list.iter().map(|r| r.version.clone()).collect::<Vec<_>>();
    let all = store
        .list_releases(&ReleaseQuery {
            service: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 6);
    let mut newest_two = [created[4].clone(), twin.clone()];
    newest_two.sort_by_key(|r| std::cmp::Reverse(r.id));
    assert_eq!(all[..2], newest_two);
    assert_eq!(versions(&all[2..]), ["1.3.0", "1.2.0", "1.1.0", "1.0.0"]);

    let payments = store
        .list_releases(&ReleaseQuery {
            service: Some("payments".into()),
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(versions(&payments), ["1.3.0", "1.2.0"]);

    let none = store
        .list_releases(&ReleaseQuery {
            service: Some("unknown".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    let zero = store
        .list_releases(&ReleaseQuery {
            service: None,
            limit: 0,
        })
        .await
        .unwrap();
    assert!(zero.is_empty());
}

async fn timestamp_outside_storable_range_is_refused(db: &TestDb) {
    let store = db.open().await;
    let far_future: Timestamp = "2300-01-01T00:00:00Z".parse().unwrap();
    let err = store
        .create_release(&release("payments", "1.0.0", far_future))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidValue { .. }), "{err}");
    assert!(err.to_string().contains("created_at"), "{err}");
    assert!(
        store
            .list_releases(&ReleaseQuery {
                service: None,
                limit: 10
            })
            .await
            .unwrap()
            .is_empty()
    );
}

async fn token_lookup_touch_and_revoke(db: &TestDb) {
    let store = db.open().await;
    let issued = IssuedToken::generate(
        "alice",
        vec!["submitter".into(), "viewer".into()],
        at(1_000_000_000),
        Some(at(1_900_000_000)),
    )
    .unwrap();
    let other = IssuedToken::generate("bob", vec![], at(1_000_000_001), None).unwrap();
    store.insert_api_token(issued.record()).await.unwrap();
    store.insert_api_token(other.record()).await.unwrap();

    // Lookup by the id in the presented token, then verify the secret against the record.
    let presented = identity::PresentedToken::parse(issued.token()).unwrap();
    let found = store.find_api_token(presented.id()).await.unwrap().unwrap();
    assert_eq!(&found, issued.record());
    identity::verify(issued.token(), &found, at(1_800_000_000)).unwrap();

    let unknown = TokenId::parse("0123456789abcdef01234567").unwrap();
    assert_eq!(store.find_api_token(&unknown).await.unwrap(), None);

    // Touch records the latest use and never moves backwards.
    store
        .touch_api_token(&found.id, at(1_800_000_010))
        .await
        .unwrap();
    store
        .touch_api_token(&found.id, at(1_800_000_005))
        .await
        .unwrap();
    let touched = store.find_api_token(&found.id).await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(at(1_800_000_010)));
    let err = store
        .touch_api_token(&unknown, at(1_800_000_010))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    // Revocation is stored, idempotent, and makes verification fail.
    let revoked = store
        .revoke_api_token(&found.id, at(1_800_000_020))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at(1_800_000_020)));
    let again = store
        .revoke_api_token(&found.id, at(1_800_000_030))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at(1_800_000_020)));
    assert_eq!(
        identity::verify(issued.token(), &again, at(1_800_000_021)),
        Err(TokenError::Revoked {
            id: found.id.clone(),
            at: at(1_800_000_020)
        })
    );
    let err = store
        .revoke_api_token(&unknown, at(1_800_000_030))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    // The other token is unaffected.
    let bob = store
        .find_api_token(&other.record().id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&bob, other.record());

    let all = store.list_api_tokens(None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, found.id, "oldest first");
    let bobs = store.list_api_tokens(Some("bob")).await.unwrap();
    assert_eq!(bobs, vec![other.record().clone()]);
}

async fn token_with_existing_id_conflicts(db: &TestDb) {
    let store = db.open().await;
    let issued = IssuedToken::generate("alice", vec![], at(1_000_000_000), None).unwrap();
    store.insert_api_token(issued.record()).await.unwrap();
    let err = store.insert_api_token(issued.record()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
}

async fn active_tokens_with_role_skip_revoked_expired_and_other_roles(db: &TestDb) {
    let store = db.open().await;
    let now = at(1_800_000_000);
    let mut n = 0;
    let mut issue = |roles: &[&str], expires_at: Option<Timestamp>| {
        n += 1;
        let roles = roles.iter().map(|r| (*r).to_owned()).collect();
        IssuedToken::generate("p", roles, at(1_000_000_000 + n), expires_at)
            .unwrap()
            .record()
            .clone()
    };
    let active = issue(&["viewer", "admin"], None);
    let expiring_later = issue(&["admin"], Some(at(1_800_000_001)));
    let expired = issue(&["admin"], Some(now));
    let revoked = issue(&["admin"], None);
    let viewer = issue(&["viewer"], None);
    let lookalikes = issue(&["administrator", "Admin", "ad_min"], None);
    for record in [
        &active,
        &expiring_later,
        &expired,
        &revoked,
        &viewer,
        &lookalikes,
    ] {
        store.insert_api_token(record).await.unwrap();
    }
    store
        .revoke_api_token(&revoked.id, at(1_700_000_000))
        .await
        .unwrap();

    let found = store
        .active_api_tokens_with_role("admin", now)
        .await
        .unwrap();
    assert_eq!(found, vec![active.clone(), expiring_later]);
    let found = store
        .active_api_tokens_with_role("ad_min", now)
        .await
        .unwrap();
    assert_eq!(found, vec![lookalikes.clone()]);
    assert!(
        store
            .active_api_tokens_with_role("a%", now)
            .await
            .unwrap()
            .is_empty()
    );
    // Before the revocation, the revoked token was still active.
    let earlier = store
        .active_api_tokens_with_role("admin", at(1_600_000_000))
        .await
        .unwrap();
    assert!(earlier.iter().any(|t| t.id == revoked.id));
}

async fn audit_appends_are_numbered_in_order(db: &TestDb) {
    let store = db.open().await;
    let actions = ["release.create", "token.create", "release.approve"];
    for (i, action) in actions.iter().enumerate() {
        let seq = store
            .append_audit(&audit(at(1_800_000_000 + i as i64), action))
            .await
            .unwrap();
        assert_eq!(seq, i as i64 + 1);
    }
    let mut denied = audit(at(1_800_000_010), "release.approve");
    denied.outcome = AuditOutcome::Denied;
    denied.detail = json!({"reason": "submitter cannot approve own release"});
    assert_eq!(store.append_audit(&denied).await.unwrap(), 4);

    let entries = store.list_audit(0, 100).await.unwrap();
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(
        entries[0].record,
        audit(at(1_800_000_000), "release.create")
    );
    assert_eq!(entries[3].record, denied);

    let page = store.list_audit(1, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(store.list_audit(4, 10).await.unwrap().is_empty());
}

async fn concurrent_audit_appends_get_gapless_sequence_numbers(db: &TestDb) {
    let store = db.open().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .append_audit(&audit(at(1_800_000_000 + i), "event.ingest"))
                .await
                .unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=24).collect::<Vec<i64>>());
    let listed: Vec<i64> = store
        .list_audit(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(listed, (1..=24).collect::<Vec<i64>>());
}

async fn audit_table_refuses_update_and_delete(db: &TestDb) {
    let store = db.open().await;
    store
        .append_audit(&audit(at(1_800_000_000), "release.create"))
        .await
        .unwrap();
    store
        .append_audit(&audit(at(1_800_000_001), "release.approve"))
        .await
        .unwrap();
    let before = store.list_audit(0, 10).await.unwrap();

    let mut attempts = vec![
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 2",
        "DELETE FROM audit_log",
    ];
    if db.is_postgres() {
        attempts.push("TRUNCATE audit_log");
    }
    for sql in attempts {
        let err = db.raw(sql).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.list_audit(0, 10).await.unwrap(), before);
}

async fn schema_newer_than_binary_is_refused(db: &TestDb) {
    drop(db.open().await);
    let checksum = if db.is_postgres() {
        "'\\x00'::bytea"
    } else {
        "X'00'"
    };
    db.raw(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from a newer gatehouse', TRUE, {checksum}, 0)"
    ))
    .await
    .unwrap();
    let err = open(&db.config())
        .await
        .err()
        .expect("a newer schema must be refused");
    let binary = known_schema_version(&db.config());
    match &err {
        StoreError::SchemaTooNew {
            database,
            binary: b,
        } => {
            assert_eq!(*database, 99990101000000);
            assert_eq!(*b, binary);
        }
        other => panic!("expected SchemaTooNew, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("99990101000000") && message.contains(&binary.to_string()),
        "{message}"
    );
}

async fn corrupt_release_row_is_reported_by_record(db: &TestDb) {
    let store = db.open().await;
    let good = release("payments", "1.0.0", at(1_800_000_000));
    let bad = release("payments", "1.0.1", at(1_800_000_001));
    store.create_release(&good).await.unwrap();
    store.create_release(&bad).await.unwrap();
    db.raw(&format!(
        "UPDATE releases SET artifact_digests = '[\"sha256:not-hex\"' WHERE id = '{}'",
        bad.id
    ))
    .await
    .unwrap();

    let expect_corrupt = |err: StoreError| match err {
        StoreError::Corrupt { record, reason } => {
            assert_eq!(record, format!("releases {}", bad.id));
            assert!(reason.contains("artifact_digests"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    };
    expect_corrupt(store.get_release(bad.id).await.unwrap_err());
    expect_corrupt(
        store
            .list_releases(&ReleaseQuery {
                service: None,
                limit: 10,
            })
            .await
            .unwrap_err(),
    );
    // Valid JSON holding an invalid digest is corrupt too: stored digests are re-validated.
    db.raw(&format!(
        "UPDATE releases SET artifact_digests = '[\"sha256:not-hex\"]' WHERE id = '{}'",
        bad.id
    ))
    .await
    .unwrap();
    expect_corrupt(store.get_release(bad.id).await.unwrap_err());
    // Other rows stay readable.
    assert_eq!(store.get_release(good.id).await.unwrap(), Some(good));
}

async fn corrupt_token_and_audit_rows_are_reported_by_record(db: &TestDb) {
    let store = db.open().await;
    let issued = IssuedToken::generate("alice", vec![], at(1_000_000_000), None).unwrap();
    store.insert_api_token(issued.record()).await.unwrap();
    db.raw(&format!(
        "UPDATE api_tokens SET roles = 'submitter' WHERE id = '{}'",
        issued.record().id
    ))
    .await
    .unwrap();
    match store.find_api_token(&issued.record().id).await.unwrap_err() {
        StoreError::Corrupt { record, reason } => {
            assert_eq!(record, format!("api_tokens {}", issued.record().id));
            assert!(reason.contains("roles"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }

    store
        .append_audit(&audit(at(1_800_000_000), "release.create"))
        .await
        .unwrap();
    // Inserting is allowed on the append-only table, so a bad row can only arrive this way.
    db.raw(
        "INSERT INTO audit_log (seq, at_ns, actor, action, target, outcome, detail) \
         VALUES (2, 0, 'x', 'y', 'z', 'maybe', '{}')",
    )
    .await
    .unwrap();
    match store.list_audit(0, 10).await.unwrap_err() {
        StoreError::Corrupt { record, reason } => {
            assert_eq!(record, "audit_log 2");
            assert!(reason.contains("outcome"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert_eq!(store.list_audit(0, 1).await.unwrap().len(), 1);
}

// Backend-independent cases.

#[tokio::test]
async fn sqlite_data_dir_is_created_on_first_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("nested").join("gatehouse-data");
    assert!(!data_dir.exists());
    let store = open(&StoreConfig::Sqlite {
        data_dir: data_dir.clone(),
    })
    .await
    .unwrap();
    store.ping().await.unwrap();
    let db_file = data_dir.join(gatehouse_store::SQLITE_FILE_NAME);
    assert!(db_file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data_dir), 0o700);
        assert_eq!(mode(&db_file), 0o600);
    }
    // WAL mode is on: the write-ahead log file appears next to the database.
    store
        .append_audit(&audit(at(1_800_000_000), "x"))
        .await
        .unwrap();
    assert!(data_dir.join("gatehouse.db-wal").exists());
}

#[tokio::test]
async fn sqlite_data_dir_that_is_a_file_gives_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = open(&StoreConfig::Sqlite {
        data_dir: file.clone(),
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
}

#[tokio::test]
async fn unreachable_postgres_url_fails_quickly_with_a_clear_error() {
    // A loopback port nobody listens on: bind, note the port, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://gatehouse:hunter2@127.0.0.1:{port}/gatehouse");
    let started = Instant::now();
    let err = open(&StoreConfig::Postgres { url }).await.err().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    let message = err.to_string();
    eprintln!("{message} (after {:?})", started.elapsed());
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2"), "password leaked: {message}");
    assert!(
        message.to_lowercase().contains("refused"),
        "cause not named: {message}"
    );
}

#[tokio::test]
async fn non_postgres_url_is_refused() {
    let err = open(&StoreConfig::Postgres {
        url: "mysql://root@localhost/db".into(),
    })
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("postgres://"), "{err}");
}

#[tokio::test]
async fn sqlite_file_that_is_not_a_database_gives_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let db_file = tmp.path().join(gatehouse_store::SQLITE_FILE_NAME);
    std::fs::write(&db_file, "this is a text file, not SQLite\n".repeat(200)).unwrap();
    let err = open(&StoreConfig::Sqlite {
        data_dir: tmp.path().to_path_buf(),
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&db_file.display().to_string()),
        "{message}"
    );
    assert!(message.contains("not a database"), "{message}");
    // The file is left as it was: nothing is lost by a failed open.
    assert!(
        std::fs::read_to_string(&db_file)
            .unwrap()
            .starts_with("this is a text file")
    );
}

#[tokio::test]
async fn postgres_wrong_password_names_the_cause() {
    let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
        eprintln!("skipped: {POSTGRES_URL_VAR} not set");
        return;
    };
    // postgres://user:password@host:port/db -> same with a wrong password.
    let (credentials, server) = admin_url.split_once('@').unwrap();
    let user = credentials
        .trim_start_matches("postgres://")
        .split(':')
        .next()
        .unwrap();
    let url = format!("postgres://{user}:definitely-wrong@{server}");
    let err = open(&StoreConfig::Postgres { url }).await.err().unwrap();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert!(
        !message.contains("definitely-wrong"),
        "password leaked: {message}"
    );
}
