//! `gatehouse trace`: the traceability graph of the pack.
//!
//! - `gatehouse trace ID` — what ID depends on (upstream) and what depends on it (downstream);
//! - `gatehouse trace --matrix` — coverage of controls, alerts, KPIs and playbooks, with gaps;
//! - `gatehouse trace --suspect` — dependencies whose target changed since the last review;
//! - `gatehouse trace clear ID` / `clear --all` — record the review in `gatehouse.lock`.
//!
//! Unlike export, these commands run on a pack with lint errors: finding broken traces is
//! their job. Exit 0 clean, 1 gaps / suspects / broken traces, 2 usage or I/O.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_pack::Pack;
use gatehouse_sabsa::serde_json::{Value, json};
use gatehouse_sabsa::trace::{
    GraphProblem, Hop, LOCK_FILE, Lock, Suspect, clear, matrix, neighbourhood, problems, suspects,
};

use super::export::{PackArgs, emit};

/// Arguments of `gatehouse trace`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// The item to show upstream and downstream links of.
    pub id: Option<String>,
    /// Print the coverage matrix and its gaps.
    #[arg(long, conflicts_with = "id")]
    pub matrix: bool,
    /// List dependencies whose target changed since they were last reviewed.
    #[arg(long, conflicts_with_all = ["id", "matrix"])]
    pub suspect: bool,
    #[command(flatten)]
    pub pack: PackArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Mark an item's dependencies as reviewed at their current content (writes gatehouse.lock).
    Clear(ClearArgs),
}

#[derive(Debug, clap::Args)]
pub struct ClearArgs {
    /// The dependent item that was re-reviewed.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<String>,
    /// Record every dependency as reviewed (the baseline for a new lock file).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub pack: PackArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Action::Clear(clear_args)) = args.action {
        return run_clear(clear_args);
    }
    let pack = load(&args.pack.pack)?;
    let lock_path = args.pack.pack.join(LOCK_FILE);
    let lock = read_lock(&lock_path)?;
    let graph_problems = problems(&pack);
    let flagged = suspects(&pack, &lock);
    let (mut report, text, bad) = if args.matrix {
        matrix_report(&pack, &flagged)
    } else if args.suspect {
        suspect_report(&flagged, lock.reviewed.is_empty())
    } else if let Some(id) = &args.id {
        let Some(around) = neighbourhood(&pack, id) else {
            bail!(
                "no document or traced component `{id}` in {}",
                args.pack.pack.display()
            );
        };
        item_report(&pack, &around, &flagged)
    } else {
        bail!("give an ID, --matrix, --suspect, or `clear ID`");
    };
    let mut text = text;
    if !graph_problems.is_empty() {
        text.push_str("\nbroken traces:\n");
        for problem in &graph_problems {
            text.push_str(&format!("  {problem}\n"));
        }
    }
    if let Some(map) = report.as_object_mut() {
        let list: Vec<Value> = graph_problems.iter().map(problem_json).collect();
        map.insert("broken_traces".to_owned(), Value::Array(list));
    }
    let out = match args.format {
        Format::Text => text,
        Format::Json => format!("{report:#}\n"),
    };
    emit(&out, None)?;
    Ok(if bad || !graph_problems.is_empty() {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_OK
    })
}

fn load(dir: &Path) -> anyhow::Result<Pack> {
    let loaded = gatehouse_pack::load(dir)?;
    if loaded.has_errors() {
        eprintln!(
            "warning: the pack in {} has {} lint error(s) (see `gatehouse lint`); tracing anyway",
            dir.display(),
            loaded.error_count()
        );
    }
    Ok(loaded.pack)
}

fn read_lock(path: &Path) -> anyhow::Result<Lock> {
    if !path.exists() {
        return Ok(Lock::default());
    }
    let bytes = gatehouse_sabsa::read_document(path, gatehouse_sabsa::MAX_DOCUMENT_BYTES)?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    Ok(Lock::parse(&text, &path.display().to_string())?)
}

fn run_clear(args: ClearArgs) -> anyhow::Result<ExitCode> {
    let pack = load(&args.pack.pack)?;
    let path: PathBuf = args.pack.pack.join(LOCK_FILE);
    let mut lock = read_lock(&path)?;
    if let Some(id) = &args.id
        && pack.get(id).is_none()
    {
        bail!("no document `{id}` in {}", args.pack.pack.display());
    }
    let changed = clear(&pack, &mut lock, args.id.as_deref());
    std::fs::write(&path, lock.render()).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "{}: {changed} entr{} updated; {} dependencies recorded",
        path.display(),
        if changed == 1 { "y" } else { "ies" },
        lock.reviewed.len()
    );
    Ok(super::EXIT_OK)
}

fn problem_json(problem: &GraphProblem) -> Value {
    match problem {
        GraphProblem::UnknownTarget {
            from,
            to,
            line,
            column,
        } => {
            json!({"problem": "unknown_target", "from": from, "to": to, "line": line, "column": column})
        }
        GraphProblem::RefinesCycle(ids) => json!({"problem": "refines_cycle", "cycle": ids}),
    }
}

fn kind_name(pack: &Pack, id: &str) -> String {
    pack.kind_of(id)
        .map_or_else(|| "external".to_owned(), |k| k.to_string())
}

