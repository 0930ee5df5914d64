//! `gatehouse backlog`: the continuous-improvement backlog of the pack, ordered by priority
//! score (risk reduction × effort score) with the decision the `003_*` rules give each item.
//! `--check` exits 1 when an item's recorded status contradicts its decision.

use std::process::ExitCode;

use gatehouse_sabsa::backlog::{AUTO_APPROVE_MIN, LEAD_APPROVAL_MIN, prioritise};
use gatehouse_sabsa::serde_json::json;

use super::export::{PackArgs, emit, load_pack};

/// Arguments of `gatehouse backlog`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub pack: PackArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 1 when a recorded status contradicts the approval rules.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pack = load_pack(&args.pack.pack)?;
    let items = prioritise(&pack);
    let conflicts = items.iter().filter(|i| i.conflict.is_some()).count();
    let out = match args.format {
        Format::Json => {
            let rows: Vec<_> = items
                .iter()
                .map(|i| {
                    json!({
                        "id": i.id,
                        "title": i.title,
                        "category": i.category,
                        "risk_reduction": i.risk_reduction,
                        "effort": i.effort,
                        "priority_score": i.score,
                        "decision": i.decision.label(),
                        "status": i.status.label(),
                        "next_status": i.status.next().map(|s| s.label()),
                        "owner": i.owner,
                        "due": i.due,
                        "conflict": i.conflict,
                    })
                })
                .collect();
            format!("{:#}\n", json!({ "items": rows, "conflicts": conflicts }))
        }
        Format::Text => {
            let mut text = format!(
                "{:<10} {:>5}  {:<30} {:<12} {:<20} {:<10} {}\n",
                "ID", "SCORE", "DECISION", "STATUS", "OWNER", "DUE", "TITLE"
            );
            for i in &items {
                text.push_str(&format!(
                    "{:<10} {:>5}  {:<30} {:<12} {:<20} {:<10} {}\n",
                    i.id,
                    format!("{}x{}={}", i.risk_reduction, i.effort, i.score),
                    i.decision.label(),
                    i.status.label(),
                    i.owner.as_deref().unwrap_or("-"),
                    i.due.as_deref().unwrap_or("TBD"),
                    i.title
                ));
                if let Some(conflict) = &i.conflict {
                    text.push_str(&format!("           ! {conflict}\n"));
                }
            }
            text.push_str(&format!(
                "\n{} item(s); score ≥ {AUTO_APPROVE_MIN} auto-approved, {LEAD_APPROVAL_MIN}–{} \
                 Security Lead approval, < {LEAD_APPROVAL_MIN} deferred unless a business driver \
                 is recorded; {conflicts} conflict(s)\n",
                items.len(),
                AUTO_APPROVE_MIN - 1
            ));
            text
        }
    };
    emit(&out, None)?;
    Ok(if args.check && conflicts > 0 {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_OK
    })
}
