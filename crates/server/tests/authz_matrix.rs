#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The authorization matrix: every route of the catalog, called over real HTTP on loopback as
//! every default role (with a real API token stored for it) and anonymously, must be allowed or
//! denied exactly as the catalog and the pack's policy say. A route cannot be added outside the
//! catalog (the router is built from it, and a scan of the server's sources refuses `.route(`
//! anywhere else), and the permission matrix in `docs/security.md` is generated from the same
//! table. Also here: denials become stored security events, security headers, body limits, and
//! the example Sigma rule on repeated authentication failures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::authz::DEFAULT_ROLES;
use gatehouse_core::events::{EventStore, SignalQuery};
use gatehouse_core::identity::IssuedToken;
use gatehouse_server::catalog::{self, Access, ROUTES};
use gatehouse_server::detection::{self, DetectionConfig};
use gatehouse_server::{AppState, PackSource, Server, ServerConfig, SystemClock, prepare};
use gatehouse_store::{SqlGateStore, StoreConfig, open_with_events};
use serde_json::Value;

const UNKNOWN_RELEASE: &str = "0190b6a1-0000-7000-8000-000000000001";

struct Harness {
    base: String,
    tokens: BTreeMap<&'static str, String>,
    events: Arc<dyn EventStore>,
    state: AppState,
    client: reqwest::Client,
    pack_dir: PathBuf,
    _temp: tempfile::TempDir,
}

fn write_pack(dir: &Path) {
    for (name, text) in gatehouse_pack::example::files() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn start(rule_paths: Vec<PathBuf>) -> Harness {
    let temp = tempfile::tempdir().unwrap();
    let pack_dir = temp.path().join("pack");
    write_pack(&pack_dir);
    let config = StoreConfig::Sqlite {
        data_dir: temp.path().join("data"),
    };
    let (store, events) = open_with_events(&config).await.unwrap();
    let loaded = gatehouse_pack::load(&pack_dir).unwrap();
    assert!(!loaded.has_errors());
    let state = prepare(
        Arc::clone(&store),
        Arc::new(SystemClock),
        PackSource::new(&pack_dir),
        loaded.pack,
    )
    .await
    .unwrap();
    detection::start(
        &state,
        Arc::clone(&events),
        DetectionConfig {
            rule_paths,
            ..DetectionConfig::default()
        },
    )
    .await
    .unwrap();
    let gate_store = SqlGateStore::connect(&config).await.unwrap();
    state.attach_gate(Arc::new(gatehouse_server::routes::gate::Gate::new(
        Arc::new(gate_store),
        1024 * 1024,
    )));

    let now = jiff::Timestamp::now();
    let mut tokens = BTreeMap::new();
    for role in DEFAULT_ROLES {
        let issued =
            IssuedToken::generate(&format!("matrix-{role}"), vec![role.to_owned()], now, None)
                .unwrap();
        store.insert_api_token(issued.record()).await.unwrap();
        tokens.insert(role, issued.token().to_owned());
    }

    let listener = gatehouse_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = Server::new(
        listener,
        &ServerConfig {
            reload_on_sighup: false,
            ..ServerConfig::default()
        },
        state.clone(),
    )
    .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(std::future::pending()));
    Harness {
        base,
        tokens,
        events,
        state,
        client: reqwest::Client::new(),
        pack_dir,
        _temp: temp,
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", UNKNOWN_RELEASE)
        .replace("{requirement}", "REQ-UNKNOWN")
}

/// What the access check answered, if it refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// 401 from the access check.
    Unauthenticated,
    /// 403 from the access check, or core's refusal ("… may not <permission> …") in a handler.
    Denied,
}

