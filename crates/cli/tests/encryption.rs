#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End to end on the real binary: evidence encryption at rest and key rotation.
//!
//! `keys generate` writes a key file (0600); `serve --key-file` accepts a SARIF log larger
//! than the old 1 MiB body limit, stores it sealed (no plaintext in the SQLite files) in
//! chunks, and refuses a file above `--max-evidence-bytes` naming the limit with nothing
//! stored. Offline, a second key is generated and `keys rotate` rewraps the data keys (audited
//! as `keys.rotate`); the server then reads the evidence with only the new key, and with the
//! key removed the gate blocks naming the missing key id.

mod common;

use std::path::Path;

use common::{Server, bin, fixture, run, token_for};
use serde_json::Value;

/// Larger than the old 1 MiB body limit, smaller than the big file below.
const MAX_EVIDENCE_BYTES: &str = "3000000";
const MARKER: &str = "PLAINTEXT-MARKER-7f3a";

/// A valid SARIF 2.1.0 log of about `bytes` bytes, every message carrying [`MARKER`].
fn big_sarif(bytes: usize) -> Vec<u8> {
    let mut out = String::from(
        r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"bigscan","rules":[{"id":"BIG001"}]}},"results":["#,
    );
    let mut n = 0;
    while out.len() < bytes {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"ruleId":"BIG001","level":"note","message":{{"text":"{MARKER} finding {n}"}}}}"#
        ));
        n += 1;
    }
    out.push_str("]}]}");
    out.into_bytes()
}

fn serve(pack: &Path, data: &Path, key_file: &Path) -> Server {
    Server::start(&[
        "serve",
        "--pack",
        pack.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--key-file",
        key_file.to_str().unwrap(),
        "--max-evidence-bytes",
        MAX_EVIDENCE_BYTES,
        "--request-timeout-secs",
        "300",
    ])
}

fn run_as(server: &Server, token: &str, args: &[&str]) -> (i32, String, String) {
    let output = bin()
        .args(args)
        .env("GATEHOUSE_SERVER", &server.url)
        .env("GATEHOUSE_TOKEN", token)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every byte of the SQLite database files (main file and write-ahead log).
fn database_bytes(data: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for name in ["gatehouse.db", "gatehouse.db-wal"] {
        if let Ok(bytes) = std::fs::read(data.join(name)) {
            out.extend(bytes);
        }
    }
    out
}

fn count(data: &Path, sql: &str) -> i64 {
    let out = std::process::Command::new("sqlite3")
        .arg(data.join("gatehouse.db"))
        .arg(sql)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        }
        _ => {
            // No sqlite3 binary: read through sqlx instead.
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                use sqlx::Connection as _;
                let mut conn = sqlx::SqliteConnection::connect_with(
                    &sqlx::sqlite::SqliteConnectOptions::new().filename(data.join("gatehouse.db")),
                )
                .await
                .unwrap();
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            })
        }
    }
}

fn verdict(server: &Server, token: &str, id: &str) -> Value {
    let (_, stdout, stderr) = run_as(server, token, &["gate", "check", id, "--format", "json"]);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"))
}

