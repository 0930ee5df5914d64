//! The HTTP client used by the client commands (`release …`, `pack status`, `pack reload`) to
//! talk to a running `gatehouse serve`, e.g. from a CI pipeline.
//!
//! The server and credential come from `--server`/`GATEHOUSE_SERVER` and
//! `--token`/`GATEHOUSE_TOKEN`. The token is never echoed: clap hides the environment value in
//! `--help`, and no error message includes it.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where the server is and how to authenticate to it; shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Base URL of the gatehouse server.
    #[arg(
        long,
        env = "GATEHOUSE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// API token (sent as `Authorization: Bearer …`).
    #[arg(long, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A configured client for one server.
pub struct ApiClient {
    base: Url,
    /// Wiped from memory when the client is dropped.
    token: Option<zeroize::Zeroizing<String>>,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(args: &ServerArgs) -> anyhow::Result<Self> {
        let mut base = Url::parse(&args.server).with_context(|| {
            format!("invalid --server / GATEHOUSE_SERVER URL {:?}", args.server)
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            bail!(
                "invalid --server / GATEHOUSE_SERVER URL {:?}: the scheme must be http or https",
                args.server
            );
        }
        // Url::join treats a base without a trailing slash as a file, dropping its last segment.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("gatehouse-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            base,
            token: args
                .token
                .clone()
                .filter(|t| !t.is_empty())
                .map(zeroize::Zeroizing::new),
            http,
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send::<(), T>(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// Sends a request and decodes a 2xx JSON answer; any other answer becomes an error that
    /// carries the server's own message.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<T> {
        let (status, bytes) = self.send_raw(method, path, body).await?;
        if !status.is_success() {
            bail!(describe_failure(status, &bytes));
        }
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "the server at {} sent an answer to {path} that is not the expected JSON",
                self.base
            )
        })
    }

    /// Sends a request and returns status and body, whatever the status.
    pub async fn send_raw<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .with_context(|| format!("cannot build a URL from {} and {path}", self.base))?;
        let mut request = self.http.request(method, url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.as_str());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| {
            anyhow!(
                "cannot reach the gatehouse server at {}: {} (set --server or GATEHOUSE_SERVER)",
                self.base,
                root_cause(&err)
            )
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer to {url}"))?;
        Ok((status, bytes.to_vec()))
    }
}

impl ApiClient {
    /// POSTs a raw body (e.g. NDJSON for `ingest`) and returns status and answer, whatever the
    /// status.
    pub async fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        content_encoding: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .with_context(|| format!("cannot build a URL from {} and {path}", self.base))?;
        let mut request = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(encoding) = content_encoding {
            request = request.header(reqwest::header::CONTENT_ENCODING, encoding);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.as_str());
        }
        let response = request.send().await.map_err(|err| {
            anyhow!(
                "cannot reach the gatehouse server at {}: {} (set --server or GATEHOUSE_SERVER)",
                self.base,
                root_cause(&err)
            )
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer to {url}"))?;
        Ok((status, bytes.to_vec()))
    }
}

/// Turns a non-2xx answer into one line: status, the server's message and the field at fault.
pub fn describe_failure(status: StatusCode, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(500).collect());
    let mut line = format!("server answered {status}: {message}");
    if let Some(field) = error.and_then(|e| e.get("field")).and_then(|f| f.as_str()) {
        line.push_str(&format!(" (field: {field})"));
    }
    if status == StatusCode::UNAUTHORIZED {
        line.push_str(" — pass an API token with --token or GATEHOUSE_TOKEN");
    }
    line
}

/// The innermost error, which for connection failures says what actually happened
/// ("Connection refused") instead of reqwest's generic outer message.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_description_names_status_message_and_field() {
        let body = br#"{"error":{"code":"invalid_field","message":"must not be empty","field":"service"}}"#;
        let line = describe_failure(StatusCode::BAD_REQUEST, body);
        assert_eq!(
            line,
            "server answered 400 Bad Request: must not be empty (field: service)"
        );
    }

    #[test]
    fn failure_description_falls_back_to_raw_body() {
        let line = describe_failure(StatusCode::BAD_GATEWAY, b"upstream down");
        assert_eq!(line, "server answered 502 Bad Gateway: upstream down");
    }

    #[test]
    fn base_url_keeps_its_path_prefix() {
        let client = ApiClient::new(&ServerArgs {
            server: "http://example.invalid/gate".into(),
            token: None,
        })
        .unwrap();
        assert_eq!(
            client.base.join("api/v1/pack").unwrap().as_str(),
            "http://example.invalid/gate/api/v1/pack"
        );
    }

    #[test]
    fn non_http_scheme_is_refused() {
        let err = ApiClient::new(&ServerArgs {
            server: "ftp://example.invalid".into(),
            token: None,
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("http or https"));
    }
}
