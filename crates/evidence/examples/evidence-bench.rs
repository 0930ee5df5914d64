//! Benchmark driver for `scripts/bench-evidence`: generates large evidence files and measures
//! one parse per process, so peak RSS (VmHWM) belongs to that parse alone.
//!
//! Usage:
//!   evidence-bench generate-sarif PATH TARGET_BYTES
//!   evidence-bench generate-sarif-unique-ids PATH TARGET_BYTES   (every result its own rule id)
//!   evidence-bench generate-cyclonedx PATH COMPONENTS
//!   evidence-bench parse KIND PATH          (gatehouse-evidence streaming parser)
//!   evidence-bench value PATH               (serde_json::from_reader into serde_json::Value)
//!
//! `parse` and `value` print one line: `mode bytes seconds MB/s peak_rss_kib summary`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use gatehouse_evidence::{EvidenceKind, Facts, Limits};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["generate-sarif", path, bytes] => bytes
            .parse()
            .map_err(|e| format!("{e}"))
            .and_then(|target| generate_sarif(path, target, false).map_err(|e| e.to_string())),
        ["generate-sarif-unique-ids", path, bytes] => bytes
            .parse()
            .map_err(|e| format!("{e}"))
            .and_then(|target| generate_sarif(path, target, true).map_err(|e| e.to_string())),
        ["generate-cyclonedx", path, components] => components
            .parse()
            .map_err(|e| format!("{e}"))
            .and_then(|count| generate_cyclonedx(path, count).map_err(|e| e.to_string())),
        ["parse", kind, path] => parse(kind, path),
        ["value", path] => value(path),
        _ => Err("usage: evidence-bench generate-sarif PATH BYTES | generate-cyclonedx PATH N | parse KIND PATH | value PATH".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Peak resident set size of this process in KiB (Linux VmHWM).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

fn report(mode: &str, bytes: u64, seconds: f64, summary: &str) {
    let mb_per_s = bytes as f64 / 1_000_000.0 / seconds;
    println!(
        "{mode} {bytes} {seconds:.3} {mb_per_s:.1} {} {summary}",
        peak_rss_kib()
    );
}

fn parse(kind: &str, path: &str) -> Result<(), String> {
    let kind: EvidenceKind = kind.parse().map_err(|e| format!("{e}"))?;
    let file = File::open(path).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let parsed =
        gatehouse_evidence::parse(&kind, file, &Limits::default()).map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let summary = match &parsed.facts {
        Facts::Sarif(f) => format!(
            "results={} error={} warning={} note={} none={} suppressed={}",
            f.total_results,
            f.by_level.error,
            f.by_level.warning,
            f.by_level.note,
            f.by_level.none,
            f.suppressed
        ),
        Facts::CycloneDx(f) => format!(
            "components={} vulnerabilities={}",
            f.components, f.vulnerabilities
        ),
        _ => String::new(),
    };
    report("gatehouse-evidence", parsed.size_bytes, seconds, &summary);
    Ok(())
}

fn value(path: &str) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let bytes = file.metadata().map_err(|e| e.to_string())?.len();
    let start = Instant::now();
    let value: serde_json::Value =
        serde_json::from_reader(BufReader::with_capacity(256 * 1024, file))
            .map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let runs = value["runs"].as_array().map_or(0, Vec::len);
    let components = value["components"].as_array().map_or(0, Vec::len);
    report(
        "serde_json::Value",
        bytes,
        seconds,
        &format!("runs={runs} top_level_components={components}"),
    );
    // Dropping a multi-gigabyte Value takes seconds and is not part of the parse.
    std::mem::forget(value);
    Ok(())
}

