#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Authentication overhead per request: the same trivial handler behind no authentication
//! (baseline), behind an API token (SQLite lookup + constant-time hash check), and behind an
//! OIDC workload JWT signed RS256 and EdDSA (JWKS cached; signature, claims and claim rules
//! checked on every request). Requests go through an axum router in-process, so the difference
//! to the baseline is what the `Authenticated` extractor costs.
//!
//! `CARGO_TARGET_DIR=target/h4 cargo bench -p gatehouse-server --bench auth`

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_core::clock::FixedClock;
use gatehouse_core::identity::IssuedToken;
use gatehouse_server::auth::Authenticated;
use gatehouse_server::{AppState, PackSource, prepare};
use gatehouse_store::{StoreConfig, open};
use jiff::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const NOW: i64 = 1_780_000_000;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Issuer {
    url: String,
    rsa: RsaKeyPair,
    ed: Ed25519KeyPair,
}

impl Issuer {
    fn jwks(&self) -> Value {
        let public = self.rsa.public_key();
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "alg": "RS256",
             "n": b64(public.modulus().big_endian_without_leading_zero()),
             "e": b64(public.exponent().big_endian_without_leading_zero())},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": b64(self.ed.public_key().as_ref())},
        ]})
    }

    fn token(&self, alg: &str) -> String {
        let kid = if alg == "RS256" { "rsa-1" } else { "ed-1" };
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        let claims = json!({"iss": self.url, "aud": "gatehouse",
            "sub": "repo:acme/payments:ref:refs/heads/main", "repository": "acme/payments",
            "ref": "refs/heads/main", "iat": NOW, "exp": NOW + 3600});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = if alg == "RS256" {
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
        } else {
            self.ed.sign(input.as_bytes()).as_ref().to_vec()
        };
        format!("{input}.{}", b64(&signature))
    }
}

async fn start_issuer() -> Arc<Issuer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = Arc::new(Issuer {
        url: format!("http://{}", listener.local_addr().unwrap()),
        rsa: RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
        ed: Ed25519KeyPair::generate().unwrap(),
    });
    let discovery = json!({"issuer": issuer.url, "jwks_uri": format!("{}/jwks", issuer.url)});
    let jwks = issuer.jwks();
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { axum::Json(discovery) }),
        )
        .route("/jwks", get(move || async move { axum::Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

async fn setup(dir: &std::path::Path, issuer: &Issuer) -> (AppState, String) {
    let pack_dir = dir.join("pack");
    for (name, text) in gatehouse_pack::example::files() {
        let path = pack_dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::write(
        pack_dir.join("bench-provider.yaml"),
        format!(
            "kind: IdentityProvider\nid: ci\nissuer: {}\naudiences: [gatehouse]\nprincipal: workload\n\
             rules:\n  - match: {{ repository: acme/payments, ref: refs/heads/main }}\n    roles: [submitter]\n    services: [payments]\n",
            issuer.url
        ),
    )
    .unwrap();
    let loaded = gatehouse_pack::load(&pack_dir).unwrap();
    assert!(!loaded.has_errors());
    let store = open(&StoreConfig::Sqlite {
        data_dir: dir.join("data"),
    })
    .await
    .unwrap();
    let now = Timestamp::from_second(NOW).unwrap();
    let issued = IssuedToken::generate("ci-bot", vec!["submitter".into()], now, None).unwrap();
    store.insert_api_token(issued.record()).await.unwrap();
    let clock = Arc::new(FixedClock::new(now));
    let state = prepare(store, clock, PackSource::new(&pack_dir), loaded.pack)
        .await
        .unwrap();
    (state, issued.token().to_owned())
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (state, api_token, rs256, eddsa) = runtime.block_on(async {
        let issuer = start_issuer().await;
        let (state, api_token) = setup(dir.path(), &issuer).await;
        (
            state,
            api_token,
            issuer.token("RS256"),
            issuer.token("EdDSA"),
        )
    });
    let app = Router::new()
        .route("/open", get(|| async { "ok" }))
        .route(
            "/authenticated",
            get(|Authenticated(principal): Authenticated| async move { principal.id }),
        )
        .with_state(state);

    let call = |path: &'static str, bearer: Option<String>| {
        let app = app.clone();
        let runtime = &runtime;
        move || {
            let mut request = Request::get(path);
            if let Some(token) = &bearer {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let response = runtime
                .block_on(app.clone().oneshot(request.body(Body::empty()).unwrap()))
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    // Warm the JWKS cache and the token's last-used time outside the measurement.
    call("/authenticated", Some(rs256.clone()))();
    call("/authenticated", Some(api_token.clone()))();

    let mut group = c.benchmark_group("authentication");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("baseline (no authentication)", |b| {
        b.iter(call("/open", None))
    });
    group.bench_function("API token", |b| {
        b.iter(call("/authenticated", Some(api_token.clone())))
    });
    group.bench_function("JWT RS256", |b| {
        b.iter(call("/authenticated", Some(rs256.clone())))
    });
    group.bench_function("JWT EdDSA", |b| {
        b.iter(call("/authenticated", Some(eddsa.clone())))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
