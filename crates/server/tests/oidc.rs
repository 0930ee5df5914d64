#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! OIDC end to end over loopback HTTP: a test issuer (axum, keys generated here: RSA 2048,
//! P-256, Ed25519) serves discovery, JWKS, an auto-approving authorization endpoint and a token
//! endpoint that enforces PKCE; the gatehouse server runs on a real SQLite store with a fixed
//! clock and a pack naming that issuer.
//!
//! Covered: a workload token of acme/payments on main creates a release of `payments` and is
//! refused for another service; every bad-input JWT (alg none, HS256 signed with the RSA public
//! key, expired, not yet valid, wrong iss, wrong aud, unknown kid, bad signature, truncated) is
//! a 401 with a reason and an audited denial; key rotation triggers one JWKS refetch while a
//! flood of unknown kids does not reach the issuer; the JWKS cache follows the issuer's
//! `Cache-Control: max-age` within its bounds (moving the server's clock, not sleeping) and serves
//! the last good keys for a bounded time while the issuer fails; the PKCE sign-in round trip (and
//! replay, missing cookie, wrong nonce refused).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::clock::FixedClock;
use gatehouse_server::{AppState, PackSource, ServerConfig, prepare};
use gatehouse_store::{StoreConfig, open};
use jiff::Timestamp;
use serde_json::{Value, json};

const NOW: i64 = 1_780_000_000;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signing keys of the test issuer.
struct Keys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    ed: Ed25519KeyPair,
}

impl Keys {
    fn generate() -> Self {
        Self {
            rsa: RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
            ec: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            ed: Ed25519KeyPair::generate().unwrap(),
        }
    }

    fn rsa_jwk(&self, kid: &str) -> Value {
        let public = self.rsa.public_key();
        json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero())})
    }

    fn jwks(&self) -> Value {
        let point = self.ec.public_key().as_ref();
        json!({"keys": [
            self.rsa_jwk("rsa-1"),
            {"kty": "EC", "crv": "P-256", "kid": "ec-1", "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": b64(self.ed.public_key().as_ref())},
        ]})
    }

    /// A compact JWS over `header` and `claims`, signed for the header's `alg`.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match header["alg"].as_str().unwrap() {
            "RS256" => {
                let mut sig = vec![0; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(
                        &RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        input.as_bytes(),
                        &mut sig,
                    )
                    .unwrap();
                sig
            }
            "ES256" => self
                .ec
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            "EdDSA" => self.ed.sign(input.as_bytes()).as_ref().to_vec(),
            // The algorithm-confusion attack: HMAC keyed with the RSA *public* key.
            "HS256" => {
                let key = aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    self.rsa.public_key().as_ref(),
                );
                aws_lc_rs::hmac::sign(&key, input.as_bytes())
                    .as_ref()
                    .to_vec()
            }
            other => panic!("no signer for {other}"),
        };
        format!("{input}.{}", b64(&signature))
    }
}

struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

/// The loopback identity provider.
struct IssuerState {
    url: String,
    keys: Keys,
    jwks: Mutex<Value>,
    /// Every JWKS request, answered or failed.
    jwks_hits: AtomicUsize,
    /// `Cache-Control` of the JWKS answer (none when `None`).
    jwks_cache_control: Mutex<Option<&'static str>>,
    /// The JWKS endpoint answers 503 while set.
    jwks_down: AtomicBool,
    grants: Mutex<HashMap<String, Grant>>,
    wrong_nonce: AtomicBool,
}

struct Issuer {
    state: Arc<IssuerState>,
}

