//! Benchmark: `load` (parse + lint) of a generated pack with 10,000 documents and 50,000
//! traces, the size issue 2 sets as the goal (< 1 s, < 200 MiB peak RSS on 2 cores).
//!
//! Run with `cargo bench -p gatehouse-pack --bench lint` (or `scripts/bench-lint`). It writes
//! the pack to a temporary folder, loads it once to check it is clean, then times
//! `ITERATIONS` loads and prints min / median / max wall time and the process's peak RSS
//! (VmHWM from /proc/self/status, so it includes the generator and the harness: an upper
//! bound for one load). A custom harness rather than criterion because peak memory is half of
//! the figure and criterion does not measure it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

const DOCUMENTS: usize = 10_000;
/// `cargo test --all-targets` also runs this target (without `--bench`): then it is a smoke
/// test on a tenth of the pack, so the test suite stays quick in debug builds.
const SMOKE_DOCUMENTS: usize = 1_000;
const TRACES_PER_DOCUMENT: usize = 5;
const FILES: usize = 100;
const ITERATIONS: usize = 10;

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let size = if quick { SMOKE_DOCUMENTS } else { DOCUMENTS };
    let dir = tempfile::tempdir().unwrap();
    let (documents, traces, bytes) = generate(dir.path(), size);
    // `PACK_BENCH_KEEP=DIR` also writes the pack there, to time `gatehouse lint DIR` itself.
    if let Some(keep) = std::env::var_os("PACK_BENCH_KEEP") {
        std::fs::create_dir_all(&keep).unwrap();
        generate(Path::new(&keep), size);
        println!("pack kept in {}", Path::new(&keep).display());
    }
    println!(
        "pack: {documents} documents, {traces} traces, {FILES} files, {:.1} MiB",
        bytes as f64 / (1024.0 * 1024.0)
    );

    let loaded = gatehouse_pack::load(dir.path()).unwrap();
    assert_eq!(loaded.pack.document_count(), documents);
    assert!(
        loaded.diagnostics.is_empty(),
        "generated pack must lint clean:\n{}",
        gatehouse_pack::render::text(
            &loaded.diagnostics[..5.min(loaded.diagnostics.len())],
            &loaded.sources
        )
    );
    drop(loaded);

    let iterations = if quick { 1 } else { ITERATIONS };
    let mut times: Vec<Duration> = Vec::with_capacity(iterations);
    let cpu_before = cpu_ticks();
    for _ in 0..iterations {
        let started = Instant::now();
        let loaded = gatehouse_pack::load(dir.path()).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(loaded.pack.document_count(), documents);
        drop(std::hint::black_box(loaded));
        times.push(elapsed);
    }
    let cpu_after = cpu_ticks();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "load+lint: min {:.0} ms, median {:.0} ms, max {:.0} ms over {iterations} runs",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    // CPU time is less disturbed than wall time when other work shares the 2 cores.
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let per_run = (after - before) as f64 * 10.0 / iterations as f64;
        println!("cpu (user+sys, all threads): {per_run:.0} ms per run");
    }
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
}

/// utime + stime of this process in clock ticks (100 per second on Linux).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Writes a clean pack cycling through the document kinds; every document traces to five
/// earlier ones (or to external policy components at the start), so the trace graph is a DAG
/// with 50,000 edges and every reference resolves.
fn generate(dir: &Path, documents: usize) -> (usize, usize, usize) {
    let per_file = documents / FILES;
    let mut traces = 0;
    let mut bytes = 0;
    let mut ids: Vec<String> = Vec::with_capacity(documents);
    for file in 0..FILES {
        let mut text = String::new();
        for n in 0..per_file {
            let i = file * per_file + n;
            let id = format!("doc-{i:05}");
            if n > 0 {
                text.push_str("---\n");
            }
            document(&mut text, i, &id);
            text.push_str("traces:\n");
            for t in 0..TRACES_PER_DOCUMENT {
                let target = if i > t * 7 + 1 {
                    ids[(i - 1 - t * 7) % i].clone()
                } else {
                    format!("POL-2026-001.component.5-{t}")
                };
                let rel = [
                    "derives_from",
                    "validates",
                    "refines",
                    "implements",
                    "validates",
                ][t];
                let _ = writeln!(
                    text,
                    "  - {{ to: {target}, rel: {rel}, why: generated link {t} }}"
                );
                traces += 1;
            }
            ids.push(id);
        }
        bytes += text.len();
        std::fs::write(dir.join(format!("part-{file:03}.yaml")), text).unwrap();
    }
    (ids.len(), traces, bytes)
}

