//! `gatehouse hunt --rules DIR|FILE FILE…`: run Sigma rules over JSON / JSON-lines files.
//!
//! Matches go to stdout (table, JSON lines or CSV); the summary, rule-load problems, bad
//! input records and the progress bar go to stderr, so `--format jsonl` output stays
//! machine-readable. The progress bar is drawn only when stderr is a terminal.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use gatehouse_detect::correlation::{CorrelationEngine, CorrelationHit, CorrelationMatch};
use gatehouse_detect::engine::{CorrelationRef, Engine};
use gatehouse_detect::event::parse_timestamp;
use gatehouse_detect::hunt::{
    BadRecord, Detection, HuntOptions, HuntSink, Location, hunt_file, hunt_lines,
};
use gatehouse_detect::rule::{Level, LoadOptions, RuleSet};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Jsonl,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sigma rule file or directory (repeatable).
    #[arg(long, required_unless_present = "pack")]
    rules: Vec<PathBuf>,
    /// Policy pack: its `DetectionRules` folders are loaded (besides any --rules) and its
    /// `EventSource` field mappings and log sources applied.
    #[arg(long)]
    pack: Option<PathBuf>,
    /// JSON, JSON-array, JSON-lines or plain-text event files; `-` reads JSON lines from
    /// standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Longest accepted JSON line, in bytes; longer lines are skipped and reported.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_line_bytes: usize,
    /// Never draw a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Values for `expand` placeholders, `NAME=value1,value2` (repeatable); rules using a
    /// placeholder without values are reported as unsupported.
    #[arg(long = "placeholder", value_name = "NAME=VALUES")]
    placeholders: Vec<String>,
}

struct Printer<'e> {
    engine: &'e Engine,
    format: Format,
    out: std::io::BufWriter<std::io::Stdout>,
    per_level: BTreeMap<&'static str, u64>,
    bad: Vec<BadRecord>,
    hits: Vec<(jiff::Timestamp, CorrelationHit)>,
    hits_without_time: u64,
    feeds_correlation: Vec<bool>,
    bar: ProgressBar,
    file_offset: u64,
    error: Option<std::io::Error>,
}

