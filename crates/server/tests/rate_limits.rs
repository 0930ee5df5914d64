#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The 429 answers of the rate-limited routes, over real HTTP on loopback (so the client IP is
//! the socket peer, 127.0.0.1): token routes per client IP and per principal, and the OIDC
//! sign-in steps sharing the per-IP quota of password sign-in. `crates/cli/tests/identity.rs`
//! floods password sign-in; this covers the other callers of `ratelimit::enforce_per_client_ip`.
//! Quotas are small and the test only counts requests: nothing here waits for a refill.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::audit::AuditEntry;
use gatehouse_core::identity::IssuedToken;
use gatehouse_core::store::Store;
use gatehouse_server::ratelimit::{Quota, RateLimitConfig};
use gatehouse_server::session::{Identity, IdentityConfig};
use gatehouse_server::{AppState, PackSource, ServerConfig, SystemClock, prepare};
use gatehouse_store::{SqlIdentityStore, StoreConfig, open};
use serde_json::{Value, json};

struct Harness {
    base: String,
    store: Arc<dyn Store>,
    _temp: tempfile::TempDir,
}

fn per_minute(burst: u32) -> Quota {
    Quota {
        burst,
        period: Duration::from_secs(60),
    }
}

async fn start(rate_limits: RateLimitConfig) -> Harness {
    let temp = tempfile::tempdir().unwrap();
    let pack_dir = temp.path().join("pack");
    for (name, text) in gatehouse_pack::example::files() {
        let path = pack_dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let loaded = gatehouse_pack::load(&pack_dir).unwrap();
    assert!(!loaded.has_errors());
    let config = StoreConfig::Sqlite {
        data_dir: temp.path().join("data"),
    };
    let store = open(&config).await.unwrap();
    let state: AppState = prepare(
        Arc::clone(&store),
        Arc::new(SystemClock),
        PackSource::new(&pack_dir),
        loaded.pack,
    )
    .await
    .unwrap();
    let identity_store = SqlIdentityStore::connect(&config).await.unwrap();
    state.attach_identity(Arc::new(Identity::new(
        Arc::new(identity_store),
        IdentityConfig {
            rate_limits,
            ..IdentityConfig::default()
        },
    )));
    let listener = gatehouse_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server_config = ServerConfig {
        reload_on_sighup: false,
        ..ServerConfig::default()
    };
    tokio::spawn(async move {
        gatehouse_server::run(listener, server_config, state, std::future::pending())
            .await
            .unwrap()
    });
    Harness {
        base,
        store,
        _temp: temp,
    }
}

async fn token_for(h: &Harness, principal: &str) -> String {
    let issued = IssuedToken::generate(
        principal,
        vec!["viewer".to_owned()],
        jiff::Timestamp::now(),
        None,
    )
    .unwrap();
    h.store.insert_api_token(issued.record()).await.unwrap();
    issued.token().to_owned()
}

/// Status, `Retry-After` and body of one answer.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

/// Asserts the 429 of limit `kind`: a `Retry-After` of whole seconds, at least 1 and at most one
/// emission interval (`max_secs`), and the API's error body naming the same seconds.
fn assert_limited(answer: &(u16, Option<String>, Value), kind: &str, max_secs: u64) {
    let (status, retry_after, body) = answer;
    assert_eq!(*status, 429, "{body}");
    let secs: u64 = retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=max_secs).contains(&secs), "Retry-After {secs}");
    assert_eq!(
        *body,
        json!({ "error": {
            "code": "rate_limited",
            "message": format!("too many requests ({kind}); retry after {secs} s"),
        }})
    );
}

async fn rate_limit_audits(h: &Harness) -> Vec<AuditEntry> {
    h.store
        .list_audit(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.record.action == "auth.rate_limited")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_routes_are_limited_per_client_ip_then_per_principal() {
    let h = start(RateLimitConfig {
        tokens_per_ip: per_minute(3),
        tokens_per_principal: per_minute(2),
        ..RateLimitConfig::default()
    })
    .await;
    let alice = token_for(&h, "alice").await;
    let bob = token_for(&h, "bob").await;
    let http = reqwest::Client::new();
    let list = |token: &str| {
        http.get(format!("{}/api/v1/tokens", h.base))
            .bearer_auth(token)
    };

    for _ in 0..2 {
        let (status, retry_after, body) = answer(list(&alice)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(retry_after, None);
    }
    // Alice's third request is the IP's third (allowed) and her own third (refused).
    assert_limited(&answer(list(&alice)).await, "tokens_per_principal", 30);
    // Bob has his own principal quota, but shares the IP, which is spent.
    assert_limited(&answer(list(&bob)).await, "tokens_per_ip", 20);
    // Other token routes share both quotas.
    assert_limited(
        &answer(
            http.post(format!("{}/api/v1/tokens", h.base))
                .bearer_auth(&bob)
                .json(&json!({ "roles": ["viewer"] })),
        )
        .await,
        "tokens_per_ip",
        20,
    );

    let audits = rate_limit_audits(&h).await;
    let detail_of = |actor: &str, limit: &str| {
        audits
            .iter()
            .find(|e| e.record.actor == actor && e.record.detail["limit"] == limit)
            .unwrap_or_else(|| panic!("no {limit} audit entry for {actor}: {audits:?}"))
    };
    let alice_refused = detail_of("alice", "tokens_per_principal");
    assert_eq!(alice_refused.record.target, "route:GET /api/v1/tokens");
    assert_eq!(alice_refused.record.detail["client_ip"], "127.0.0.1");
    let bob_refused = detail_of("bob", "tokens_per_ip");
    assert_eq!(bob_refused.record.target, "route:GET /api/v1/tokens");
    assert_eq!(bob_refused.record.detail["client_ip"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_shares_the_per_ip_quota_of_password_sign_in() {
    let h = start(RateLimitConfig {
        login_per_ip: per_minute(3),
        ..RateLimitConfig::default()
    })
    .await;
    let http = reqwest::Client::new();
    let login = || http.get(format!("{}/api/v1/auth/oidc/nobody/login", h.base));
    let callback = || http.get(format!("{}/api/v1/auth/oidc/nobody/callback", h.base));
    let password = || {
        http.post(format!("{}/api/v1/session", h.base))
            .json(&json!({ "username": "nobody", "password": "wrong" }))
    };

    // Within the quota the requests reach the handlers: no such provider (the callback refuses
    // the sign-in), no such person.
    assert_eq!(answer(login()).await.0, 404);
    assert_eq!(answer(callback()).await.0, 401);
    assert_eq!(answer(password()).await.0, 401);
    // Every step of either sign-in is refused once the IP's quota is spent.
    assert_limited(&answer(login()).await, "login_per_ip", 20);
    assert_limited(&answer(callback()).await, "login_per_ip", 20);
    assert_limited(&answer(password()).await, "login_per_ip", 20);

    let audits = rate_limit_audits(&h).await;
    assert_eq!(
        audits.len(),
        1,
        "one audited refusal per key per period: {audits:?}"
    );
    let refused = &audits[0].record;
    assert_eq!(refused.actor, "anonymous");
    assert_eq!(
        refused.target,
        "route:GET /api/v1/auth/oidc/{provider}/login"
    );
    assert_eq!(refused.detail["limit"], "login_per_ip");
    assert_eq!(refused.detail["client_ip"], "127.0.0.1");
}