/// A SARIF log shaped like CodeQL/Semgrep output: 200 rules with default levels and
/// security-severity, results with locations, code flows omitted, fingerprints, some without
/// an explicit level (so the defaulting path is exercised), some suppressed.
///
/// With `unique_ids`, every result names its own rule id (no index): the worst case for the
/// parser's grouping of results, used to check that memory stays bounded.
fn generate_sarif(path: &str, target_bytes: u64, unique_ids: bool) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let rules = 200;
    write!(
        out,
        r#"{{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":"BenchScanner","version":"1.0.0","rules":["#
    )?;
    for rule in 0..rules {
        let level = ["error", "warning", "note"][rule % 3];
        if rule > 0 {
            out.write_all(b",")?;
        }
        write!(
            out,
            r#"{{"id":"BENCH{rule:04}","name":"BenchRule{rule}","shortDescription":{{"text":"Benchmark rule {rule}"}},"defaultConfiguration":{{"level":"{level}"}},"properties":{{"security-severity":"{}.{}","tags":["security","external/cwe/cwe-{rule}"]}}}}"#,
            rule % 10,
            rule % 7
        )?;
    }
    out.write_all(br#"]}},"results":["#)?;
    let mut written: u64 = 0;
    let mut index: u64 = 0;
    while written < target_bytes {
        let rule = index % rules as u64;
        let level = match index % 4 {
            0 => r#""level":"error","#,
            1 => r#""level":"warning","#,
            2 => r#""level":"note","#,
            _ => "",
        };
        let suppression = if index.is_multiple_of(50) {
            r#","suppressions":[{"kind":"inSource","status":"accepted"}]"#
        } else {
            ""
        };
        let record = format!(
            r#"{sep}{{{rule_ref},{level}"message":{{"text":"Potential issue number {index} found in generated source file; user-controlled data reaches a sensitive sink without sanitisation."}},"locations":[{{"physicalLocation":{{"artifactLocation":{{"uri":"src/module_{m}/file_{index}.rs","uriBaseId":"%SRCROOT%"}},"region":{{"startLine":{line},"startColumn":5,"endLine":{end},"endColumn":42,"snippet":{{"text":"let value = request.param(\"input\"); sink(value);"}}}}}}}}],"partialFingerprints":{{"primaryLocationLineHash":"{hash:016x}:1","primaryLocationStartColumnFingerprint":"4"}},"baselineState":"new"{suppression}}}"#,
            sep = if index == 0 { "" } else { "," },
            rule_ref = if unique_ids {
                format!(r#""ruleId":"GENERATED/{index}""#)
            } else {
                format!(r#""ruleId":"BENCH{rule:04}","ruleIndex":{rule}"#)
            },
            m = index % 97,
            line = index % 5000 + 1,
            end = index % 5000 + 3,
            hash = index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        out.write_all(record.as_bytes())?;
        written += record.len() as u64;
        index += 1;
    }
    out.write_all(b"]}]}\n")?;
    out.flush()?;
    Ok(())
}

/// A CycloneDX 1.6 BOM shaped like Syft output: components with purls, licenses, hashes and
/// properties; every tenth has two nested components; a few hundred vulnerabilities.
fn generate_cyclonedx(path: &str, components: u64) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    write!(
        out,
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","serialNumber":"urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79","version":1,"metadata":{{"timestamp":"2026-11-27T10:00:00Z","component":{{"type":"container","name":"bench-image"}}}},"components":["#
    )?;
    let component = |i: u64, nested: &str| {
        format!(
            r#"{{"bom-ref":"pkg:npm/bench-{i}@1.{m}.{p}","type":"library","name":"bench-{i}","version":"1.{m}.{p}","purl":"pkg:npm/bench-{i}@1.{m}.{p}","licenses":[{{"license":{{"id":"MIT"}}}}],"hashes":[{{"alg":"SHA-256","content":"{h:016x}{h:016x}{h:016x}{h:016x}"}}],"properties":[{{"name":"syft:package:foundBy","value":"javascript-package-cataloger"}},{{"name":"syft:location:0:path","value":"/usr/lib/node_modules/bench-{i}/package.json"}}]{nested}}}"#,
            m = i % 20,
            p = i % 7,
            h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        )
    };
    let mut emitted = 0;
    let mut i: u64 = 0;
    while emitted < components {
        if emitted > 0 {
            out.write_all(b",")?;
        }
        if i.is_multiple_of(10) && emitted + 3 <= components {
            let nested = format!(
                r#","components":[{},{}]"#,
                component(i + 1, ""),
                component(i + 2, "")
            );
            out.write_all(component(i, &nested).as_bytes())?;
            emitted += 3;
            i += 3;
        } else {
            out.write_all(component(i, "").as_bytes())?;
            emitted += 1;
            i += 1;
        }
    }
    out.write_all(br#"],"vulnerabilities":["#)?;
    for v in 0..500u64 {
        let severity = ["critical", "high", "medium", "low"][(v % 4) as usize];
        write!(
            out,
            r#"{}{{"id":"CVE-2026-{v:05}","ratings":[{{"severity":"{severity}","method":"CVSSv31","score":7.5}}],"affects":[{{"ref":"pkg:npm/bench-{v}@1.0.0"}}],"analysis":{{"state":"in_triage"}}}}"#,
            if v == 0 { "" } else { "," }
        )?;
    }
    out.write_all(b"]}\n")?;
    out.flush()?;
    Ok(())
}
