#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `gatehouse serve --tls-cert --tls-key`: HTTPS with rustls on the real binary, with a
//! self-signed certificate generated here and a client that trusts only it; HSTS only under TLS;
//! unreadable, malformed and mismatched certificate/key files refused with the file named.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::{STARTUP_TIMEOUT, bin, init_pack};

struct Cert {
    cert_pem: String,
    key_pem: String,
}

fn self_signed() -> Cert {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    Cert {
        cert_pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
    }
}

/// A running `serve` child, killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` with TLS and returns the announced `https://` URL.
fn serve_tls(dir: &Path, cert: &Path, key: &Path) -> (Child, String) {
    let mut child = bin()
        .args(["serve", "--pack"])
        .arg(dir.join("pack"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(start) = line.find("https://") {
                let _ = tx.send(line[start..].trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(STARTUP_TIMEOUT)
        .expect("serve did not announce an https:// URL");
    (Child(child), url)
}

fn trusting(cert_pem: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[test]
fn serves_https_with_hsts_to_a_client_trusting_the_certificate() {
    let temp = tempfile::tempdir().unwrap();
    init_pack(&temp.path().join("pack"));
    let cert = self_signed();
    let cert_path = temp.path().join("cert.pem");
    let key_path = temp.path().join("key.pem");
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    let (_child, url) = serve_tls(temp.path(), &cert_path, &key_path);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let client = trusting(&cert.cert_pem);
    let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
    let response = loop {
        match client.get(format!("{url}/readyz")).send() {
            Ok(r) if r.status() == 200 => break r,
            other => {
                assert!(std::time::Instant::now() < deadline, "not ready: {other:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let headers = response.headers();
    assert_eq!(
        headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // The API answers over TLS too (401 without a token, still with HSTS).
    let api = client.get(format!("{url}/api/v1/pack")).send().unwrap();
    assert_eq!(api.status(), 401);
    assert!(api.headers().contains_key("strict-transport-security"));

    // A client that does not trust the certificate is refused by the handshake.
    let stranger = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert!(stranger.get(format!("{url}/healthz")).send().is_err());
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = url.replacen("https://", "http://", 1);
    assert!(stranger.get(format!("{plain}/healthz")).send().is_err());
    // The server still serves after those failed handshakes.
    assert_eq!(
        client
            .get(format!("{url}/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
}

/// Runs `serve` expecting it to refuse to start; returns its stderr.
fn refused(dir: &Path, cert: &Path, key: &Path) -> String {
    let out = bin()
        .args(["serve", "--pack"])
        .arg(dir.join("pack"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve started");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "announced before refusing"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unreadable_malformed_and_mismatched_files_are_named() {
    let temp = tempfile::tempdir().unwrap();
    init_pack(&temp.path().join("pack"));
    let one = self_signed();
    let other = self_signed();
    let cert = temp.path().join("cert.pem");
    let key = temp.path().join("key.pem");
    let other_key = temp.path().join("other-key.pem");
    let garbage = temp.path().join("garbage.pem");
    let missing = temp.path().join("missing.pem");
    std::fs::write(&cert, &one.cert_pem).unwrap();
    std::fs::write(&key, &one.key_pem).unwrap();
    std::fs::write(&other_key, &other.key_pem).unwrap();
    std::fs::write(&garbage, "not a certificate\n").unwrap();

    let err = refused(temp.path(), &missing, &key);
    assert!(
        err.contains("cannot read the TLS certificate") && err.contains("missing.pem"),
        "{err}"
    );
    let err = refused(temp.path(), &cert, &missing);
    assert!(
        err.contains("cannot read the TLS key") && err.contains("missing.pem"),
        "{err}"
    );
    let err = refused(temp.path(), &garbage, &key);
    assert!(
        err.contains("garbage.pem") && err.contains("no PEM certificate"),
        "{err}"
    );
    let err = refused(temp.path(), &cert, &garbage);
    assert!(
        err.contains("garbage.pem") && err.contains("private key"),
        "{err}"
    );
    let err = refused(temp.path(), &cert, &other_key);
    assert!(
        err.contains("does not match") && err.contains("other-key.pem") && err.contains("cert.pem"),
        "{err}"
    );
    // The key's content never reaches the message.
    let secret_line = other.key_pem.lines().nth(1).unwrap();
    assert!(!err.contains(secret_line), "{err}");
}

#[test]
fn a_certificate_without_its_key_is_a_usage_error() {
    let out = bin()
        .args(["serve", "--tls-cert", "cert.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tls-key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