/// Kinds cycle with the index; references point at the nearest earlier document of the
/// needed kind (index arithmetic on the cycle), so they always resolve.
fn document(text: &mut String, i: usize, id: &str) {
    // Index of the latest document of kind slot `k` at or before `i` (the first 10 documents
    // cover every slot, and slots 1+ reference only after i >= 10).
    let latest = |k: usize| -> String {
        let base = i - i % 10;
        let j = if base + k <= i {
            base + k
        } else {
            base + k - 10
        };
        format!("doc-{j:05}")
    };
    let slot = if i < 10 {
        [0, 1, 0, 0, 0, 0, 0, 0, 0, 0][i]
    } else {
        i % 10
    };
    match slot {
        0 => {
            let _ = writeln!(text, "kind: Role\nid: {id}\ntitle: Role {i}");
        }
        1 => {
            let _ = writeln!(
                text,
                "kind: Person\nid: {id}\nname: Person {i}\nemail: p{i}@example.com\nroles: [{}]\ntime_zone: Europe/Berlin",
                latest(0)
            );
        }
        2 => {
            let _ = writeln!(
                text,
                "kind: Team\nid: {id}\nmembers: [{}]\nlead: {}",
                latest(1),
                latest(1)
            );
        }
        3 => {
            let _ = writeln!(
                text,
                "kind: Control\nid: {id}\ntitle: Control {i}\nstandards: [NIST SP 800-53 SI-4]\nowner: {}",
                latest(2)
            );
        }
        4 => {
            let _ = writeln!(
                text,
                "kind: Alert\nid: {id}\nseverity: High\ntrigger:\n  sigma_rule: rule-{i}\nrouting:\n  notify: [{}]\nsla: {{ acknowledge: 5m, initial_response: 15m, resolution: 1h }}\nauto_remediation: {{ mode: none }}\ncontrols: [{}]",
                latest(2),
                latest(3)
            );
        }
        5 => {
            let _ = writeln!(
                text,
                "kind: Runbook\nid: {id}\nfrequency: {{ cron: \"0 9 15 1,4,7,10 *\", time_zone: UTC }}\nowner: {}\nsteps:\n  - {{ title: Step one, command: echo one }}\n  - {{ title: Step two }}\nexpected_duration: 4h\ncompletion_record: docs/records/{i}.md\nescalation:\n  - {{ when: blocked, to: [{}] }}",
                latest(2),
                latest(0)
            );
        }
        6 => {
            let _ = writeln!(
                text,
                "kind: Kpi\nid: {id}\ncalculation: a / b * 100\ndata_source: gatehouse\ntarget: 100\ndirection: higher_is_better\nthresholds: {{ green: 99, yellow: 95 }}\nfrequency: daily\naudience: [{}]",
                latest(2)
            );
        }
        7 => {
            let _ = writeln!(
                text,
                "kind: Improvement\nid: {id}\nrisk_reduction: 3\neffort: 2\nstatus: backlog\nowner: {}\ndue: 2026-06-30",
                latest(2)
            );
        }
        8 => {
            let _ = writeln!(
                text,
                "kind: Playbook\nid: {id}\ntrigger_conditions: [something happened]\nalerts: [{}]\nseverity_classification:\n  - {{ severity: High, when: confirmed }}\nphases:\n  - {{ name: Respond, starts_at: 0, ends_at: 15m, steps: [{{ title: Contain }}] }}\n  - {{ name: Recover, starts_at: 15m, ends_at: 4h, steps: [{{ title: Restore }}] }}",
                latest(4)
            );
        }
        _ => {
            let _ = writeln!(
                text,
                "kind: Maintenance\nid: {id}\nschedule: {{ rrule: \"FREQ=MONTHLY;BYDAY=2TU\" }}\nautomation: manual\nowner: {}\nprocedure: [{{ title: Patch }}]\nvalidation: [healthy]\nrollback: restore snapshot\ndowntime: 30m",
                latest(2)
            );
        }
    }
}