impl Issuer {
    async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys = Keys::generate();
        let jwks = keys.jwks();
        let state = Arc::new(IssuerState {
            url,
            keys,
            jwks: Mutex::new(jwks),
            jwks_hits: AtomicUsize::new(0),
            jwks_cache_control: Mutex::new(None),
            jwks_down: AtomicBool::new(false),
            grants: Mutex::new(HashMap::new()),
            wrong_nonce: AtomicBool::new(false),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks_handler))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Issuer { state }
    }

    fn url(&self) -> &str {
        &self.state.url
    }

    fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    fn claims(&self, extra: Value) -> Value {
        let mut claims = json!({
            "iss": self.url(), "aud": "gatehouse",
            "sub": "repo:acme/payments:ref:refs/heads/main",
            "repository": "acme/payments", "ref": "refs/heads/main",
            "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 300,
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    }

    fn token(&self, alg: &str, kid: &str, extra: Value) -> String {
        self.state.keys.sign(
            &json!({"alg": alg, "typ": "JWT", "kid": kid}),
            &self.claims(extra),
        )
    }

    /// A valid RS256 workload token (kid `rsa-1`) of `keys`, issued at `now`.
    fn token_at(&self, keys: &Keys, now: i64) -> String {
        keys.sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}),
            &self.claims(json!({"iat": now - 10, "nbf": now - 10, "exp": now + 300})),
        )
    }

    fn set_cache_control(&self, value: Option<&'static str>) {
        *self.state.jwks_cache_control.lock().unwrap() = value;
    }
}

