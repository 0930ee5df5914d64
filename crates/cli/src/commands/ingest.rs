//! `gatehouse ingest FILE|-`: sends NDJSON events to a running server.
//!
//! The file is read line by line and sent in bounded batches (`--batch-bytes`), so a file of
//! any size streams through constant memory and no request exceeds the server's body limit.
//! Each batch is acknowledged only after the server committed it. Rejected lines come back
//! with their line number inside the batch; this command maps them back to the line number
//! in the file. A single line longer than a batch is skipped here (never buffered whole) and
//! reported the same way.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_server::routes::events::{IngestResult, RejectedLine};
use serde::Serialize;

use crate::client::{ApiClient, ServerArgs, describe_failure};
use crate::output::{OutputFormat, print_json};

/// Arguments of `gatehouse ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// NDJSON file (one JSON object per line), or `-` for standard input.
    pub file: PathBuf,
    /// Event source name (retention is per source).
    #[arg(long, default_value = "default")]
    pub source: String,
    /// Largest batch sent in one request, in bytes before compression.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub batch_bytes: usize,
    /// Compress each batch with gzip (`Content-Encoding: gzip`).
    #[arg(long)]
    pub gzip: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// What `--format json` prints.
#[derive(Debug, Serialize)]
struct Summary {
    file: String,
    source: String,
    accepted: u64,
    rejected: u64,
    batches: u64,
    /// Rejected lines with their line number in the file (the first 100 per batch).
    rejected_lines: Vec<RejectedLine>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.batch_bytes == 0 {
        bail!("--batch-bytes must be at least 1");
    }
    let label = args.file.display().to_string();
    let reader: Box<dyn BufRead + Send> = if label == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = File::open(&args.file).with_context(|| format!("cannot open {label}"))?;
        Box::new(BufReader::with_capacity(256 * 1024, file))
    };
    let client = ApiClient::new(&args.server)?;
    let summary = crate::runtime::block_on(send_all(&client, &args, &label, reader))??;
    match args.format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Text => {
            for r in &summary.rejected_lines {
                println!("{label}:{}: {}", r.line, r.reason);
            }
            println!(
                "{}: {} event{} stored (source {}), {} line{} rejected, {} batch{}",
                label,
                summary.accepted,
                if summary.accepted == 1 { "" } else { "s" },
                summary.source,
                summary.rejected,
                if summary.rejected == 1 { "" } else { "s" },
                summary.batches,
                if summary.batches == 1 { "" } else { "es" },
            );
        }
    }
    Ok(if summary.rejected > 0 {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_OK
    })
}

async fn send_all(
    client: &ApiClient,
    args: &Args,
    label: &str,
    mut reader: Box<dyn BufRead + Send>,
) -> anyhow::Result<Summary> {
    let mut summary = Summary {
        file: label.to_owned(),
        source: args.source.clone(),
        accepted: 0,
        rejected: 0,
        batches: 0,
        rejected_lines: Vec::new(),
    };
    let mut batch: Vec<u8> = Vec::with_capacity(args.batch_bytes.min(16 * 1024 * 1024));
    // File line number of the batch's first line.
    let mut batch_first_line: u64 = 1;
    let mut line_number: u64 = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = read_line_bounded(&mut reader, &mut line, args.batch_bytes)
            .with_context(|| format!("cannot read {label}"))?;
        let Some(complete) = read else { break };
        line_number += 1;
        if !complete {
            summary.rejected += 1;
            summary.rejected_lines.push(RejectedLine {
                line: line_number,
                reason: format!(
                    "line longer than --batch-bytes ({} bytes); skipped",
                    args.batch_bytes
                ),
            });
            // Keep numbering aligned: the batch carries an empty line in its place.
            if batch.is_empty() {
                batch_first_line = line_number;
            }
            batch.push(b'\n');
            continue;
        }
        if !batch.is_empty() && batch.len() + line.len() + 1 > args.batch_bytes {
            send_batch(client, args, &batch, batch_first_line, &mut summary).await?;
            batch.clear();
        }
        if batch.is_empty() {
            batch_first_line = line_number;
        }
        batch.extend_from_slice(&line);
        batch.push(b'\n');
    }
    if batch.iter().any(|b| !b.is_ascii_whitespace()) {
        send_batch(client, args, &batch, batch_first_line, &mut summary).await?;
    }
    Ok(summary)
}

/// Reads one line without its newline into `out`, holding at most `limit` bytes of it.
/// `Ok(None)` at end of input, `Ok(Some(false))` when the line was longer than `limit` (the
/// rest of it is consumed and discarded).
fn read_line_bounded(
    reader: &mut dyn BufRead,
    out: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Option<bool>> {
    let mut seen_any = false;
    let mut too_long = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(if seen_any { Some(!too_long) } else { None });
        }
        seen_any = true;
        let (chunk, done) = match memchr_newline(available) {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            if out.len() + chunk.len() > limit {
                too_long = true;
                out.clear();
            } else {
                out.extend_from_slice(chunk);
            }
        }
        let consumed = done.unwrap_or(available.len());
        reader.consume(consumed);
        if done.is_some() {
            if out.last() == Some(&b'\r') {
                out.pop();
            }
            return Ok(Some(!too_long));
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

async fn send_batch(
    client: &ApiClient,
    args: &Args,
    batch: &[u8],
    first_line: u64,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let (body, encoding) = if args.gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(batch)?;
        (encoder.finish()?, Some("gzip"))
    } else {
        (batch.to_vec(), None)
    };
    let path = format!("api/v1/events?source={}", percent_encode(&args.source));
    let (status, answer) = client
        .post_bytes(&path, "application/x-ndjson", encoding, body)
        .await?;
    if !status.is_success() {
        bail!(
            "{} (lines {first_line}… of {}; {} events before them were stored)",
            describe_failure(status, &answer),
            summary.file,
            summary.accepted
        );
    }
    let result: IngestResult = serde_json::from_slice(&answer)
        .context("the server's answer to an ingest request is not the expected JSON")?;
    summary.batches += 1;
    summary.accepted += result.accepted;
    summary.rejected += result.rejected;
    summary
        .rejected_lines
        .extend(result.rejected_lines.into_iter().map(|r| RejectedLine {
            line: first_line + r.line - 1,
            reason: r.reason,
        }));
    Ok(())
}

/// Percent-encodes a query value (source names are restricted, but say so to the server,
/// not to the URL parser).
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every line of `input` through the bounded reader (`None` for an overlong line).
#[cfg(test)]
fn lines_of(input: &[u8], limit: usize) -> Vec<Option<Vec<u8>>> {
    let mut reader = BufReader::with_capacity(4, input);
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line_bounded(&mut reader, &mut line, limit).unwrap() {
            None => return out,
            Some(true) => out.push(Some(line.clone())),
            Some(false) => out.push(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_overlong_ones_skipped_without_buffering() {
        let input = b"{\"a\":1}\r\n0123456789abcdef\n\nlast-without-newline";
        let lines = lines_of(input, 10);
        assert_eq!(
            lines,
            vec![
                Some(b"{\"a\":1}".to_vec()),
                None,
                Some(Vec::new()),
                None, // 20 bytes > 10
            ]
        );
        let lines = lines_of(b"ok\nend", 10);
        assert_eq!(lines, vec![Some(b"ok".to_vec()), Some(b"end".to_vec())]);
    }

    #[test]
    fn source_is_encoded() {
        assert_eq!(percent_encode("a b&c"), "a%20b%26c");
    }
}
