//! SigmaHQ regression cases through the library alone (the engine `gatehouse hunt` uses),
//! without building the CLI: for each `regression/**/info.yml`, its rule is loaded and its
//! event files hunted; the case passes when a detection of that rule comes out.
//! `scripts/sigma-conformance` does the same through the `gatehouse` binary.
//!
//! Usage: sigma_regression SIGMA_DIR (containing rules/ and regression/)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gatehouse_detect::engine::Engine;
use gatehouse_detect::hunt::{BadRecord, Detection, HuntOptions, HuntSink, hunt_file};
use gatehouse_detect::rule::{LoadOptions, RuleSet};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[derive(Default)]
struct Sink(Vec<usize>, Vec<String>);
impl HuntSink for Sink {
    fn detection(&mut self, d: Detection) {
        self.0.push(d.rule);
    }
    fn bad_record(&mut self, bad: BadRecord) {
        self.1.push(bad.reason);
    }
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).expect("SIGMA_DIR"));
    let mut files = Vec::new();
    walk(&root.join("rules"), &mut files);
    let mut by_id: HashMap<String, PathBuf> = HashMap::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yml"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        if let Some(id) = text.lines().find_map(|l| l.strip_prefix("id:")) {
            by_id
                .entry(id.trim().to_owned())
                .or_insert_with(|| f.clone());
        }
    }
    let mut cases = Vec::new();
    walk(&root.join("regression"), &mut cases);
    cases.retain(|c| c.file_name().is_some_and(|n| n == "info.yml"));
    cases.sort();
    let (mut pass, mut fail) = (0, 0);
    for info in cases {
        let text = std::fs::read_to_string(&info).unwrap_or_default();
        let after = text.split("rule_metadata:").nth(1).unwrap_or("");
        let Some(id) = after
            .lines()
            .find_map(|l| l.trim().trim_start_matches("- ").strip_prefix("id:"))
            .map(|s| s.trim().to_owned())
        else {
            continue;
        };
        let Some(rule) = by_id.get(&id) else {
            fail += 1;
            println!("FAIL {id}: rule not found");
            continue;
        };
        let mut set = RuleSet::default();
        set.add_path(rule, &LoadOptions::default()).unwrap();
        set.resolve();
        let engine = Engine::compile(&set);
        let dir = info.parent().unwrap();
        let mut events: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "info.yml"))
            .collect();
        events.sort();
        let mut sink = Sink::default();
        for e in &events {
            let _ = hunt_file(&engine, e, &HuntOptions::default(), &mut sink);
        }
        let hit = sink
            .0
            .iter()
            .any(|&r| engine.rule(r).and_then(|i| i.id.as_deref()) == Some(id.as_str()));
        if hit {
            pass += 1;
        } else {
            fail += 1;
            println!("FAIL {id} ({}): {:?}", rule.display(), sink.1.last());
        }
    }
    println!("regression: {pass} passed, {fail} failed");
}