async fn discovery(State(s): State<Arc<IssuerState>>) -> Json<Value> {
    Json(json!({
        "issuer": s.url,
        "jwks_uri": format!("{}/jwks", s.url),
        "authorization_endpoint": format!("{}/authorize", s.url),
        "token_endpoint": format!("{}/token", s.url),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks_handler(State(s): State<Arc<IssuerState>>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if s.jwks_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    }
    let jwks = Json(s.jwks.lock().unwrap().clone());
    match *s.jwks_cache_control.lock().unwrap() {
        Some(value) => ([(header::CACHE_CONTROL, value)], jwks).into_response(),
        None => jwks.into_response(),
    }
}

/// Auto-approves: redirects straight back with a code bound to the PKCE challenge.
async fn authorize(
    State(s): State<Arc<IssuerState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("response_type").map(String::as_str) != Some("code")
        || q.get("client_id").map(String::as_str) != Some("gatehouse-web")
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let code = format!("code-{}", s.grants.lock().unwrap().len());
    let redirect_uri = q["redirect_uri"].clone();
    s.grants.lock().unwrap().insert(
        code.clone(),
        Grant {
            nonce: q["nonce"].clone(),
            challenge: q["code_challenge"].clone(),
            redirect_uri: redirect_uri.clone(),
        },
    );
    let state = url::form_urlencoded::byte_serialize(q["state"].as_bytes()).collect::<String>();
    Redirect::to(&format!("{redirect_uri}?code={code}&state={state}")).into_response()
}

/// Exchanges a code once, only with the verifier whose S256 hash is the challenge.
async fn token(State(s): State<Arc<IssuerState>>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let Some(grant) = s.grants.lock().unwrap().remove(&form["code"]) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge =
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref());
    if challenge != grant.challenge
        || form.get("redirect_uri") != Some(&grant.redirect_uri)
        || form.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "PKCE"})),
        )
            .into_response();
    }
    let nonce = if s.wrong_nonce.load(Ordering::SeqCst) {
        "not-the-nonce".to_owned()
    } else {
        grant.nonce
    };
    let id_token = s.keys.sign(
        &json!({"alg": "RS256", "kid": "rsa-1"}),
        &json!({"iss": s.url, "aud": "gatehouse-web", "sub": "auth0|alice", "nonce": nonce,
            "iat": NOW, "exp": NOW + 300}),
    );
    Json(json!({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

/// A gatehouse server on loopback with the example pack plus `providers`.
struct Gatehouse {
    url: String,
    state: AppState,
    clock: Arc<FixedClock>,
    _temp: tempfile::TempDir,
}

impl Gatehouse {
    /// Moves the server's clock to `NOW + offset` seconds and answers that instant.
    fn at(&self, offset: i64) -> i64 {
        self.clock
            .set(Timestamp::from_second(NOW + offset).unwrap());
        NOW + offset
    }
}

fn write_pack(dir: &Path, providers: &str) {
    for (name, text) in gatehouse_pack::example::files() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::write(dir.join("test-providers.yaml"), providers).unwrap();
}

async fn start_gatehouse(providers: impl FnOnce(&str) -> String) -> Gatehouse {
    let temp = tempfile::tempdir().unwrap();
    let listener = gatehouse_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let pack_dir = temp.path().join("pack");
    write_pack(&pack_dir, &providers(&url));
    let loaded = gatehouse_pack::load(&pack_dir).unwrap();
    assert!(
        !loaded.has_errors(),
        "{}",
        gatehouse_pack::render::text(&loaded.diagnostics, &loaded.sources)
    );
    let store = open(&StoreConfig::Sqlite {
        data_dir: temp.path().join("data"),
    })
    .await
    .unwrap();
    let clock = Arc::new(FixedClock::new(Timestamp::from_second(NOW).unwrap()));
    let state = prepare(
        store,
        Arc::clone(&clock) as Arc<dyn gatehouse_core::clock::Clock>,
        PackSource::new(&pack_dir),
        loaded.pack,
    )
    .await
    .unwrap();
    // Browser sessions, as the binary wires them, so a sign-in ends in a session.
    let identity_store = gatehouse_store::SqlIdentityStore::connect(&StoreConfig::Sqlite {
        data_dir: temp.path().join("data"),
    })
    .await
    .unwrap();
    state.attach_identity(Arc::new(gatehouse_server::session::Identity::new(
        Arc::new(identity_store),
        gatehouse_server::session::IdentityConfig::default(),
    )));
    let config = ServerConfig {
        reload_on_sighup: false,
        ..ServerConfig::default()
    };
    let served = state.clone();
    tokio::spawn(async move {
        gatehouse_server::run(listener, config, served, std::future::pending())
            .await
            .unwrap()
    });
    Gatehouse {
        url,
        state,
        clock,
        _temp: temp,
    }
}

fn workload_provider(issuer: &str) -> String {
    format!(
        "kind: IdentityProvider\nid: ci\nissuer: {issuer}\naudiences: [gatehouse]\nprincipal: workload\n\
         rules:\n  - match: {{ repository: acme/payments, ref: refs/heads/main }}\n    roles: [submitter]\n    services: [payments]\n"
    )
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn create_release(g: &Gatehouse, token: &str, service: &str) -> (u16, Value) {
    let response = http()
        .post(format!("{}/api/v1/releases", g.url))
        .bearer_auth(token)
        .json(
            &json!({"service": service, "version": "1.4.2", "release_class": "normal",
            "owner": "development", "target_environment": "production"}),
        )
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn list_releases(g: &Gatehouse, token: &str) -> (u16, Value) {
    let response = http()
        .get(format!("{}/api/v1/releases", g.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_token_submits_releases_for_its_services_only() {
    let issuer = Issuer::start().await;
    let g = start_gatehouse(|_| workload_provider(issuer.url())).await;

    for (alg, kid) in [("RS256", "rsa-1"), ("ES256", "ec-1"), ("EdDSA", "ed-1")] {
        let token = issuer.token(alg, kid, json!({}));
        let (status, body) = create_release(&g, &token, "payments").await;
        assert_eq!(status, 201, "{alg}: {body}");
        assert_eq!(body["service"], "payments");
        assert_eq!(
            body["submitter"].as_str().unwrap_or(""),
            format!(
                "oidc:{}#repo:acme/payments:ref:refs/heads/main",
                issuer.url()
            ),
            "{body}"
        );
    }

    let token = issuer.token("RS256", "rsa-1", json!({}));
    let me: Value = http()
        .get(format!("{}/api/v1/whoami", g.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["auth_method"], "oidc_workload", "{me}");
    assert_eq!(me["roles"], json!(["submitter"]), "{me}");
    assert_eq!(me["service_scope"], json!(["payments"]), "{me}");
    let (status, body) = create_release(&g, &token, "checkout").await;
    assert_eq!(status, 403, "{body}");
    assert!(message(&body).contains("payments"), "{body}");

    // Another branch of the same repository matches no rule.
    let feature = issuer.token("RS256", "rsa-1", json!({"ref": "refs/heads/feature"}));
    let (status, body) = create_release(&g, &feature, "payments").await;
    assert_eq!(status, 401, "{body}");
    assert!(message(&body).contains("no claim rule"), "{body}");

    // The refused creation and the unmatched token are in the audit log.
    let entries = g.state.store().list_audit(0, 1000).await.unwrap();
    let text = serde_json::to_string(&entries).unwrap();
    assert!(
        text.contains("service outside the principal's scope"),
        "{text}"
    );
    assert!(text.contains("no claim rule"), "{text}");
    // Keys were fetched once for all of it.
    assert_eq!(issuer.jwks_hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_a_reason() {
    let issuer = Issuer::start().await;
    let g = start_gatehouse(|_| workload_provider(issuer.url())).await;
    let good = issuer.token("RS256", "rsa-1", json!({}));
    assert_eq!(list_releases(&g, &good).await.0, 200);

    let claims = issuer.claims(json!({}));
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let none_with_signature = format!(
        "{}.{}.{}",
        b64(br#"{"alg":"none","kid":"rsa-1"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"x")
    );
    let mut bad_signature = good.clone();
    let last = bad_signature.pop().unwrap();
    bad_signature.push(if last == 'A' { 'B' } else { 'A' });
    let (head, _) = good.rsplit_once('.').unwrap();
    let other_signature = issuer.token("RS256", "rsa-1", json!({"sub": "someone-else"}));
    let spliced = format!("{head}.{}", other_signature.rsplit_once('.').unwrap().1);

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", unsigned, "unsigned tokens are refused"),
        (
            "alg none with a signature",
            none_with_signature,
            "algorithm `none` is not accepted",
        ),
        (
            "HS256 signed with the RSA public key",
            issuer.token("HS256", "rsa-1", json!({})),
            "algorithm `HS256` is not accepted",
        ),
        (
            "expired beyond the skew",
            issuer.token(
                "RS256",
                "rsa-1",
                json!({"exp": NOW - 61, "iat": NOW - 400, "nbf": NOW - 400}),
            ),
            "expired",
        ),
        (
            "not yet valid",
            issuer.token("ES256", "ec-1", json!({"nbf": NOW + 120})),
            "not valid before",
        ),
        (
            "wrong iss",
            issuer.token(
                "RS256",
                "rsa-1",
                json!({"iss": "https://token.evil.example"}),
            ),
            "is not an IdentityProvider",
        ),
        (
            "wrong aud",
            issuer.token("EdDSA", "ed-1", json!({"aud": "another-service"})),
            "audience",
        ),
        (
            "unknown kid",
            issuer.token("RS256", "rsa-9", json!({})),
            "unknown signing key `rsa-9`",
        ),
        ("bad signature", bad_signature, "signature is not valid"),
        (
            "signature of other claims",
            spliced,
            "signature is not valid",
        ),
        (
            "truncated in the payload",
            good[..good.find('.').unwrap() + 20].to_owned(),
            "malformed JWT",
        ),
        (
            "truncated signature",
            good[..good.len() - 12].to_owned(),
            "signature is not valid",
        ),
        (
            "no exp",
            issuer.token("RS256", "rsa-1", json!({"exp": null})),
            "no `exp`",
        ),
    ];
    for (name, token, reason) in &cases {
        let (status, body) = list_releases(&g, token).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert!(message(&body).contains(reason), "{name}: {body}");
        assert!(
            !message(&body).contains(token.as_str()),
            "{name}: the token is echoed"
        );
    }
    // Within the skew (60s by default) a just-expired token still passes.
    let skewed = issuer.token("RS256", "rsa-1", json!({"exp": NOW - 30}));
    assert_eq!(list_releases(&g, &skewed).await.0, 200);

    let entries = g.state.store().list_audit(0, 1000).await.unwrap();
    let denied = serde_json::to_string(&entries).unwrap();
    for (name, _, reason) in &cases {
        assert!(
            denied.contains(&reason.replace('`', "\\u0060")) || denied.contains(reason),
            "{name} not audited"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refetches_once_and_a_flood_does_not_reach_the_issuer() {
    let issuer = Issuer::start().await;
    let g = start_gatehouse(|_| workload_provider(issuer.url())).await;
    assert_eq!(
        list_releases(&g, &issuer.token("RS256", "rsa-1", json!({})))
            .await
            .0,
        200
    );
    assert_eq!(issuer.jwks_hits(), 1);

    // The issuer rotates to a new RSA key; the first token signed with it triggers a refetch.
    let rotated = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let new_keys = Keys {
        rsa: rotated,
        ec: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        ed: Ed25519KeyPair::generate().unwrap(),
    };
    *issuer.state.jwks.lock().unwrap() = json!({"keys": [new_keys.rsa_jwk("rsa-2")]});
    let claims = issuer.claims(json!({}));
    let token = new_keys.sign(&json!({"alg": "RS256", "kid": "rsa-2"}), &claims);
    let (status, body) = list_releases(&g, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(issuer.jwks_hits(), 2, "one refetch for the new kid");

    // A flood of made-up kids, concurrently: refused, and no further fetch.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let token = new_keys.sign(
            &json!({"alg": "RS256", "kid": format!("forged-{i}")}),
            &claims,
        );
        let url = g.url.clone();
        tasks.push(tokio::spawn(async move {
            http()
                .get(format!("{url}/api/v1/releases"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 401);
    }
    assert_eq!(issuer.jwks_hits(), 2, "the flood did not hammer the issuer");
    // The rotated key keeps working from the cache.
    assert_eq!(list_releases(&g, &token).await.0, 200);
    assert_eq!(issuer.jwks_hits(), 2);
}

/// Lists releases with a valid token of the issuer's keys, the server's clock moved to
/// `NOW + offset`.
async fn call_at(g: &Gatehouse, issuer: &Issuer, offset: i64) -> (u16, Value) {
    let now = g.at(offset);
    list_releases(g, &issuer.token_at(&issuer.state.keys, now)).await
}

/// A JWKS answer with `max-age` is trusted for that long: a key the issuer replaces under the
/// same `kid` is picked up when the cached keys expire (no unknown kid involved), not before,
/// and the replaced key stops being trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_max_age_decides_when_keys_are_refreshed() {
    let issuer = Issuer::start().await;
    issuer.set_cache_control(Some("public, max-age=600"));
    let g = start_gatehouse(|_| workload_provider(issuer.url())).await;
    let old_keys = &issuer.state.keys;
    let now = g.at(0);
    assert_eq!(
        list_releases(&g, &issuer.token_at(old_keys, now)).await.0,
        200
    );
    assert_eq!(issuer.jwks_hits(), 1);

    // The issuer replaces its RSA key, keeping the kid.
    let new_keys = Keys::generate();
    *issuer.state.jwks.lock().unwrap() = json!({"keys": [new_keys.rsa_jwk("rsa-1")]});

    let now = g.at(599);
    let (status, body) = list_releases(&g, &issuer.token_at(&new_keys, now)).await;
    assert_eq!(status, 401, "the cached key is still fresh: {body}");
    assert!(message(&body).contains("signature is not valid"), "{body}");
    assert_eq!(
        list_releases(&g, &issuer.token_at(old_keys, now)).await.0,
        200
    );
    assert_eq!(issuer.jwks_hits(), 1, "no fetch before max-age");

    let now = g.at(600);
    let (status, body) = list_releases(&g, &issuer.token_at(&new_keys, now)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(issuer.jwks_hits(), 2, "one fetch when max-age ran out");
    let (status, body) = list_releases(&g, &issuer.token_at(old_keys, now)).await;
    assert_eq!(status, 401, "the replaced key is no longer trusted: {body}");
    assert_eq!(issuer.jwks_hits(), 2);
}

/// `max-age` is clamped to 60 s .. 24 h; `no-store` means the shortest bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_max_age_is_clamped() {
    let issuer = Issuer::start().await;
    issuer.set_cache_control(Some("max-age=5"));
    let g = start_gatehouse(|_| workload_provider(issuer.url())).await;
    let expect = |offset: i64, hits: usize, why: &'static str| {
        let (g, issuer) = (&g, &issuer);
        async move {
            let (status, body) = call_at(g, issuer, offset).await;
            assert_eq!(status, 200, "{why}: {body}");
            assert_eq!(issuer.jwks_hits(), hits, "{why}");
        }
    };
    expect(0, 1, "first use fetches").await;
    expect(59, 1, "max-age=5 counts as 60 s").await;
    issuer.set_cache_control(Some("max-age=31536000"));
    expect(60, 2, "refreshed at 60 s").await;
    expect(60 + 86_399, 2, "a year counts as 24 h").await;
    issuer.set_cache_control(Some("no-store"));
    expect(60 + 86_400, 3, "refreshed at 24 h").await;
    expect(60 + 86_459, 3, "no-store counts as 60 s").await;
    issuer.set_cache_control(None);
    expect(60 + 86_460, 4, "refreshed at 60 s").await;
    expect(60 + 86_460 + 3_599, 4, "no max-age: one hour").await;
    expect(60 + 86_460 + 3_600, 5, "refreshed at one hour").await;
}

/// When the issuer fails, the last good keys keep working past their expiry, for at most a day,
/// with a new attempt at most every 30 s; once the issuer answers again the keys are fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_are_served_while_the_issuer_fails_for_a_bounded_time() {
    let issuer = Issuer::start().await;
    issuer.set_cache_control(Some("max-age=600"));
    let g = start_gatehouse(|_| workload_provider(issuer.url())).await;
    let call = |offset: i64| call_at(&g, &issuer, offset);
    assert_eq!(call(0).await.0, 200);
    assert_eq!(issuer.jwks_hits(), 1);

    issuer.state.jwks_down.store(true, Ordering::SeqCst);
    assert_eq!(call(600).await.0, 200, "stale keys on error");
    assert_eq!(issuer.jwks_hits(), 2, "the refresh was tried");
    assert_eq!(call(629).await.0, 200);
    assert_eq!(issuer.jwks_hits(), 2, "no retry within 30 s");
    assert_eq!(call(630).await.0, 200);
    assert_eq!(issuer.jwks_hits(), 3, "retried after 30 s");
    assert_eq!(
        call(600 + 86_399).await.0,
        200,
        "still within the stale bound"
    );
    assert_eq!(issuer.jwks_hits(), 4);

    let (status, body) = call(600 + 86_400).await;
    assert_eq!(status, 401, "{body}");
    assert!(message(&body).contains("cannot be refreshed"), "{body}");
    assert!(message(&body).contains("HTTP 503"), "{body}");
    assert_eq!(
        issuer.jwks_hits(),
        4,
        "no retry within 30 s, even when refusing"
    );
    // The last attempt was at 600 + 86_399.
    let (status, _) = call(600 + 86_428).await;
    assert_eq!(status, 401);
    assert_eq!(issuer.jwks_hits(), 4);
    let (status, _) = call(600 + 86_429).await;
    assert_eq!(status, 401, "the retry failed too");
    assert_eq!(issuer.jwks_hits(), 5);

    // The issuer is back: the next attempt succeeds and the keys are fresh again.
    issuer.state.jwks_down.store(false, Ordering::SeqCst);
    let (status, body) = call(600 + 86_459).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(issuer.jwks_hits(), 6);
    assert_eq!(call(600 + 86_459 + 599).await.0, 200);
    assert_eq!(issuer.jwks_hits(), 6);
}

/// The session cookie (`name=value`) among a response's `Set-Cookie` headers; it must be
/// HttpOnly and SameSite=Strict, and the sign-in cookie must be cleared beside it.
fn body_cookie(set_cookies: &[String]) -> String {
    let session = set_cookies
        .iter()
        .find(|c| c.starts_with("gatehouse_session="))
        .unwrap_or_else(|| panic!("no session cookie in {set_cookies:?}"));
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(
        set_cookies
            .iter()
            .any(|c| c.starts_with("gatehouse_oidc_login=;") && c.contains("Max-Age=0")),
        "{set_cookies:?}"
    );
    session.split(';').next().unwrap().to_owned()
}

fn cookie_of(response: &reqwest::Response) -> String {
    let set = response.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_with_pkce() {
    let issuer = Issuer::start().await;
    let issuer_url = issuer.url().to_owned();
    let g = start_gatehouse(|gatehouse| {
        format!(
            "kind: IdentityProvider\nid: sso\nissuer: {issuer_url}\naudiences: [gatehouse-web]\nprincipal: person\n\
             client_id: gatehouse-web\nredirect_uri: {gatehouse}/api/v1/auth/oidc/sso/callback\n"
        )
    })
    .await;
    let client = http();

    // 1. gatehouse redirects to the authorization endpoint with PKCE S256, state and nonce.
    let login = client
        .get(format!("{}/api/v1/auth/oidc/sso/login", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{issuer_url}/authorize?")),
        "{authorize}"
    );
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
    ] {
        assert!(authorize.contains(part), "{authorize}");
    }
    assert!(
        !authorize.contains("code_verifier"),
        "the verifier never leaves the server"
    );
    let cookie = cookie_of(&login);
    assert!(
        login.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );

    // 2. The issuer approves and sends the browser back with a code.
    let approved = client.get(&authorize).send().await.unwrap();
    assert_eq!(approved.status(), 303, "{:?}", approved.text().await);
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{}/api/v1/auth/oidc/sso/callback?", g.url)));

    // A callback from another browser (no sign-in cookie) is refused, and burns the state.
    let stolen = client.get(&callback).send().await.unwrap();
    assert_eq!(stolen.status(), 401);
    assert!(stolen.text().await.unwrap().contains("cookie"));

    // 3. The whole round trip again, this time from the same browser.
    let login = client
        .get(format!("{}/api/v1/auth/oidc/sso/login", g.url))
        .send()
        .await
        .unwrap();
    let cookie2 = cookie_of(&login);
    assert_ne!(cookie, cookie2, "every sign-in has its own state");
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    let approved = client.get(&authorize).send().await.unwrap();
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    let signed_in = client
        .get(&callback)
        .header("cookie", &cookie2)
        .send()
        .await
        .unwrap();
    let status = signed_in.status().as_u16();
    let session_cookies: Vec<String> = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body: Value = signed_in.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["principal"], "alice", "{body}");
    assert_eq!(body["auth_method"], "oidc_person");
    assert!(
        body["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("approver"))
    );
    assert!(
        body["csrf_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );

    // 4. The sign-in established a browser session: whoami answers from the cookie alone.
    let session_cookie = body_cookie(&session_cookies);
    let whoami = client
        .get(format!("{}/api/v1/whoami", g.url))
        .header("cookie", &session_cookie)
        .send()
        .await
        .unwrap();
    let status = whoami.status().as_u16();
    let me: Value = whoami.json().await.unwrap();
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["principal"], "alice", "{me}");
    assert_eq!(me["auth_method"], "session", "{me}");

    // Replaying the callback is refused: a state is single-use (and the code is spent).
    let replay = client
        .get(&callback)
        .header("cookie", &cookie2)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert!(replay.text().await.unwrap().contains("state"));

    // An ID token whose nonce is not the sign-in's is refused.
    issuer.state.wrong_nonce.store(true, Ordering::SeqCst);
    let login = client
        .get(format!("{}/api/v1/auth/oidc/sso/login", g.url))
        .send()
        .await
        .unwrap();
    let cookie3 = cookie_of(&login);
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    let approved = client.get(&authorize).send().await.unwrap();
    let callback = approved.headers()["location"].to_str().unwrap().to_owned();
    let refused = client
        .get(&callback)
        .header("cookie", &cookie3)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("nonce"));

    // Sign-ins and refusals are audited.
    let entries = g.state.store().list_audit(0, 1000).await.unwrap();
    let text = serde_json::to_string(&entries).unwrap();
    assert!(text.contains("auth.login"), "{text}");
    assert!(text.contains("nonce does not match"), "{text}");

    // A workload provider cannot be used to sign people in; an unknown provider is a 404.
    let unknown = client
        .get(format!("{}/api/v1/auth/oidc/nope/login", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}
