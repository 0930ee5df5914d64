#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End-to-end: local people, browser sessions with CSRF, API tokens through the CLI, and the
//! sign-in rate limit, on the real binary over loopback.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, bin, bootstrap_token, http, init_pack, run};
use serde_json::{Value, json};

const ALICE_PASSWORD: &str = "alice correct horse battery";
const ZED_PASSWORD: &str = "zed staple battery horse";

struct Setup {
    _dir: tempfile::TempDir,
    pack: PathBuf,
    data: PathBuf,
    admin: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    let data = dir.path().join("data");
    init_pack(&pack);
    let admin = bootstrap_token(&data);
    // alice is a pack Person (roles submitter, approver, operator in the example pack);
    // zed is not, so the stored --role applies.
    add_user(&data, "alice", &["viewer"], ALICE_PASSWORD, Some(&pack));
    add_user(&data, "zed", &["viewer"], ZED_PASSWORD, None);
    Setup {
        _dir: dir,
        pack,
        data,
        admin,
    }
}

fn add_user(data: &Path, id: &str, roles: &[&str], password: &str, pack: Option<&Path>) {
    let mut command = bin();
    command.args(["user", "add", id, "--password-stdin", "--format", "json"]);
    command.args(["--data-dir", data.to_str().unwrap()]);
    for role in roles {
        command.args(["--role", role]);
    }
    if let Some(pack) = pack {
        command.args(["--pack", pack.to_str().unwrap()]);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["id"], id);
    assert_eq!(value["password"], true);
}

