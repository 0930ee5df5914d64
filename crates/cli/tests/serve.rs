//! End-to-end tests of `gatehouse serve`, `demo`, `admin bootstrap` and the client commands,
//! running the real binary on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{Server, bootstrap_token, eventually, fixture, http, init_pack, run, start_demo};
use serde_json::{Value, json};

const DIGEST: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

struct Setup {
    _temp: tempfile::TempDir,
    pack: String,
    data: String,
}

fn setup() -> Setup {
    let temp = tempfile::tempdir().unwrap();
    let pack = temp.path().join("pack");
    let data = temp.path().join("data");
    init_pack(&pack);
    Setup {
        pack: pack.to_str().unwrap().to_owned(),
        data: data.to_str().unwrap().to_owned(),
        _temp: temp,
    }
}

fn serve(setup: &Setup) -> Server {
    Server::start(&["serve", "--pack", &setup.pack, "--data-dir", &setup.data])
}

fn release_body() -> Value {
    json!({
        "service": "payments",
        "version": "2.14.0",
        "release_class": "normal",
        "artifact_digests": [DIGEST],
        "owner": "security-operations",
        "change": {"summary": "Rotate card tokenisation keys", "ticket": "CHG-1042"},
        "target_environment": "production"
    })
}

fn metric(server: &Server, series: &str) -> Option<f64> {
    let text = http()
        .get(server.url("/metrics"))
        .send()
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn pack_digest(server: &Server, token: &str) -> String {
    let status: Value = http()
        .get(server.url("/api/v1/pack"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    status["digest"].as_str().unwrap().to_owned()
}

#[test]
fn serve_refuses_a_pack_with_errors_and_names_file_line_column() {
    let setup = setup();
    fs::copy(
        fixture("packs/unknown_key.yaml"),
        Path::new(&setup.pack).join("unknown_key.yaml"),
    )
    .unwrap();
    let out = run(&[
        "serve",
        "--pack",
        &setup.pack,
        "--data-dir",
        &setup.data,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("unknown_key.yaml:5:1"),
        "no file:line:column in:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("refusing to start"), "{}", out.stderr);
    assert!(
        out.stdout.is_empty(),
        "nothing may be announced: {}",
        out.stdout
    );
}

#[test]
fn operational_endpoints_are_open_and_describe_the_server() {
    let setup = setup();
    let server = serve(&setup);
    let client = http();

    let health: Value = client
        .get(server.url("/healthz"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok");

    let ready = client.get(server.url("/readyz")).send().unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().unwrap();
    assert_eq!(ready["checks"]["store"], "ok");
    assert_eq!(ready["checks"]["pack"], "ok");

    let metrics = client.get(server.url("/metrics")).send().unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = metrics.text().unwrap();
    assert!(
        metrics.contains("gatehouse_build_info{version=\""),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "gatehouse_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    let documents = metric(&server, "gatehouse_pack_documents").unwrap();
    assert!(
        documents > 10.0,
        "example pack has many documents: {documents}"
    );

    let openapi: Value = client
        .get(server.url("/api/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/releases",
        "/api/v1/releases/{id}",
        "/api/v1/pack",
        "/api/v1/pack/reload",
        "/api/v1/audit",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    assert_eq!(
        openapi["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn every_api_route_denies_requests_without_a_valid_token_and_audits_them() {
    let setup = setup();
    let token = bootstrap_token(Path::new(&setup.data));
    let server = serve(&setup);
    let client = http();
    let routes = [
        ("GET", "/api/v1/pack"),
        ("POST", "/api/v1/pack/reload"),
        ("GET", "/api/v1/releases"),
        ("POST", "/api/v1/releases"),
        (
            "GET",
            "/api/v1/releases/01890a5d-ac96-774b-bcce-b302099a8057",
        ),
        ("GET", "/api/v1/audit"),
    ];
    let forged = "gh_000000000000000000000000_0000000000000000000000000000000000000000000000000000000000000000";
    for (method, path) in routes {
        for credential in [None, Some("not-a-token"), Some(forged)] {
            let mut request = client.request(method.parse().unwrap(), server.url(path));
            if let Some(credential) = credential {
                request = request.bearer_auth(credential);
            }
            if method == "POST" {
                request = request.json(&release_body());
            }
            let response = request.send().unwrap();
            assert_eq!(
                response.status(),
                401,
                "{method} {path} with {credential:?}"
            );
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        }
    }
    // Nothing was created by the refused POSTs.
    let list: Value = client
        .get(server.url("/api/v1/releases"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["releases"].as_array().unwrap().len(), 0);

    let audit: Value = client
        .get(server.url("/api/v1/audit?limit=1000"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let denied = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "auth.authenticate" && e["outcome"] == "denied")
        .count();
    assert_eq!(denied, routes.len() * 3, "{audit}");
}

#[test]
fn releases_are_created_listed_shown_and_audited() {
    let setup = setup();
    let token = bootstrap_token(Path::new(&setup.data));
    let server = serve(&setup);
    let client = http();

    let created = client
        .post(server.url("/api/v1/releases"))
        .bearer_auth(&token)
        .json(&release_body())
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = created.json().unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/releases/{id}"));
    assert_eq!(created["submitter"], "admin");
    assert_eq!(created["artifact_digests"][0], DIGEST);

    let shown: Value = client
        .get(server.url(&location))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(shown, created);

    let list: Value = client
        .get(server.url("/api/v1/releases?service=payments"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["releases"][0]["id"], id);
    let other: Value = client
        .get(server.url("/api/v1/releases?service=ledger"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(other["releases"].as_array().unwrap().len(), 0);

    let audit: Value = client
        .get(server.url("/api/v1/audit"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "release.create")
        .expect("release.create audited");
    assert_eq!(entry["actor"], "admin");
    assert_eq!(entry["target"], format!("release:{id}"));
    assert_eq!(entry["outcome"], "succeeded");

    // Missing release → 404 JSON; malformed id → 400 naming the field.
    let missing = client
        .get(server.url("/api/v1/releases/01890a5d-ac96-774b-bcce-b302099a8057"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    let malformed: Value = client
        .get(server.url("/api/v1/releases/nope"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(malformed["error"]["field"], "id");
}

#[test]
fn invalid_release_requests_get_400_naming_every_field() {
    let setup = setup();
    let token = bootstrap_token(Path::new(&setup.data));
    let server = serve(&setup);
    let client = http();
    let post = |body: &Value| {
        let response = client
            .post(server.url("/api/v1/releases"))
            .bearer_auth(&token)
            .json(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap())
    };

    let mut body = release_body();
    body.as_object_mut().unwrap().remove("service");
    let (status, error) = post(&body);
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "service", "{error}");

    let mut body = release_body();
    body["artifact_digests"] = json!(["md5:abc"]);
    body["release_class"] = json!("no-such-class");
    let (status, error) = post(&body);
    assert_eq!(status, 400);
    let fields: Vec<&str> = error["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["artifact_digests[0]", "release_class"], "{error}");

    let mut body = release_body();
    body["change"]["summry"] = json!("typo");
    let (status, error) = post(&body);
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "change.summry", "{error}");

    // Over the body limit → 413 JSON, nothing stored.
    let huge = json!({"service": "x".repeat(2 * 1024 * 1024)});
    let (status, error) = post(&huge);
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "payload_too_large");
    // A fresh client: the server closes a connection whose oversized body it did not read.
    let list: Value = http()
        .get(server.url("/api/v1/releases"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["releases"].as_array().unwrap().len(), 0);
}

#[test]
fn reload_keeps_the_old_pack_on_errors_and_swaps_in_a_good_one() {
    let setup = setup();
    let token = bootstrap_token(Path::new(&setup.data));
    let server = serve(&setup);
    let client = http();
    let original = pack_digest(&server, &token);
    let broken = Path::new(&setup.pack).join("unknown_key.yaml");

    // Via the API: a broken pack is refused with its diagnostics.
    fs::copy(fixture("packs/unknown_key.yaml"), &broken).unwrap();
    let response = client
        .post(server.url("/api/v1/pack/reload"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().unwrap();
    assert_eq!(body["outcome"], "rejected");
    let diagnostic = &body["diagnostics"]["diagnostics"][0];
    assert!(
        diagnostic["file"]
            .as_str()
            .unwrap()
            .ends_with("unknown_key.yaml")
    );
    assert_eq!(diagnostic["line"], 5);
    assert_eq!(pack_digest(&server, &token), original);

    // Fixed and changed: swapped in.
    fs::remove_file(&broken).unwrap();
    let identity = Path::new(&setup.pack).join("identity.yaml");
    let mut text = fs::read_to_string(&identity).unwrap();
    text.push_str("\n# reloaded by the API test\n");
    fs::write(&identity, text).unwrap();
    let response = client
        .post(server.url("/api/v1/pack/reload"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(body["outcome"], "swapped");
    assert_eq!(body["previous_digest"], original.as_str());
    let after_api = pack_digest(&server, &token);
    assert_ne!(after_api, original);

    // Via SIGHUP: broken first (kept), then good (swapped).
    fs::copy(fixture("packs/unknown_key.yaml"), &broken).unwrap();
    let failed_before =
        metric(&server, "gatehouse_pack_reloads_total{outcome=\"failed\"}").unwrap();
    server.signal("HUP");
    eventually(Duration::from_secs(30), "a failed SIGHUP reload", || {
        metric(&server, "gatehouse_pack_reloads_total{outcome=\"failed\"}")
            .filter(|v| *v > failed_before)
    });
    assert_eq!(pack_digest(&server, &token), after_api);
    assert!(
        server.stderr().contains("unknown_key.yaml:5:1"),
        "{}",
        server.stderr()
    );

    fs::remove_file(&broken).unwrap();
    let mut text = fs::read_to_string(&identity).unwrap();
    text.push_str("# reloaded by SIGHUP\n");
    fs::write(&identity, text).unwrap();
    server.signal("HUP");
    let after_signal = eventually(Duration::from_secs(30), "a SIGHUP swap", || {
        Some(pack_digest(&server, &token)).filter(|d| *d != after_api)
    });
    assert_ne!(after_signal, original);

    let audit: Value = client
        .get(server.url("/api/v1/audit?limit=1000"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let reloads: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "pack.reload")
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reloads,
        [
            ("admin".to_owned(), "failed".to_owned()),
            ("admin".to_owned(), "succeeded".to_owned()),
            ("system:sighup".to_owned(), "failed".to_owned()),
            ("system:sighup".to_owned(), "succeeded".to_owned()),
        ]
    );
}

#[test]
fn serve_on_a_port_in_use_exits_2_naming_the_address() {
    let setup = setup();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let out = run(&[
        "serve",
        "--pack",
        &setup.pack,
        "--data-dir",
        &setup.data,
        "--listen",
        &addr,
    ]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains(&addr), "{}", out.stderr);
    assert!(out.stderr.contains("already in use"), "{}", out.stderr);
}

#[test]
fn unreachable_database_url_exits_2_without_leaking_the_password() {
    let setup = setup();
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let out = run(&[
        "serve",
        "--pack",
        &setup.pack,
        "--database-url",
        "postgres://gatehouse:hunter2@127.0.0.1:1/gatehouse",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("cannot open the store"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("hunter2"),
        "password leaked: {}",
        out.stderr
    );

    let out = run(&[
        "serve",
        "--pack",
        &setup.pack,
        "--database-url",
        "mysql://localhost/db",
    ]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("postgres://"), "{}", out.stderr);
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let setup = setup();
    let token = bootstrap_token(Path::new(&setup.data));
    // Debug-level request logs tell the test when the server has started handling the request.
    let mut server = Server::start_with_env(
        &["serve", "--pack", &setup.pack, "--data-dir", &setup.data],
        &[("RUST_LOG", "info,tower_http=debug")],
    );
    let body = serde_json::to_vec(&release_body()).unwrap();
    let host = server.url.trim_start_matches("http://").to_owned();

    // Send the head and half of the body, so the request is in flight when SIGTERM arrives.
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/releases HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    eventually(
        Duration::from_secs(30),
        "the request to be in flight",
        || {
            server
                .stderr()
                .contains("started processing request")
                .then_some(())
        },
    );

    server.signal("TERM");
    eventually(Duration::from_secs(30), "the SIGTERM log line", || {
        server.stderr().contains("SIGTERM received").then_some(())
    });
    stream.write_all(rest).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let status = server.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
}

#[test]
fn log_format_json_writes_json_lines() {
    let setup = setup();
    let mut server = Server::start(&[
        "serve",
        "--pack",
        &setup.pack,
        "--data-dir",
        &setup.data,
        "--log-format",
        "json",
    ]);
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
    let stderr = server.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
    }
}

#[test]
fn client_commands_talk_to_the_server_with_env_credentials() {
    let setup = setup();
    let token = bootstrap_token(Path::new(&setup.data));
    let server = serve(&setup);
    let client_cmd = |args: &[&str], token: Option<&str>| {
        let mut command = common::bin();
        command.args(args).env("GATEHOUSE_SERVER", &server.url);
        if let Some(token) = token {
            command.env("GATEHOUSE_TOKEN", token);
        }
        let out = command.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, stdout, stderr) = client_cmd(
        &[
            "release",
            "create",
            "--service",
            "payments",
            "--version",
            "2.14.0",
            "--class",
            "normal",
            "--digest",
            DIGEST,
            "--owner",
            "security-operations",
            "--summary",
            "Rotate keys",
            "--format",
            "json",
        ],
        Some(&token),
    );
    assert_eq!(code, 0, "{stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();

    let (code, stdout, _) = client_cmd(&["release", "list"], Some(&token));
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&id) && stdout.contains("payments"),
        "{stdout}"
    );

    let (code, stdout, _) = client_cmd(&["release", "show", &id, "--format", "json"], Some(&token));
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap(), created);

    let (code, stdout, _) = client_cmd(&["pack", "status", "--format", "json"], Some(&token));
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["digest"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    // Without a token: exit 2, a clear message, and the token never appears anywhere.
    let (code, stdout, stderr) = client_cmd(&["release", "list"], None);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("401") && stderr.contains("GATEHOUSE_TOKEN"),
        "{stderr}"
    );
    assert!(stdout.is_empty());

    // Invalid input: exit 2 naming the field.
    let (code, _, stderr) = client_cmd(
        &[
            "release",
            "create",
            "--service",
            "payments",
            "--version",
            "1",
            "--class",
            "normal",
            "--digest",
            "sha256:nope",
            "--owner",
            "security-operations",
            "--summary",
            "x",
        ],
        Some(&token),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("artifact_digests[0]"), "{stderr}");

    let (_, help, _) = client_cmd(&["release", "list", "--help"], Some(&token));
    assert!(!help.contains(&token), "--help must not show the token");
}

#[test]
fn admin_bootstrap_is_refused_while_an_admin_token_exists() {
    let setup = setup();
    bootstrap_token(Path::new(&setup.data));
    let out = run(&["admin", "bootstrap", "--data-dir", &setup.data]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    let out = run(&[
        "admin",
        "bootstrap",
        "--data-dir",
        &setup.data,
        "--force",
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
}

#[test]
fn demo_serves_seeded_records_with_a_working_admin_token() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("demo");
    let (server, banner) = start_demo(&data);
    let token = banner["token"].as_str().unwrap();
    assert_eq!(banner["url"], server.url.as_str());

    let client = http();
    let list: Value = client
        .get(server.url("/api/v1/releases"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(list["releases"].as_array().unwrap().len() >= 3, "{list}");
    let audit: Value = client
        .get(server.url("/api/v1/audit"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"release.create") && actions.contains(&"token.create"),
        "{actions:?}"
    );
    assert!(data.join("pack").is_dir());
}

#[test]
fn serve_on_postgresql_records_and_lists_releases() {
    let Ok(admin_url) = std::env::var("GATEHOUSE_TEST_POSTGRES_URL") else {
        println!("skipped: GATEHOUSE_TEST_POSTGRES_URL not set");
        return;
    };
    // A fresh schema, so this test sees neither earlier runs nor other suites' tables.
    let schema = format!(
        "gh_e2e_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let separator = if admin_url.contains('?') { '&' } else { '?' };
    let url = format!("{admin_url}{separator}options[search_path]={schema}");
    let setup = setup();
    let out = run(&[
        "admin",
        "bootstrap",
        "--database-url",
        &url,
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let token: Value = serde_json::from_str(&out.stdout).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    // PostgreSQL needs a configured key-encryption key (none is generated next to a remote
    // database); a fixed test key, given inline.
    let server = Server::start_with_env(
        // The data directory still holds the audit log key and the upload spool.
        &[
            "serve",
            "--pack",
            &setup.pack,
            "--database-url",
            &url,
            "--data-dir",
            &setup.data,
        ],
        &[(
            "GATEHOUSE_KEYS",
            "kek-e2e:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )],
    );
    let client = http();
    let created: Value = client
        .post(server.url("/api/v1/releases"))
        .bearer_auth(&token)
        .json(&release_body())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let list: Value = client
        .get(server.url("/api/v1/releases?limit=1000"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        list["releases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id),
        "{list}"
    );
    assert!(
        !server.stderr().contains(admin_url.as_str()),
        "the URL (with password) was logged"
    );
}

#[test]
fn serve_refuses_a_database_migrated_by_a_newer_gatehouse() {
    let setup = setup();
    // Creates and migrates the SQLite database.
    bootstrap_token(Path::new(&setup.data));
    let db = Path::new(&setup.data).join("gatehouse.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::raw_sql(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from a newer gatehouse', TRUE, X'00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    });
    let out = run(&[
        "serve",
        "--pack",
        &setup.pack,
        "--data-dir",
        &setup.data,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("99990101000000") && out.stderr.contains("newer"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.is_empty(),
        "nothing may be announced: {}",
        out.stdout
    );
}