/// One output row: a rule match (with file and location) or a correlation match.
struct Row<'a> {
    rule_id: &'a str,
    title: &'a str,
    level: &'a str,
    timestamp: &'a str,
    /// File and location in it; `("", None)` for correlation matches.
    place: (&'a str, Option<Location>),
    matched: &'a Map<String, Value>,
    /// Correlation details (type, aggregated value, hits, first/last).
    extra: Option<Value>,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl Printer<'_> {
    fn write_line(&mut self, line: &str) {
        if self.error.is_some() {
            return;
        }
        // Hide the progress bar while writing so a terminal shows clean lines.
        let bar = self.bar.clone();
        if let Err(e) = bar.suspend(|| writeln!(self.out, "{line}")) {
            self.error = Some(e);
        }
    }

    fn print_row(&mut self, row: Row<'_>) {
        let Row {
            rule_id,
            title,
            level,
            timestamp,
            place,
            matched,
            extra,
        } = row;
        let level_key = Level::ALL
            .iter()
            .find(|l| l.as_str() == level)
            .map_or("none", |l| l.as_str());
        *self.per_level.entry(level_key).or_default() += 1;
        let line = match self.format {
            Format::Jsonl => {
                let mut obj = Map::new();
                obj.insert("rule_id".into(), json!(rule_id));
                obj.insert("title".into(), json!(title));
                obj.insert("level".into(), json!(level));
                obj.insert(
                    "timestamp".into(),
                    if timestamp.is_empty() {
                        Value::Null
                    } else {
                        json!(timestamp)
                    },
                );
                if !place.0.is_empty() {
                    obj.insert("file".into(), json!(place.0));
                }
                match place.1 {
                    Some(Location::Line(n)) => {
                        obj.insert("line".into(), json!(n));
                    }
                    Some(Location::Index(i)) => {
                        obj.insert("index".into(), json!(i));
                    }
                    None => {}
                }
                obj.insert("matched".into(), Value::Object(matched.clone()));
                if let Some(e) = extra {
                    obj.insert("correlation".into(), e);
                }
                Value::Object(obj).to_string()
            }
            Format::Csv | Format::Table => {
                let loc = match place.1 {
                    Some(Location::Line(n)) => format!("{}:{n}", place.0),
                    Some(Location::Index(i)) => format!("{}[{i}]", place.0),
                    None => "correlation".to_owned(),
                };
                let fields: Vec<String> = matched
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}={}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                        )
                    })
                    .collect();
                if self.format == Format::Csv {
                    [rule_id, title, level, timestamp, &loc, &fields.join("; ")]
                        .iter()
                        .map(|s| csv_field(s))
                        .collect::<Vec<_>>()
                        .join(",")
                } else {
                    let mut f = fields.join("; ");
                    if f.chars().count() > 120 {
                        f = f.chars().take(117).collect::<String>() + "...";
                    }
                    format!(
                        "{:<27} {:<13} {:<60} {:<40} {}",
                        timestamp,
                        level,
                        truncate(title, 60),
                        loc,
                        f
                    )
                }
            }
        };
        self.write_line(&line);
    }

    fn print_correlation(&mut self, m: &CorrelationMatch) {
        let Some(c) = self.engine.correlations().get(m.correlation) else {
            return;
        };
        if !c.standalone {
            // A step of a larger correlation: only the outermost one is reported.
            return;
        }
        let rule = &c.rule;
        let mut group = Map::new();
        for (k, v) in &m.group {
            group.insert(k.clone(), v.clone().map_or(Value::Null, Value::String));
        }
        let extra = json!({
            "type": rule.kind.as_str(),
            "value": m.value,
            "hits": m.hits,
            "first": m.first.to_string(),
            "last": m.last.to_string(),
        });
        let level = rule.level.map_or("", Level::as_str);
        let id = rule.id.clone().or(rule.name.clone()).unwrap_or_default();
        let title = rule.title.clone();
        let timestamp = m.last.to_string();
        self.print_row(Row {
            rule_id: &id,
            title: &title,
            level,
            timestamp: &timestamp,
            place: ("", None),
            matched: &group,
            extra: Some(extra),
        });
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

impl HuntSink for Printer<'_> {
    fn detection(&mut self, d: Detection) {
        let Some(info) = self.engine.rule(d.rule) else {
            return;
        };
        if self.feeds_correlation.get(d.rule).copied().unwrap_or(false) {
            match d.timestamp.as_deref().and_then(parse_timestamp) {
                Some(t) => self.hits.push((
                    t,
                    CorrelationHit {
                        source: CorrelationRef::Rule(d.rule),
                        time: t,
                        fields: d.captures.clone(),
                    },
                )),
                None => self.hits_without_time += 1,
            }
        }
        if !info.standalone {
            return;
        }
        let mut matched = Map::new();
        for f in &d.fields {
            matched.insert(f.field.clone(), Value::String(f.value.clone()));
        }
        let id = info.id.clone().unwrap_or_default();
        let title = info.title.clone();
        let level = info.level.map_or("", Level::as_str);
        self.print_row(Row {
            rule_id: &id,
            title: &title,
            level,
            timestamp: d.timestamp.as_deref().unwrap_or(""),
            place: (&d.file, Some(d.location)),
            matched: &matched,
            extra: None,
        });
    }

    fn bad_record(&mut self, bad: BadRecord) {
        self.bad.push(bad);
    }

    fn progress(&mut self, bytes: u64) {
        self.bar.set_position(self.file_offset + bytes);
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut load = LoadOptions::default();
    for p in &args.placeholders {
        load.add_placeholder_arg(p).map_err(anyhow::Error::msg)?;
    }
    let mut set = RuleSet::default();
    let sources = match &args.pack {
        Some(dir) => Some(crate::detection::pack_rules(dir, &load, &mut set)?),
        None => None,
    };
    for path in &args.rules {
        set.add_path(path, &load)
            .with_context(|| format!("reading rules from {}", path.display()))?;
    }
    set.resolve();
    if !set.problems.is_empty() {
        for p in set.problems.iter().take(20) {
            eprintln!("warning: {p}");
        }
        if set.problems.len() > 20 {
            eprintln!(
                "warning: … and {} more (see `gatehouse rules check`)",
                set.problems.len() - 20
            );
        }
    }
    if set.loaded() == 0 {
        bail!("no Sigma rule could be loaded from {:?}", args.rules);
    }
    let mut engine = Engine::compile(&set);
    if let Some(sources) = sources {
        engine = engine.with_source_map(sources);
    }
    let mut feeds = vec![false; engine.rule_count()];
    for c in engine.correlations() {
        for r in &c.refs {
            if let CorrelationRef::Rule(i) = r
                && let Some(slot) = feeds.get_mut(*i)
            {
                *slot = true;
            }
        }
    }
    let total_bytes: u64 = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = if !args.no_progress && std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut printer = Printer {
        engine: &engine,
        format: args.format,
        out: std::io::BufWriter::new(std::io::stdout()),
        per_level: BTreeMap::new(),
        bad: Vec::new(),
        hits: Vec::new(),
        hits_without_time: 0,
        feeds_correlation: feeds,
        bar: bar.clone(),
        file_offset: 0,
        error: None,
    };
    match args.format {
        Format::Csv => printer.write_line("rule_id,title,level,timestamp,location,matched"),
        Format::Table => printer.write_line(&format!(
            "{:<27} {:<13} {:<60} {:<40} {}",
            "TIMESTAMP", "LEVEL", "RULE", "LOCATION", "MATCHED FIELDS"
        )),
        Format::Jsonl => {}
    }
    let mut options = HuntOptions {
        max_line_bytes: args.max_line_bytes,
        ..HuntOptions::default()
    };
    if let Some(t) = args.threads {
        options.threads = t.max(1);
    }
    let mut events = 0u64;
    let mut unreadable = Vec::new();
    for file in &args.files {
        let outcome = if file.as_os_str() == "-" {
            // Standard input is read as JSON lines (a stream has no shape to detect up front).
            hunt_lines(&engine, std::io::stdin(), "-", &options, &mut printer)
        } else {
            hunt_file(&engine, file, &options, &mut printer)
        };
        match outcome {
            Ok(stats) => events += stats.events,
            Err(e) => unreadable.push(format!("{}: {e}", file.display())),
        }
        printer.file_offset += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    }
    let mut correlation_matches = Vec::new();
    if !printer.hits.is_empty() {
        let mut ce = CorrelationEngine::new(&engine);
        let mut hits = std::mem::take(&mut printer.hits);
        hits.sort_by_key(|(t, _)| *t);
        for (_, h) in hits {
            correlation_matches.extend(ce.push(h));
        }
        correlation_matches.extend(ce.finish());
    }
    for m in &correlation_matches {
        printer.print_correlation(m);
    }
    bar.finish_and_clear();
    if let Err(e) = printer.out.flush() {
        printer.error.get_or_insert(e);
    }
    if let Some(e) = printer.error.take()
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("writing matches");
    }
    // Summary.
    for b in &printer.bad {
        let loc = match b.location {
            Location::Line(n) => format!("line {n}"),
            Location::Index(i) => format!("document {i}"),
        };
        eprintln!("bad record: {} {loc}: {}", b.file, b.reason);
    }
    for u in &unreadable {
        eprintln!("error: cannot read {u}");
    }
    let levels: Vec<String> = printer
        .per_level
        .iter()
        .map(|(l, n)| format!("{l}={n}"))
        .collect();
    eprintln!(
        "summary: {} events read, {} bad records, {} rules loaded ({} did not load), {} matches{}{}",
        events,
        printer.bad.len(),
        set.loaded(),
        set.problems.len(),
        printer.per_level.values().sum::<u64>(),
        if levels.is_empty() {
            String::new()
        } else {
            format!(" ({})", levels.join(", "))
        },
        if printer.hits_without_time > 0 {
            format!(
                "; {} correlation hits without a timestamp were ignored",
                printer.hits_without_time
            )
        } else {
            String::new()
        }
    );
    Ok(if unreadable.is_empty() {
        super::EXIT_OK
    } else {
        super::exit_error()
    })
}
