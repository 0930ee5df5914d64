#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End to end on the real binary: the tamper-evident audit log.
//!
//! A server makes state changes; signed tree heads, inclusion and consistency proofs come over
//! the API and verify with the ledger crate; `gatehouse audit export` + `audit verify` pass;
//! then a row is edited directly in the SQLite file (triggers dropped, as an attacker with
//! file access would) and `audit verify` exits 1 naming the entry's seq.

mod common;

use std::path::{Path, PathBuf};

use common::{Server, bootstrap_token, http, init_pack, run};
use gatehouse_ledger::merkle::leaf_hash;
use gatehouse_ledger::{Hash, SignedTreeHead, verify_consistency, verify_inclusion};
use serde_json::{Value, json};
use sqlx::Connection;

struct Setup {
    pack: String,
    data: String,
    dir: PathBuf,
    _temp: tempfile::TempDir,
}

fn setup() -> Setup {
    let temp = tempfile::tempdir().unwrap();
    let pack = temp.path().join("pack");
    let data = temp.path().join("data");
    init_pack(&pack);
    Setup {
        pack: pack.to_str().unwrap().to_owned(),
        data: data.to_str().unwrap().to_owned(),
        dir: temp.path().to_owned(),
        _temp: temp,
    }
}

fn create_release(server: &Server, token: &str, version: &str) {
    let response = http()
        .post(server.url("/api/v1/releases"))
        .bearer_auth(token)
        .json(&json!({
            "service": "payments",
            "version": version,
            "release_class": "normal",
            "artifact_digests": [format!("sha256:{}", "ab".repeat(32))],
            "owner": "security-operations",
            "change": {"summary": "Rotate card tokenisation keys", "ticket": "CHG-1042"},
            "target_environment": "production"
        }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
}

fn get(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let response = http()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn hash(value: &Value) -> Hash {
    Hash::from_hex(value.as_str().unwrap()).unwrap()
}

fn hashes(value: &Value) -> Vec<Hash> {
    value.as_array().unwrap().iter().map(hash).collect()
}

/// Edits a row of the SQLite file behind gatehouse's back: drop the append-only trigger,
/// update, put the trigger back.
fn tamper(data: &str, sql: &str) {
    let path = Path::new(data).join("gatehouse.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut conn = sqlx::SqliteConnection::connect_with(
            &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
        )
        .await
        .unwrap();
        let script = format!(
            "BEGIN; DROP TRIGGER audit_log_refuse_update; {sql}; \
             CREATE TRIGGER audit_log_refuse_update BEFORE UPDATE ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END; COMMIT;"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(script))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
}

#[test]
fn audit_log_proofs_export_verify_and_a_tampered_row_is_named() {
    let setup = setup();
    let token = bootstrap_token(Path::new(&setup.data));
    let server = Server::start(&[
        "serve",
        "--pack",
        &setup.pack,
        "--data-dir",
        &setup.data,
        "--audit-head-every",
        "4",
    ]);
    // The key was generated into the data directory, private to its owner.
    let key_file = Path::new(&setup.data).join("audit-signing.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let secret = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        !server.stderr().contains(secret.trim()),
        "the signing key must never be logged"
    );

    for i in 0..5 {
        create_release(&server, &token, &format!("2.{i}.0"));
    }
    // A denied attempt is audited too.
    let denied = http()
        .get(server.url("/api/v1/audit/tree-head"))
        .bearer_auth("gh_notatoken_notasecret")
        .send()
        .unwrap();
    assert_eq!(denied.status(), 401);

    // The scheduled heads: one every 4 entries.
    let (status, head_a) = get(&server, &token, "/api/v1/audit/tree-head");
    assert_eq!(status, 200, "{head_a}");
    let head_a: SignedTreeHead = serde_json::from_value(head_a).unwrap();
    assert!(head_a.tree_size >= 4, "{head_a:?}");

    let (status, keys) = get(&server, &token, "/api/v1/audit/public-key");
    assert_eq!(status, 200, "{keys}");
    let public_key_file = setup.dir.join("log-public-key.json");
    std::fs::write(&public_key_file, keys.to_string()).unwrap();
    let trusted: gatehouse_ledger::LogVerifyingKey =
        serde_json::from_value(keys["current"].clone()).unwrap();
    head_a.verify(&trusted).unwrap();

    // Inclusion of entry 2 in head A's tree, checked against the signed root.
    let (status, proof) = get(
        &server,
        &token,
        &format!(
            "/api/v1/audit/proof/inclusion?seq=2&tree_size={}",
            head_a.tree_size
        ),
    );
    assert_eq!(status, 200, "{proof}");
    let leaf = leaf_hash(proof["entry"].as_str().unwrap().as_bytes());
    assert_eq!(leaf, hash(&proof["leaf_hash"]));
    verify_inclusion(
        &leaf,
        proof["leaf_index"].as_u64().unwrap(),
        head_a.tree_size,
        &hashes(&proof["path"]),
        &head_a.root_hash,
    )
    .unwrap();
    // The same proof does not hold for another entry.
    assert!(
        verify_inclusion(
            &leaf,
            2,
            head_a.tree_size,
            &hashes(&proof["path"]),
            &head_a.root_hash
        )
        .is_err()
    );

    // More changes, then a head signed on demand, and a consistency proof A -> B.
    create_release(&server, &token, "3.0.0");
    let signed = http()
        .post(server.url("/api/v1/audit/tree-head"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(signed.status(), 201);
    let head_b: SignedTreeHead = signed.json().unwrap();
    head_b.verify(&trusted).unwrap();
    assert!(head_b.tree_size > head_a.tree_size);
    let (status, consistency) = get(
        &server,
        &token,
        &format!(
            "/api/v1/audit/proof/consistency?first={}&second={}",
            head_a.tree_size, head_b.tree_size
        ),
    );
    assert_eq!(status, 200, "{consistency}");
    verify_consistency(
        head_a.tree_size,
        head_b.tree_size,
        &head_a.root_hash,
        &head_b.root_hash,
        &hashes(&consistency["path"]),
    )
    .unwrap();
    // Bad ranges are refused with 400, not a panic.
    for bad in [
        "/api/v1/audit/proof/inclusion?seq=0",
        "/api/v1/audit/proof/inclusion?seq=99999",
        "/api/v1/audit/proof/consistency?first=3&second=2",
        "/api/v1/audit/proof/consistency?first=1&second=99999",
        "/api/v1/audit/proof/inclusion?seq=abc",
    ] {
        let (status, body) = get(&server, &token, bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Export (offline, while the server runs) and verify against the served public key.
    let export_file = setup.dir.join("audit.jsonl");
    let export_path = export_file.to_str().unwrap();
    let out = run(&["audit", "export", export_path, "--data-dir", &setup.data]);
    assert_eq!(out.code(), 0, "{out:?}");
    let public_key_path = public_key_file.to_str().unwrap();
    let out = run(&[
        "audit",
        "verify",
        export_path,
        "--public-key",
        public_key_path,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("intact"), "{out:?}");

    // A key the log never used: heads are not trusted, verify says no.
    let other_key = setup.dir.join("other.pub");
    std::fs::write(
        &other_key,
        gatehouse_ledger::LogSigningKey::from_secret_bytes(&[1; 32])
            .verifying_key()
            .to_base64(),
    )
    .unwrap();
    let out = run(&[
        "audit",
        "verify",
        export_path,
        "--public-key",
        other_key.to_str().unwrap(),
    ]);
    assert_eq!(out.code(), 1, "{out:?}");

    // Tamper with entry 3 directly in the SQLite file.
    tamper(
        &setup.data,
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3",
    );
    let (status, body) = get(&server, &token, "/api/v1/audit/proof/inclusion?seq=3");
    assert_eq!(status, 409, "{body}");

    let tampered_file = setup.dir.join("tampered.jsonl");
    let tampered_path = tampered_file.to_str().unwrap();
    let out = run(&["audit", "export", tampered_path, "--data-dir", &setup.data]);
    assert_eq!(out.code(), 0, "{out:?}");
    let out = run(&[
        "audit",
        "verify",
        tampered_path,
        "--public-key",
        public_key_path,
    ]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout.contains("entry seq 3 was modified"),
        "{}",
        out.stdout
    );
    let out = run(&[
        "audit",
        "verify",
        tampered_path,
        "--public-key",
        public_key_path,
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 1, "{out:?}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["intact"], false);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "modified" && f["seq"] == 3),
        "{report}"
    );

    // Unreadable input is an error (2), not a verdict.
    let missing = setup.dir.join("missing.jsonl");
    let out = run(&["audit", "verify", missing.to_str().unwrap()]);
    assert_eq!(out.code(), 2, "{out:?}");
}