fn serve(setup: &Setup, extra: &[&str]) -> Server {
    let mut args = vec![
        "serve",
        "--pack",
        setup.pack.to_str().unwrap(),
        "--data-dir",
        setup.data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// A client that never stores cookies: each request says exactly which cookie it sends.
fn client() -> reqwest::blocking::Client {
    http()
}

fn login(server: &Server, username: &str, password: &str) -> reqwest::blocking::Response {
    client()
        .post(server.url("/api/v1/session"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .unwrap()
}

/// Signs in and returns (`name=value` cookie pair, CSRF token, answer body).
fn sign_in(server: &Server, username: &str, password: &str) -> (String, String, Value) {
    let response = login(server, username, password);
    assert_eq!(response.status(), 200, "sign-in of {username} failed");
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    assert!(pair.starts_with("gatehouse_session="), "{pair}");
    let body: Value = response.json().unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    (pair, csrf, body)
}

fn audit_entries(server: &Server, admin: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = client()
            .get(server.url(&format!("/api/v1/audit?after={after}&limit=1000")))
            .bearer_auth(admin)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let entries = page["entries"].as_array().unwrap().clone();
        all.extend(entries);
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => return all,
        }
    }
}

fn create_token_request(
    server: &Server,
    cookie: &str,
    csrf: Option<&str>,
) -> reqwest::blocking::Response {
    let mut request = client()
        .post(server.url("/api/v1/tokens"))
        .header("cookie", cookie)
        .json(&json!({ "roles": ["submitter"], "label": "from the browser" }));
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    request.send().unwrap()
}

#[test]
fn browser_session_sign_in_csrf_and_sign_out() {
    let setup = setup();
    let server = serve(&setup, &[]);

    // Wrong password and unknown person get the same answer.
    let wrong = login(&server, "alice", "not the password at all");
    assert_eq!(wrong.status(), 401);
    let wrong: Value = wrong.json().unwrap();
    let unknown = login(&server, "mallory", "not the password at all");
    assert_eq!(unknown.status(), 401);
    let unknown: Value = unknown.json().unwrap();
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
    assert_eq!(wrong["error"]["message"], "wrong username or password");

    let (cookie, csrf, body) = sign_in(&server, "alice", ALICE_PASSWORD);
    // alice is a pack Person: the pack's roles apply, not the stored `viewer`.
    assert_eq!(body["roles"], json!(["submitter", "approver", "operator"]));
    assert_eq!(body["auth_method"], "session");
    assert_eq!(body["established_by"], "password");

    // whoami through the cookie.
    let me: Value = client()
        .get(server.url("/api/v1/whoami"))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["principal"], "alice");
    assert_eq!(me["auth_method"], "session");
    assert_eq!(me["roles"], json!(["submitter", "approver", "operator"]));
    assert_eq!(me["credential"]["kind"], "session");
    assert_eq!(me["credential"]["id"], body["session_id"]);
    assert!(me["credential"]["expires_at"].is_string());
    assert!(me["credential"]["idle_expires_at"].is_string());

    // A person outside the pack holds the stored roles.
    let (zed_cookie, _, zed) = sign_in(&server, "zed", ZED_PASSWORD);
    assert_eq!(zed["roles"], json!(["viewer"]));

    // The current session repeats the CSRF token.
    let current: Value = client()
        .get(server.url("/api/v1/session"))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(current["csrf_token"], csrf);

    // A state-changing cookie request with the CSRF token succeeds...
    let created = create_token_request(&server, &cookie, Some(&csrf));
    assert_eq!(created.status(), 201);
    let created: Value = created.json().unwrap();
    assert_eq!(created["principal"], "alice");
    assert!(created["token"].as_str().unwrap().starts_with("gh_"));
    // ...without it, or with another session's token, it is refused with 403.
    let missing = create_token_request(&server, &cookie, None);
    assert_eq!(missing.status(), 403);
    let (_, other_csrf, _) = sign_in(&server, "alice", ALICE_PASSWORD);
    assert_ne!(other_csrf, csrf);
    let replayed = create_token_request(&server, &cookie, Some(&other_csrf));
    assert_eq!(replayed.status(), 403);
    let zed_with_alices = create_token_request(&server, &zed_cookie, Some(&csrf));
    assert_eq!(zed_with_alices.status(), 403);
    // A bearer request needs no CSRF token.
    let bearer: Value = client()
        .get(server.url("/api/v1/whoami"))
        .bearer_auth(created["token"].as_str().unwrap())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(bearer["auth_method"], "api_token");
    assert_eq!(bearer["credential"]["label"], "from the browser");

    // The sign-in form of the web UI works too.
    let form = client()
        .post(server.url("/api/v1/session"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "username=zed&password={}",
            ZED_PASSWORD.replace(' ', "+")
        ))
        .send()
        .unwrap();
    assert_eq!(form.status(), 200);
    // A cross-origin sign-in is refused.
    let cross = client()
        .post(server.url("/api/v1/session"))
        .header("origin", "https://evil.example")
        .json(&json!({ "username": "zed", "password": ZED_PASSWORD }))
        .send()
        .unwrap();
    assert_eq!(cross.status(), 403);

    // Sign out: the cookie is removed and no longer accepted.
    let out = client()
        .delete(server.url("/api/v1/session"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = client()
        .get(server.url("/api/v1/whoami"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(after.status(), 401);
    let after_post = create_token_request(&server, &cookie, Some(&csrf));
    assert_eq!(after_post.status(), 401);
    // No credential at all: 401.
    let anonymous = client().get(server.url("/api/v1/whoami")).send().unwrap();
    assert_eq!(anonymous.status(), 401);

    // Everything is in the audit log, and no secret is.
    let entries = audit_entries(&server, &setup.admin);
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("auth.login", "denied"),
        ("auth.login", "succeeded"),
        ("auth.csrf", "denied"),
        ("token.create", "succeeded"),
        ("auth.logout", "succeeded"),
    ] {
        assert!(
            actions.contains(&expected),
            "{expected:?} not in {actions:?}"
        );
    }
    let log = serde_json::to_string(&entries).unwrap();
    assert!(!log.contains(ALICE_PASSWORD));
    assert!(!log.contains(created["token"].as_str().unwrap()));
    let cookie_secret = cookie.rsplit('_').next().unwrap();
    assert!(!log.contains(cookie_secret));
}

fn cli_with_token(server: &Server, token: &str, args: &[&str]) -> common::Output {
    let output = bin()
        .args(args)
        .args(["--server", &server.url])
        .env("GATEHOUSE_TOKEN", token)
        .output()
        .unwrap();
    common::Output {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn whoami_status(server: &Server, token: &str) -> (u16, Value) {
    let response = client()
        .get(server.url("/api/v1/whoami"))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn api_token_create_use_revoke_and_expiry_through_the_cli() {
    let setup = setup();
    let server = serve(&setup, &[]);

    let out = cli_with_token(
        &server,
        &setup.admin,
        &[
            "token",
            "create",
            "--role",
            "submitter",
            "--expires",
            "30d",
            "--label",
            "ci payments",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let created: Value = serde_json::from_str(&out.stdout).unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("gh_{id}_")));
    assert_eq!(created["roles"], json!(["submitter"]));

    // Use it.
    let (status, me) = whoami_status(&server, &token);
    assert_eq!(status, 200);
    assert_eq!(me["principal"], "admin");
    assert_eq!(me["auth_method"], "api_token");
    assert_eq!(me["roles"], json!(["submitter"]));
    assert_eq!(me["credential"]["id"], id);
    assert_eq!(me["credential"]["label"], "ci payments");
    assert!(me["credential"]["expires_at"].is_string());

    // A submitter token cannot mint an approver token (roles ⊆ the caller's).
    let escalate = cli_with_token(&server, &token, &["token", "create", "--role", "approver"]);
    assert_eq!(escalate.code(), 2, "{escalate:?}");
    assert!(escalate.stderr.contains("403"), "{}", escalate.stderr);

    // Listing shows the token, never its secret.
    let list = cli_with_token(&server, &token, &["token", "list", "--format", "json"]);
    assert_eq!(list.code(), 0, "{list:?}");
    assert!(list.stdout.contains(&id));
    assert!(!list.stdout.contains(&token));
    assert!(!list.stdout.contains("secret"));

    // Revoke, then the token is refused.
    let revoke = cli_with_token(&server, &setup.admin, &["token", "revoke", &id]);
    assert_eq!(revoke.code(), 0, "{revoke:?}");
    assert!(revoke.stdout.contains("revoked"), "{}", revoke.stdout);
    let (status, body) = whoami_status(&server, &token);
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );

    // An expired token is refused (written straight into the store with a past expiry).
    let expired = gatehouse_core::identity::IssuedToken::generate(
        "zed",
        vec!["viewer".into()],
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2),
        Some(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = gatehouse_store::open(&gatehouse_store::StoreConfig::Sqlite {
            data_dir: setup.data.clone(),
        })
        .await
        .unwrap();
        store.insert_api_token(expired.record()).await.unwrap();
    });
    let (status, body) = whoami_status(&server, expired.token());
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    let entries = audit_entries(&server, &setup.admin);
    let revoked = entries
        .iter()
        .find(|e| e["action"] == "token.revoke" && e["outcome"] == "succeeded")
        .unwrap();
    assert_eq!(revoked["detail"]["token_id"], id);
    assert!(entries.iter().any(|e| e["action"] == "token.create"
        && e["outcome"] == "denied"
        && e["actor"] == "admin"));
    assert!(!serde_json::to_string(&entries).unwrap().contains(&token));

    // user list / disable (offline): disabling revokes the person's tokens.
    let (zed_cookie, _, _) = sign_in(&server, "zed", ZED_PASSWORD);
    let disable = run(&[
        "user",
        "disable",
        "zed",
        "--data-dir",
        setup.data.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(disable.code(), 0, "{disable:?}");
    let outcome: Value = serde_json::from_str(&disable.stdout).unwrap();
    assert_eq!(outcome["sessions_ended"], 1);
    let refused = client()
        .get(server.url("/api/v1/whoami"))
        .header("cookie", &zed_cookie)
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(login(&server, "zed", ZED_PASSWORD).status(), 401);
    let users = run(&[
        "user",
        "list",
        "--data-dir",
        setup.data.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let users: Value = serde_json::from_str(&users.stdout).unwrap();
    let zed = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "zed")
        .unwrap();
    assert!(zed["disabled_at"].is_string());
    assert!(!users.to_string().contains("argon2"));
}

#[test]
fn ten_thousand_failed_sign_ins_are_rate_limited_and_the_person_still_gets_in() {
    let setup = setup();
    // A short window keeps the test short; the limit logic is the same as with the defaults.
    let server = serve(
        &setup,
        &[
            "--login-rate-limit",
            "5/2s",
            "--login-rate-limit-per-ip",
            "20/2s",
        ],
    );
    const ATTEMPTS: u64 = 10_000;
    const THREADS: u64 = 16;
    let limited = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let other = Arc::new(Mutex::new(Vec::new()));
    let retry_after_missing = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let url = server.url("/api/v1/session");

    // While the flood runs, a health probe must keep answering quickly.
    let health_url = server.url("/healthz");
    let probe_done = Arc::clone(&done);
    let probe = std::thread::spawn(move || {
        let client = http();
        let mut worst = Duration::ZERO;
        let mut probes = 0;
        while !probe_done.load(Ordering::Relaxed) {
            let start = Instant::now();
            let status = client.get(&health_url).send().unwrap().status();
            assert_eq!(status, 200);
            worst = worst.max(start.elapsed());
            probes += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        (worst, probes)
    });

    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (limited, refused, other, missing, url) = (
                Arc::clone(&limited),
                Arc::clone(&refused),
                Arc::clone(&other),
                Arc::clone(&retry_after_missing),
                url.clone(),
            );
            std::thread::spawn(move || {
                let client = http();
                for i in 0..ATTEMPTS / THREADS {
                    let response = client
                        .post(&url)
                        .json(&json!({ "username": "alice", "password": format!("guess {t} {i}") }))
                        .send()
                        .unwrap();
                    match response.status().as_u16() {
                        429 => {
                            limited.fetch_add(1, Ordering::Relaxed);
                            if response.headers().get("retry-after").is_none() {
                                missing.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        401 => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        status => other.lock().unwrap().push(status),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (worst_probe, probes) = probe.join().unwrap();

    let limited = limited.load(Ordering::Relaxed);
    let refused = refused.load(Ordering::Relaxed);
    assert!(
        other.lock().unwrap().is_empty(),
        "{:?}",
        other.lock().unwrap()
    );
    assert_eq!(limited + refused, ATTEMPTS);
    // Only the quota ever reached the password check: 5 at once, then one per 0.4 s.
    let allowed = 5 + (elapsed.as_secs_f64() / 0.4).ceil() as u64 + 1;
    assert!(
        refused <= allowed,
        "{refused} password checks in {elapsed:?} (quota allows {allowed})"
    );
    assert!(limited >= ATTEMPTS - allowed);
    assert_eq!(retry_after_missing.load(Ordering::Relaxed), 0);
    assert!(
        elapsed < Duration::from_secs(120),
        "10,000 refusals took {elapsed:?}"
    );
    assert!(probes > 0);
    assert!(
        worst_probe < Duration::from_secs(5),
        "health probe took {worst_probe:?} during the flood"
    );

    // Right after the flood the real password is limited too (the limit does not tell whether
    // a guess was right); once the window allows, the person signs in.
    let waiting = Instant::now();
    let body = loop {
        let response = login(&server, "alice", ALICE_PASSWORD);
        if response.status() == 200 {
            break response.json::<Value>().unwrap();
        }
        assert_eq!(response.status(), 429);
        let retry_after: u64 = response
            .headers()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the person is still locked out after {:?}",
            waiting.elapsed()
        );
        std::thread::sleep(Duration::from_secs(retry_after));
    };
    assert_eq!(body["principal"], "alice");
    assert!(body["csrf_token"].is_string());

    // Refusals were audited, but not 10,000 times: one entry per key per window.
    let entries = audit_entries(&server, &setup.admin);
    let rate_limited = entries
        .iter()
        .filter(|e| e["action"] == "auth.rate_limited")
        .count() as u64;
    assert!(rate_limited >= 1);
    assert!(
        rate_limited <= 2 * (elapsed.as_secs() / 2 + 2),
        "{rate_limited} rate-limit audit entries"
    );
    eprintln!(
        "{ATTEMPTS} sign-in attempts in {elapsed:?}: {limited} limited (429), {refused} checked (401); \
         worst health probe {worst_probe:?}; {rate_limited} audit entries"
    );
}
