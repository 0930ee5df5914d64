//! Helpers for end-to-end tests that run the real `gatehouse` binary.
//!
//! Servers are started on `127.0.0.1:0`; the test reads the URL the binary prints on stdout and
//! then polls `/readyz` until it answers 200, so no test depends on a fixed sleep or a fixed
//! port.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to print its URL and become ready (the first run of a test
/// binary on a loaded 2-core machine can be slow).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

pub fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    // Keep the environment from leaking a developer's settings into the tests.
    for var in [
        "GATEHOUSE_SERVER",
        "GATEHOUSE_TOKEN",
        "GATEHOUSE_PACK",
        "GATEHOUSE_DATA_DIR",
        "GATEHOUSE_DATABASE_URL",
        "GATEHOUSE_LISTEN",
        "GATEHOUSE_KEYS",
        "GATEHOUSE_KEY_FILE",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command
}

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    let output = bin().args(args).output().expect("run gatehouse");
    Output {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

/// Writes the example pack into `dir` with `gatehouse init`.
pub fn init_pack(dir: &Path) {
    let out = run(&["init", dir.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "init failed: {out:?}");
}

/// Creates an admin token in the store under `data_dir` with `gatehouse admin bootstrap`.
pub fn bootstrap_token(data_dir: &Path) -> String {
    let out = run(&[
        "admin",
        "bootstrap",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 0, "bootstrap failed: {out:?}");
    let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    value["token"].as_str().unwrap().to_owned()
}

/// An admin token for `principal` (`admin bootstrap --principal P --force`): the gate then
/// takes the caller's gate roles from the pack's `Person` of that id.
pub fn token_for(data_dir: &Path, principal: &str) -> String {
    let out = run(&[
        "admin",
        "bootstrap",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--principal",
        principal,
        "--force",
        "--format",
        "json",
    ]);
    assert_eq!(out.code(), 0, "bootstrap failed: {out:?}");
    let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    value["token"].as_str().unwrap().to_owned()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A running `gatehouse serve` (or `demo`) process, killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// The first stdout line, the announcement, and any JSON the command printed.
    pub stdout_lines: Arc<Mutex<Vec<String>>>,
    pub stderr_lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `gatehouse <args> --listen 127.0.0.1:0` and waits until `/readyz` answers 200.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    /// [`Server::start`] with extra environment variables (e.g. `RUST_LOG`).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = bin()
            .args(args)
            .envs(env.iter().copied())
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gatehouse");
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let (url_tx, url_rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::clone(&stdout_lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = find_url(&line) {
                    let _ = url_tx.send(url);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::clone(&stderr_lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let url = match url_rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "server did not announce its URL (exit {status:?}); stderr:\n{}",
                    stderr_lines.lock().unwrap().join("\n")
                );
            }
        };
        let server = Server {
            child,
            url,
            stdout_lines,
            stderr_lines,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let client = http();
        loop {
            if let Ok(response) = client.get(self.url("/readyz")).send()
                && response.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server at {} never became ready; stderr:\n{}",
                self.url,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    pub fn stderr(&self) -> String {
        self.stderr_lines.lock().unwrap().join("\n")
    }

    pub fn stdout(&self) -> String {
        self.stdout_lines.lock().unwrap().join("\n")
    }

    /// Waits for the process to exit, failing the test after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_url(line: &str) -> Option<String> {
    let start = line.find("http://")?;
    let rest = &line[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches('/').to_owned())
}

/// `gatehouse demo --format json` on `data`, and the JSON banner it prints (url, admin
/// token, the pack people's tokens).
pub fn start_demo(data: &Path) -> (Server, serde_json::Value) {
    let server = Server::start(&[
        "demo",
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let banner = serde_json::from_str(
        server
            .stdout_lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.starts_with('{'))
            .unwrap(),
    )
    .unwrap();
    (server, banner)
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