#[test]
fn sealed_evidence_larger_than_the_body_limit_rotation_and_a_removed_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let keys = dir.path().join("keys.jsonl");
    let pack = fixture("packs/gate");

    // A key file, 0600, naming the key by id only.
    let out = run(&[
        "keys",
        "generate",
        "--out",
        keys.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let first: Value = serde_json::from_str(&out.stdout).unwrap();
    let first_id = first["kek_id"].as_str().unwrap().to_owned();
    assert!(first_id.starts_with("kek-"), "{first_id}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let alice = token_for(&data, "alice");
    let server = serve(&pack, &data, &keys);
    let (code, stdout, stderr) = run_as(
        &server,
        &alice,
        &[
            "release",
            "create",
            "--service",
            "payments",
            "--version",
            "3.0.0",
            "--class",
            "normal",
            "--owner",
            "team-payments",
            "--summary",
            "Large scan",
            "--digest",
            "sha256:44d1c14c89ea332a634c011849f710c9b61751be1c3f95d6b1a38cd90ed25031",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let id = serde_json::from_str::<Value>(&stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // 2.5 MB: more than the old 1 MiB body limit, within --max-evidence-bytes.
    let sarif = dir.path().join("big.sarif");
    std::fs::write(&sarif, big_sarif(2_500_000)).unwrap();
    let (code, stdout, stderr) = run_as(
        &server,
        &alice,
        &[
            "evidence",
            "add",
            &id,
            "--kind",
            "sarif",
            sarif.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let receipt: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(receipt["status"], "attached");
    assert!(receipt["size"].as_u64().unwrap() > 2_400_000);
    // Sealed in 1 MiB chunks; no plaintext in the database files.
    assert_eq!(count(&data, "SELECT COUNT(*) FROM evidence_chunks"), 3);
    assert_eq!(
        count(
            &data,
            "SELECT COUNT(*) FROM evidence_blobs WHERE length(content) > 0"
        ),
        0
    );
    let raw = database_bytes(&data);
    assert!(
        !raw.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "plaintext evidence found in the SQLite files"
    );
    // Parsed from the sealed bytes: the gate sees the SARIF facts.
    let before = verdict(&server, &alice, &id);
    assert_eq!(before["revision"], 1, "{before}");
    assert!(!before.to_string().contains("cannot be opened"), "{before}");

    // Idempotent re-upload: nothing stored twice.
    let (code, stdout, stderr) = run_as(
        &server,
        &alice,
        &[
            "evidence",
            "add",
            &id,
            "--kind",
            "sarif",
            sarif.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("already_attached"), "{stdout}");
    assert_eq!(count(&data, "SELECT COUNT(*) FROM evidence_chunks"), 3);

    // Above the limit: refused naming it; no rows, no spool file left behind.
    let huge = dir.path().join("huge.sarif");
    std::fs::write(&huge, big_sarif(3_200_000)).unwrap();
    let (code, _, stderr) = run_as(
        &server,
        &alice,
        &[
            "evidence",
            "add",
            &id,
            "--kind",
            "sarif",
            huge.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("max_evidence_bytes = 3000000"), "{stderr}");
    assert_eq!(count(&data, "SELECT COUNT(*) FROM evidence_blobs"), 1);
    assert_eq!(count(&data, "SELECT COUNT(*) FROM evidence_chunks"), 3);
    let spooled = std::fs::read_dir(data.join("spool")).unwrap().count();
    assert_eq!(spooled, 0, "spool files left behind");
    assert_eq!(verdict(&server, &alice, &id)["revision"], 1);
    drop(server);

    // A new key, then rotation offline: every data key rewrapped, audited.
    let out = run(&[
        "keys",
        "generate",
        "--out",
        keys.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let second_id = serde_json::from_str::<Value>(&out.stdout).unwrap()["kek_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first_id, second_id);
    let out = run(&[
        "keys",
        "rotate",
        "--data-dir",
        data.to_str().unwrap(),
        "--key-file",
        keys.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["active_kek"], second_id.as_str());
    assert_eq!(report["rewrapped"], 1);
    assert_eq!(report["rewrapped_from"][&first_id], 1);
    assert_eq!(report["complete"], true);
    let key_text = std::fs::read_to_string(&keys).unwrap();
    assert!(!out.stdout.contains(&key_text[20..40]), "key bytes printed");
    let out = run(&[
        "keys",
        "list",
        "--data-dir",
        data.to_str().unwrap(),
        "--key-file",
        keys.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let listed: Value = serde_json::from_str(&out.stdout).unwrap();
    let entry = |id: &str| {
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kek_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(entry(&second_id)["data_keys"], 1);
    assert_eq!(entry(&second_id)["active"], true);
    assert_eq!(entry(&first_id)["data_keys"], 0);

    // Only the new key left in the key file: the evidence still opens.
    let only_new: String = key_text
        .lines()
        .filter(|l| !l.contains(&first_id))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&keys, &only_new).unwrap();
    let server = serve(&pack, &data, &keys);
    let after = verdict(&server, &alice, &id);
    assert_eq!(
        after["findings"], before["findings"],
        "the facts changed after rotation"
    );
    assert_eq!(after["decision"], before["decision"]);
    assert!(!after.to_string().contains("cannot be opened"), "{after}");
    // The rotation is in the audit log, with key ids and counts.
    let audit = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/audit?limit=1000", server.url))
        .bearer_auth(&alice)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(audit.contains("keys.rotate"), "{audit}");
    assert!(audit.contains(&second_id), "{audit}");
    drop(server);

    // The key removed (another key in its place): the gate blocks, naming the missing key.
    let other = dir.path().join("other.jsonl");
    let out = run(&["keys", "generate", "--out", other.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    let server = serve(&pack, &data, &other);
    let blocked = verdict(&server, &alice, &id);
    let text = blocked.to_string();
    assert!(
        text.contains(&second_id) && text.contains("not found in keyring"),
        "{text}"
    );
}

#[test]
fn serve_refuses_a_key_file_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.jsonl");
    assert_eq!(
        run(&["keys", "generate", "--out", keys.to_str().unwrap()]).code(),
        0
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = run(&[
            "keys",
            "list",
            "--key-file",
            keys.to_str().unwrap(),
            "--data-dir",
            dir.path().join("none").to_str().unwrap(),
        ]);
        assert_eq!(out.code(), 2, "{out:?}");
        assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
    }
}

#[test]
fn serve_on_postgresql_without_a_key_refuses_to_start() {
    let Ok(admin_url) = std::env::var("GATEHOUSE_TEST_POSTGRES_URL") else {
        println!("skipped: GATEHOUSE_TEST_POSTGRES_URL not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    common::init_pack(&pack);
    let out = run(&[
        "serve",
        "--pack",
        pack.to_str().unwrap(),
        "--database-url",
        &admin_url,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("no key-encryption key configured")
            && out.stderr.contains("gatehouse keys generate"),
        "{}",
        out.stderr
    );
}
