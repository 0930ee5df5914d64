//! Throughput benchmark behind `scripts/bench-detect`: all loadable SigmaHQ Windows rules
//! over a JSON-lines file of Windows events, on 1 and 2 threads, beside two raw parse
//! ceilings measured in the same run: serde_json parsing every line into a DOM
//! (`serde_json::Value`) and simd-json parsing every line into its (faster) borrowed DOM, no
//! rules. The detection side does what `gatehouse hunt` does with each line
//! ([`Engine::match_json_line`]).
//!
//! Usage: bench_detect RULES_DIR EVENTS.jsonl [MIN_SECONDS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use gatehouse_detect::engine::{Engine, Scratch};
use gatehouse_detect::rule::{LoadOptions, RuleSet};
use serde_json::Value;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One pass of `work` over all lines, split across `threads`; returns (seconds, matches).
fn pass(lines: &[&[u8]], threads: usize, work: &(dyn Fn(&[&[u8]]) -> u64 + Sync)) -> (f64, u64) {
    let start = Instant::now();
    let per = lines.len().div_ceil(threads);
    let matches = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(per.max(1))
            .map(|part| s.spawn(move || work(part)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    (start.elapsed().as_secs_f64(), matches)
}

type Work<'a> = &'a (dyn Fn(&[&[u8]]) -> u64 + Sync);

/// Alternates passes of the workloads until `min` has passed, keeping the median pass of
/// each (and the last pass's match count): alternating exposes all workloads to the same
/// conditions on a shared machine, and the median is robust to passes disturbed by other
/// processes.
fn measure(lines: &[&[u8]], threads: usize, min: Duration, works: &[Work<'_>]) -> (Vec<f64>, u64) {
    let start = Instant::now();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); works.len()];
    let mut matches = 0;
    while times[0].len() < 5 || start.elapsed() < min {
        for (w, t) in works.iter().zip(times.iter_mut()) {
            let (secs, m) = pass(lines, threads, *w);
            t.push(secs);
            matches = matches.max(m);
        }
    }
    let medians = times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect();
    (medians, matches)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rules_dir = args.get(1).expect("RULES_DIR");
    let events_file = args.get(2).expect("EVENTS.jsonl");
    let min = Duration::from_secs_f64(args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5.0));

    let t = Instant::now();
    let mut all = RuleSet::default();
    all.add_path(Path::new(rules_dir), &LoadOptions::default())
        .expect("read rules");
    all.resolve();
    let set = RuleSet {
        rules: all
            .rules
            .iter()
            .filter(|r| r.logsource.product.as_deref() == Some("windows"))
            .cloned()
            .collect(),
        ..RuleSet::default()
    };
    let load = t.elapsed();
    let t = Instant::now();
    let engine = Engine::compile(&set);
    let compile = t.elapsed();
    let stats = engine.plan_stats();

    let data = std::fs::read(events_file).expect("read events");
    let lines: Vec<&[u8]> = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();

    let parse_only = |part: &[&[u8]]| -> u64 {
        let mut n = 0;
        for l in part {
            if serde_json::from_slice::<Value>(l).is_ok() {
                n += 1;
            }
        }
        std::hint::black_box(n);
        0
    };
    let simd_parse_only = |part: &[&[u8]]| -> u64 {
        // simd-json parses in place: each line is copied into a reused buffer first.
        let mut n = 0;
        let mut buf = Vec::new();
        let mut buffers = simd_json::Buffers::default();
        for l in part {
            buf.clear();
            buf.extend_from_slice(l);
            if simd_json::to_borrowed_value_with_buffers(&mut buf, &mut buffers).is_ok() {
                n += 1;
            }
        }
        std::hint::black_box(n);
        0
    };
    let detect = |part: &[&[u8]]| -> u64 {
        let mut scratch = Scratch::default();
        let mut m = 0;
        for l in part {
            // What `gatehouse hunt` does with a JSON line.
            if let Ok(found) = engine.match_json_line(l, &mut scratch) {
                m += found.matches.len() as u64;
            }
        }
        m
    };

    // BENCH_ONLY=parse|simd|detect: single-thread passes of one workload, timed in CPU seconds
    // (steadier than wall time on a shared machine), for comparing engine changes.
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let work: Work<'_> = match only.as_str() {
            "parse" => &parse_only,
            "simd" => &simd_parse_only,
            _ => &detect,
        };
        let cpu = || -> f64 {
            // utime + stime of this process, in clock ticks (100 per second on Linux).
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
            let after = stat.rsplit(')').next().unwrap_or("");
            let f: Vec<f64> = after
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0.0))
                .collect();
            (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
        };
        let (c0, t0) = (cpu(), Instant::now());
        // BENCH_ROUNDS: passes over the file (default 10; fewer under callgrind).
        let rounds = std::env::var("BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(10);
        for _ in 0..rounds {
            std::hint::black_box(pass(&lines, 1, work));
        }
        let n = (lines.len() * rounds) as f64;
        println!(
            "{only}: {:.0} events/s per CPU second, {:.0} events/s wall",
            n / (cpu() - c0),
            n / t0.elapsed().as_secs_f64()
        );
        return;
    }
    println!(
        "rules: {} Windows detection rules loaded of {} documents ({} load problems); load {:.2}s, compile {:.2}s; plan: {} atoms ({} by automaton, {} keyword), {} fields with automata, {} rules without prefilter, keyword raw prefilter: {}",
        set.rules.len(),
        all.total,
        all.problems.len(),
        load.as_secs_f64(),
        compile.as_secs_f64(),
        stats.atoms,
        stats.automaton_atoms,
        stats.keyword_atoms,
        stats.fields_with_automata,
        stats.untriggered_rules,
        stats.keyword_prefilter
    );
    println!(
        "events: {} lines, {:.1} MB",
        lines.len(),
        data.len() as f64 / 1e6
    );
    println!();
    println!(
        "| threads | ceiling: serde_json DOM | ceiling: simd-json borrowed DOM | gatehouse detect (scan + all rules) | share of serde_json ceiling | share of simd-json ceiling | matches |"
    );
    println!("|---|---|---|---|---|---|---|");
    for threads in [1usize, 2] {
        let bytes: f64 = lines.iter().map(|l| l.len() as f64 + 1.0).sum();
        let n = lines.len() as f64;
        let (t, matches) = measure(
            &lines,
            threads,
            min,
            &[&parse_only, &simd_parse_only, &detect],
        );
        let rate = |secs: f64| format!("{:.0} events/s, {:.1} MB/s", n / secs, bytes / secs / 1e6);
        println!(
            "| {threads} | {} | {} | {} | {:.0} % | {:.0} % | {matches} |",
            rate(t[0]),
            rate(t[1]),
            rate(t[2]),
            t[0] / t[2] * 100.0,
            t[1] / t[2] * 100.0,
        );
    }
    println!();
    println!("peak RSS: {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
}