/// Sends the route's request; returns the status, the error message and whether the access
/// check refused it.
async fn call(
    h: &Harness,
    route: &catalog::ApiRoute,
    token: Option<&str>,
) -> (u16, String, Option<Refused>) {
    let url = format!("{}{}", h.base, concrete(route.path));
    let mut request = h.client.request(route.method.clone(), &url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if route.method == reqwest::Method::POST {
        request = request
            .header("content-type", "application/json")
            .body("{}");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let by_access_check = response
        .headers()
        .get(catalog::REFUSED_BY_HEADER)
        .is_some_and(|v| v == "access-check");
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let refused = match (status, by_access_check) {
        (401, true) => Some(Refused::Unauthenticated),
        (403, true) => Some(Refused::Denied),
        // A handler's own authorization check (core's refusal) counts as a denial too.
        (403, false) if message.contains(" may not ") => Some(Refused::Denied),
        _ => None,
    };
    (status, message, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_as_every_role_matches_the_matrix() {
    let h = start(Vec::new()).await;
    let policy = h.state.pack().policy.clone();
    let mut wrong = Vec::new();
    let mut calls = 0;
    for route in ROUTES {
        // Anonymous: only public routes answer without 401.
        let (status, message, refused) = call(&h, route, None).await;
        calls += 1;
        let public = route.access == Access::Public;
        if public == (refused == Some(Refused::Unauthenticated)) {
            wrong.push(format!(
                "{} {} anonymous: got {status} {message}",
                route.method, route.path
            ));
        }
        for role in DEFAULT_ROLES {
            let (status, message, refused) = call(&h, route, Some(&h.tokens[role])).await;
            calls += 1;
            let expected = catalog::role_may(&policy, role, route.access);
            if expected == refused.is_some() {
                wrong.push(format!(
                    "{} {} as {role}: expected {}, got {status} {message}",
                    route.method,
                    route.path,
                    if expected { "allowed" } else { "denied" }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {calls} calls disagree with the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The matrix is not vacuous: some role is denied somewhere, and every role is allowed
    // something.
    assert!(
        ROUTES
            .iter()
            .any(|r| !catalog::role_may(&policy, "viewer", r.access))
    );
    println!("routes in the catalog ({}):", ROUTES.len());
    for route in ROUTES {
        println!("  {} {} {:?}", route.method, route.path, route.access);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_paths_are_404_for_everyone() {
    let h = start(Vec::new()).await;
    for path in ["/api/v1/nope", "/api/v1/releases/x/y/z", "/api/v2/pack"] {
        let response = h
            .client
            .get(format!("{}{path}", h.base))
            .bearer_auth(&h.tokens["admin"])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
}

/// Routes can only be added through the catalog: no other server source calls `.route(`,
/// `.nest(` or builds a `Router`.
#[test]
fn the_catalog_is_the_only_place_routes_are_added() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("catalog.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if code.contains(".route(")
                    || code.contains(".nest(")
                    || code.contains("Router::new(")
                {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "add routes to crates/server/src/catalog.rs (ROUTES), not here:\n{}",
        offenders.join("\n")
    );
}

/// Every operation of the OpenAPI document has a catalog entry with the same method and path.
#[test]
fn every_openapi_operation_is_in_the_catalog() {
    let doc = gatehouse_server::openapi::document();
    let paths = doc["paths"].as_object().unwrap();
    let mut missing = Vec::new();
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let known = ROUTES
                .iter()
                .any(|r| r.path == path.as_str() && r.method.as_str().eq_ignore_ascii_case(method));
            if !known {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in the catalog: {missing:?}");
}

/// `docs/security.md` holds the generated matrix between its markers
/// (`GATEHOUSE_UPDATE_DOCS=1` rewrites it).
#[test]
fn docs_security_md_permission_matrix_is_current() {
    let path = repo_root().join("docs/security.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = catalog::permission_matrix_markdown();
    let section = format!(
        "{}\n{generated}{}",
        catalog::MATRIX_BEGIN,
        catalog::MATRIX_END
    );
    let current = match (
        text.find(catalog::MATRIX_BEGIN),
        text.find(catalog::MATRIX_END),
    ) {
        (Some(b), Some(e)) if b < e => Some((b, e + catalog::MATRIX_END.len())),
        _ => None,
    };
    if std::env::var_os("GATEHOUSE_UPDATE_DOCS").is_some() {
        let updated = match current {
            Some((b, e)) => format!("{}{section}{}", &text[..b], &text[e..]),
            None => format!("{text}\n## Permission matrix\n\n{section}\n"),
        };
        std::fs::write(&path, updated).unwrap();
        return;
    }
    let (b, e) = current.unwrap_or_else(|| {
        panic!(
            "docs/security.md has no {} … {} section; run with GATEHOUSE_UPDATE_DOCS=1",
            catalog::MATRIX_BEGIN,
            catalog::MATRIX_END
        )
    });
    assert_eq!(
        &text[b..e],
        section,
        "docs/security.md's permission matrix is stale; run \
         `GATEHOUSE_UPDATE_DOCS=1 cargo test -p gatehouse-server --test authz_matrix`"
    );
}

/// Security events of source `gatehouse` stored so far.
async fn security_events(h: &Harness) -> Vec<Value> {
    h.events
        .events_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.source == "gatehouse")
        .map(|e| e.ecs)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_and_a_failed_authentication_are_stored_security_events() {
    let h = start(Vec::new()).await;
    let denied = h
        .client
        .post(format!("{}/api/v1/pack/reload", h.base))
        .bearer_auth(&h.tokens["viewer"])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 403);
    let anonymous = h
        .client
        .get(format!("{}/api/v1/pack", h.base))
        .bearer_auth("gh_not_a_token")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    let events = security_events(&h).await;
    let denial = events
        .iter()
        .find(|e| e["event"]["action"] == "permission-denied")
        .unwrap_or_else(|| panic!("no permission-denied event in {events:#?}"));
    assert_eq!(denial["event"]["category"], serde_json::json!(["iam"]));
    assert_eq!(denial["event"]["outcome"], "failure");
    assert_eq!(denial["user"]["id"], "matrix-viewer");
    assert_eq!(denial["gatehouse"]["permission"], "pack.reload");
    assert_eq!(denial["source"]["ip"], "127.0.0.1");
    assert_eq!(denial["url"]["path"], "/api/v1/pack/reload");
    let failure = events
        .iter()
        .find(|e| e["event"]["action"] == "authentication-failed")
        .unwrap_or_else(|| panic!("no authentication-failed event in {events:#?}"));
    assert_eq!(
        failure["event"]["category"],
        serde_json::json!(["authentication"])
    );
    assert_eq!(failure["source"]["ip"], "127.0.0.1");
    // An allowed request emits no denial for the admin.
    assert!(
        !events
            .iter()
            .any(|e| e["user"]["id"] == "matrix-admin" && e["event"]["outcome"] == "failure")
    );
    // The viewer's token was used for the first time: one token-used event.
    let used: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"]["action"] == "token-used" && e["user"]["id"] == "matrix-viewer")
        .collect();
    assert_eq!(used.len(), 1, "{events:#?}");
    assert_eq!(used[0]["event"]["category"], serde_json::json!(["iam"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_reload_is_a_configuration_security_event() {
    let h = start(Vec::new()).await;
    let response = h
        .client
        .post(format!("{}/api/v1/pack/reload", h.base))
        .bearer_auth(&h.tokens["operator"])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let events = security_events(&h).await;
    let reload = events
        .iter()
        .find(|e| e["event"]["action"] == "pack-reloaded")
        .unwrap_or_else(|| panic!("no pack-reloaded event in {events:#?}"));
    assert_eq!(
        reload["event"]["category"],
        serde_json::json!(["configuration"])
    );
    assert_eq!(reload["event"]["outcome"], "success");
    assert_eq!(reload["user"]["id"], "matrix-operator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_rule_fires_on_repeated_authentication_failures() {
    let h = start(vec![repo_root().join("docs/rules")]).await;
    // Four failures stay below the threshold of five.
    for _ in 0..4 {
        let r = h
            .client
            .get(format!("{}/api/v1/pack", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }
    let correlated = |signals: &[gatehouse_core::events::Signal]| {
        signals
            .iter()
            .any(|s| s.signal.rule_id == "gatehouse-repeated-authentication-failures")
    };
    let signals_now = |h: &Harness| {
        let events = Arc::clone(&h.events);
        async move {
            events
                .list_signals(&SignalQuery {
                    rule_id: None,
                    after_id: 0,
                    limit: 500,
                })
                .await
                .unwrap()
        }
    };
    // Wait until the detector has read the four failures, then check nothing fired.
    let last = h
        .events
        .events_after(0, 1000)
        .await
        .unwrap()
        .last()
        .unwrap()
        .id;
    let deadline = Instant::now() + Duration::from_secs(20);
    while h
        .events
        .detection_cursor(detection::DETECTOR)
        .await
        .unwrap()
        < last
    {
        assert!(Instant::now() < deadline, "the detector did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !correlated(&signals_now(&h).await),
        "fired below the threshold"
    );
    let r = h
        .client
        .get(format!("{}/api/v1/pack", h.base))
        .bearer_auth("gh_0123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if correlated(&signals_now(&h).await) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the repeated-failure rule did not fire"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_security_headers_and_json_bodies_are_bounded() {
    let h = start(Vec::new()).await;
    for path in ["/healthz", "/api/v1/pack", "/api/v1/nope"] {
        let r = h
            .client
            .get(format!("{}{path}", h.base))
            .send()
            .await
            .unwrap();
        let headers = r.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        // Plain HTTP: no HSTS.
        assert!(!headers.contains_key("strict-transport-security"), "{path}");
    }
    // A JSON route refuses a body above its 64 KiB limit, even from an allowed caller.
    let big = format!("{{\"service\": \"{}\"}}", "x".repeat(100 * 1024));
    let r = h
        .client
        .post(format!("{}/api/v1/releases", h.base))
        .bearer_auth(&h.tokens["submitter"])
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // Just under the limit is read (and then refused for what it says, not its size).
    let small = format!("{{\"service\": \"{}\"}}", "x".repeat(60 * 1024));
    let r = h
        .client
        .post(format!("{}/api/v1/releases", h.base))
        .bearer_auth(&h.tokens["submitter"])
        .header("content-type", "application/json")
        .body(small)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_reload_rebuilds_the_policy() {
    let h = start(Vec::new()).await;
    let reload = |role: &'static str| {
        let request = h
            .client
            .post(format!("{}/api/v1/pack/reload", h.base))
            .bearer_auth(&h.tokens[role]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(reload("viewer").await, 403);
    // The pack now grants viewers pack.reload, and takes release.read away from auditors.
    let identity = h.pack_dir.join("identity.yaml");
    let text = std::fs::read_to_string(&identity).unwrap();
    let text = text
        .replacen(
            "id: viewer\n",
            "id: viewer\npermissions: [pack.read, pack.reload]\n",
            1,
        )
        .replacen(
            "id: auditor\n",
            "id: auditor\npermissions: [audit.read]\n",
            1,
        );
    std::fs::write(&identity, text).unwrap();
    assert_eq!(reload("operator").await, 200);
    assert_eq!(reload("viewer").await, 200);
    let read = h
        .client
        .get(format!("{}/api/v1/releases", h.base))
        .bearer_auth(&h.tokens["auditor"])
        .send()
        .await
        .unwrap();
    assert_eq!(read.status().as_u16(), 403);
    // A pack naming an unknown permission is refused by lint; the policy in force stays.
    let text = std::fs::read_to_string(&identity).unwrap().replacen(
        "[pack.read, pack.reload]",
        "[pack.read, pack.reload, pack.destroy]",
        1,
    );
    std::fs::write(&identity, text).unwrap();
    let refused = h
        .client
        .post(format!("{}/api/v1/pack/reload", h.base))
        .bearer_auth(&h.tokens["operator"])
        .send()
        .await
        .unwrap();
    assert_ne!(refused.status().as_u16(), 200);
    let body = refused.text().await.unwrap();
    assert!(body.contains("unknown-permission"), "{body}");
    assert!(body.contains("identity.yaml"), "{body}");
    // The viewer still holds pack.reload (the refused pack changed nothing): its reload is
    // refused for the pack's errors (422), not for permission (403).
    assert_eq!(reload("viewer").await, 422);
}
