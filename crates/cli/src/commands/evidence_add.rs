//! `gatehouse evidence add REL --kind KIND FILE`: attach an evidence file to a release on a
//! running server.
//!
//! The file is streamed from disk (never read whole into memory here), with a progress bar
//! when stderr is a terminal and nothing extra in a CI log. The server parses it as `KIND`
//! before storing anything, so a wrong kind or a broken file is refused with the location of
//! the problem and leaves no trace but an audit entry; re-uploading the same bytes is
//! idempotent.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::TryStreamExt as _;
use gatehouse_evidence::EvidenceKind;
use gatehouse_server::routes::gate::EvidenceReceipt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Url;

use crate::client::{ServerArgs, describe_failure};
use crate::output::{OutputFormat, print_json};

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Release id (UUID).
    pub release: String,
    /// Evidence kind: sarif, cyclonedx, spdx, openvex, junit, in-toto, threat-model,
    /// code-review, ci-run, rollback-plan, monitoring-plan.
    #[arg(long, value_parser = parse_kind)]
    pub kind: EvidenceKind,
    /// The evidence file.
    pub file: PathBuf,
    /// Id of an earlier item of the same kind this file replaces (e.g. a re-run scan).
    #[arg(long)]
    pub supersedes: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

fn parse_kind(name: &str) -> Result<EvidenceKind, String> {
    name.parse::<EvidenceKind>().map_err(|err| err.to_string())
}

pub fn run(args: AddArgs) -> anyhow::Result<ExitCode> {
    crate::runtime::block_on(add(args))?
}

/// The upload URL: `{server}/api/v1/releases/{release}/evidence?kind=…[&supersedes=…]`.
fn upload_url(args: &AddArgs) -> anyhow::Result<Url> {
    if args.release.is_empty()
        || !args
            .release
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        bail!("{:?} is not a release id (a UUID)", args.release);
    }
    let mut url = Url::parse(&args.server.server).with_context(|| {
        format!(
            "invalid --server / GATEHOUSE_SERVER URL {:?}",
            args.server.server
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!(
            "invalid --server / GATEHOUSE_SERVER URL {:?}: the scheme must be http or https",
            args.server.server
        );
    }
    let base_path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!(
        "{base_path}/api/v1/releases/{}/evidence",
        args.release
    ));
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("kind", &args.kind.to_string());
        if let Some(old) = &args.supersedes {
            query.append_pair("supersedes", old);
        }
    }
    Ok(url)
}

async fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let url = upload_url(&args)?;
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file
        .metadata()
        .await
        .with_context(|| format!("cannot read the size of {}", args.file.display()))?
        .len();

    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(size);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let counter = bar.clone();
    let stream = tokio_util::io::ReaderStream::new(file).inspect_ok(move |chunk| {
        counter.inc(chunk.len() as u64);
    });

    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("gatehouse-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let mut request = http
        .post(url.clone())
        .header(reqwest::header::CONTENT_LENGTH, size)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream));
    if let Some(token) = args.server.token.as_deref().filter(|t| !t.is_empty()) {
        request = request.bearer_auth(token);
    }
    let response = request.send().await;
    bar.finish_and_clear();
    let response = response.map_err(|err| {
        anyhow!(
            "cannot upload {} to the gatehouse server at {}: {err} (set --server or \
             GATEHOUSE_SERVER)",
            args.file.display(),
            args.server.server
        )
    })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer to {url}"))?;
    if !status.is_success() {
        bail!(
            "{} was not attached: {}",
            args.file.display(),
            describe_failure(status, &body)
        );
    }
    let receipt: EvidenceReceipt = serde_json::from_slice(&body)
        .context("the server's answer to the upload is not the expected JSON")?;
    match args.format {
        OutputFormat::Json => print_json(&receipt)?,
        OutputFormat::Text => {
            let what = if receipt.status == "already_attached" {
                "already attached as"
            } else {
                "attached as"
            };
            println!(
                "{} {what} {} ({} sha256:{}, {} bytes, revision {})",
                args.file.display(),
                receipt.id,
                receipt.kind,
                receipt.sha256,
                receipt.size,
                receipt.revision
            );
        }
    }
    Ok(super::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(server: &str, release: &str) -> AddArgs {
        AddArgs {
            release: release.into(),
            kind: EvidenceKind::Sarif,
            file: PathBuf::from("scan.sarif"),
            supersedes: Some("ev-1".into()),
            format: OutputFormat::Text,
            server: ServerArgs {
                server: server.into(),
                token: None,
            },
        }
    }

    #[test]
    fn upload_url_keeps_the_server_prefix_and_encodes_the_query() {
        let url = upload_url(&args("http://gate.example/prefix/", "0195-ab")).unwrap();
        assert_eq!(
            url.as_str(),
            "http://gate.example/prefix/api/v1/releases/0195-ab/evidence?kind=sarif&supersedes=ev-1"
        );
    }

    #[test]
    fn release_ids_with_path_characters_are_refused() {
        assert!(upload_url(&args("http://gate.example", "../audit")).is_err());
    }
}
