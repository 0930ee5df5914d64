//! Response hardening: security headers on every response, and the client address of each
//! connection (plain or TLS) for security events.
//!
//! The API answers JSON and the coming web UI serves its own assets, so the Content Security
//! Policy allows only same-origin resources and no framing at all (`frame-ancestors 'none'`,
//! plus `X-Frame-Options` for older browsers); `nosniff` stops a browser from running an
//! uploaded evidence file as script; no referrer leaks release ids to other sites. HSTS is sent
//! only when the server itself terminates TLS: over plain HTTP it would be ignored at best, and
//! behind a proxy it is the proxy's decision.

use std::net::SocketAddr;

use axum::extract::connect_info::Connected;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;

use crate::tls::TlsListener;

/// `Content-Security-Policy` of every response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// `Strict-Transport-Security` under TLS: one year, subdomains included.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000; includeSubDomains";

/// Whether the server terminates TLS itself (middleware state).
#[derive(Debug, Clone, Copy)]
pub struct Tls(pub bool);

/// Adds the security headers to every response (handlers never set these).
pub async fn security_headers(
    State(Tls(tls)): State<Tls>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    response
}

/// The peer address of a connection, for `ConnectInfo` over plain TCP and TLS alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}