fn suspect_note(flagged: &[Suspect], dependent: &str, upstream: &str) -> &'static str {
    if flagged
        .iter()
        .any(|s| s.dependent == dependent && s.upstream == upstream)
    {
        "  [SUSPECT: changed since last review]"
    } else {
        ""
    }
}

fn item_report(
    pack: &Pack,
    around: &gatehouse_sabsa::trace::Neighbourhood,
    flagged: &[Suspect],
) -> (Value, String, bool) {
    let kind = around
        .kind
        .map_or_else(|| "external component".to_owned(), |k| k.to_string());
    let mut text = format!("{} ({kind})\n", around.id);
    let hop_json = |h: &Hop| {
        json!({
            "depth": h.depth,
            "from": h.link.from,
            "relationship": h.link.rel.as_str(),
            "to": h.link.to,
            "suspect": flagged.iter().any(|s| s.dependent == h.link.from && s.upstream == h.link.to),
        })
    };
    for (label, hops, up) in [
        ("upstream (what it depends on)", &around.upstream, true),
        ("downstream (what depends on it)", &around.downstream, false),
    ] {
        text.push_str(&format!("{label}:\n"));
        if hops.is_empty() {
            text.push_str("  (none)\n");
        }
        for hop in hops {
            let indent = "  ".repeat(hop.depth);
            let note = suspect_note(flagged, &hop.link.from, &hop.link.to);
            let line = if up {
                format!(
                    "{indent}{} --{}--> {} ({}){note}\n",
                    hop.link.from,
                    hop.link.rel.as_str(),
                    hop.link.to,
                    kind_name(pack, &hop.link.to)
                )
            } else {
                format!(
                    "{indent}{} ({}) --{}--> {}{note}\n",
                    hop.link.from,
                    kind_name(pack, &hop.link.from),
                    hop.link.rel.as_str(),
                    hop.link.to
                )
            };
            text.push_str(&line);
        }
    }
    let involved = flagged
        .iter()
        .any(|s| s.dependent == around.id || s.upstream == around.id);
    let report = json!({
        "id": around.id,
        "kind": kind,
        "upstream": around.upstream.iter().map(hop_json).collect::<Vec<_>>(),
        "downstream": around.downstream.iter().map(hop_json).collect::<Vec<_>>(),
    });
    (report, text, involved)
}

fn matrix_report(pack: &Pack, flagged: &[Suspect]) -> (Value, String, bool) {
    let rows = matrix(pack);
    let mut text = String::from("Traceability coverage matrix\n");
    let mut gaps = Vec::new();
    for row in &rows {
        let cells: Vec<String> = row
            .requirements
            .iter()
            .map(|(req, by)| {
                if by.is_empty() {
                    format!("{req}: GAP")
                } else {
                    format!("{req}: {}", by.join(", "))
                }
            })
            .collect();
        text.push_str(&format!(
            "  {:<12} {:<32} {}\n",
            row.kind.to_string(),
            row.id,
            cells.join(" | ")
        ));
        for gap in row.gaps() {
            gaps.push(format!(
                "{} {} is not {}",
                row.kind,
                row.id,
                gap_phrase(gap)
            ));
        }
    }
    text.push_str(&format!("\ngaps: {}\n", gaps.len()));
    for gap in &gaps {
        text.push_str(&format!("  {gap}\n"));
    }
    text.push_str(&format!("suspect links: {}\n", flagged.len()));
    for s in flagged {
        text.push_str(&format!("  {}\n", suspect_line(s)));
    }
    let report = json!({
        "rows": rows.iter().map(|r| json!({
            "id": r.id,
            "kind": r.kind.to_string(),
            "requirements": r.requirements.iter().map(|(req, by)| json!({"requirement": req, "satisfied_by": by})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "gaps": gaps,
        "suspects": flagged.iter().map(suspect_json).collect::<Vec<_>>(),
    });
    let bad = !gaps.is_empty() || !flagged.is_empty();
    (report, text, bad)
}

fn gap_phrase(requirement: &str) -> String {
    match requirement {
        "playbook" => "linked to a playbook".to_owned(),
        "data source" => "linked to a data source".to_owned(),
        "control" => "linked to a control".to_owned(),
        other => other.to_owned(),
    }
}

fn suspect_line(s: &Suspect) -> String {
    let why = if s.reviewed_hash.is_some() {
        "changed since last review"
    } else {
        "never reviewed"
    };
    format!(
        "{} --{}--> {}: {why}; re-review {} then `gatehouse trace clear {}`",
        s.dependent,
        s.rel.as_str(),
        s.upstream,
        s.dependent,
        s.dependent
    )
}

fn suspect_json(s: &Suspect) -> Value {
    json!({
        "dependent": s.dependent,
        "depends_on": s.upstream,
        "relationship": s.rel.as_str(),
        "reviewed_hash": s.reviewed_hash,
        "current_hash": s.current_hash,
    })
}

fn suspect_report(flagged: &[Suspect], no_lock: bool) -> (Value, String, bool) {
    let mut text = String::new();
    if no_lock {
        text.push_str(
            "no gatehouse.lock yet: run `gatehouse trace clear --all` to record the reviewed baseline\n",
        );
    }
    text.push_str(&format!("suspect links: {}\n", flagged.len()));
    for s in flagged {
        text.push_str(&format!("  {}\n", suspect_line(s)));
    }
    let report = json!({ "suspects": flagged.iter().map(suspect_json).collect::<Vec<_>>() });
    (report, text, !flagged.is_empty())
}
