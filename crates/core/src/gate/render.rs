//! Rendering of gate verdicts for people: the Markdown summary shown where they work (the
//! terminal, a pull request, `$GITHUB_STEP_SUMMARY`), the security release memo (Markdown and
//! HTML) that records why a release was authorised, and the tagged readiness entry for a
//! `Test_Result_Analysis.md`-style log.
//!
//! Pure string building. Everything that came from users (titles, comments, justifications,
//! file names) is escaped for the target format: Markdown control characters are
//! backslash-escaped and line breaks flattened, so a comment cannot inject headings, links or
//! HTML into a summary; HTML text and attributes are entity-escaped. The memo is built once
//! into one content model and then written in either format, so the two never disagree.

use std::fmt::Write as _;

use gatehouse_pack::model::{ReleaseClass, RiskModel};
use jiff::Timestamp;

use super::evaluate::risk_model_band;
use super::model::{ApprovalTarget, ExceptionScope, FindingScope, ReleaseGateState, RiskStatus};
use super::verdict::{GateCategory, GateDecision, GateVerdict, ReasonLevel};

/// Escapes text for Markdown inline content (tables included): control characters are
/// backslash-escaped, line breaks become spaces.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '!' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

fn badge(decision: GateDecision) -> &'static str {
    match decision {
        GateDecision::Pass => "✅ pass",
        GateDecision::Pending => "⏳ pending",
        GateDecision::Blocked => "❌ blocked",
    }
}

fn when(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The Markdown summary of `verdict`: decision, a table of categories, then what blocks, what
/// is pending and what warns, each with its rule and evidence; the passing checks follow in a
/// collapsed section.
pub fn markdown_summary(verdict: &GateVerdict) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Release gate: {}\n",
        badge(verdict.decision).to_uppercase()
    );
    let _ = writeln!(
        out,
        "Release `{}` · class `{}` · revision {} · evaluated {}\n",
        escape_code(&verdict.release),
        escape_code(&verdict.class),
        verdict.revision,
        when(verdict.evaluated_at)
    );
    if let Some(bypass) = &verdict.bypass {
        let _ = writeln!(
            out,
            "> **Bypassed** by {} at {}: {}\n",
            escape_markdown(&bypass.by.display),
            when(bypass.at),
            escape_markdown(&bypass.reason)
        );
    }
    out.push_str("| Category | Result | Reasons |\n| --- | --- | --- |\n");
    for category in &verdict.categories {
        let weighing = category
            .reasons
            .iter()
            .filter(|r| r.level >= ReasonLevel::Warning)
            .count();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            category.category.title(),
            badge(category.decision),
            weighing
        );
    }
    let f = &verdict.findings;
    let _ = writeln!(
        out,
        "\nOpen findings: critical {}, high {}, medium {}, low {}.",
        f.critical, f.high, f.medium, f.low
    );
    if let Some(due) = verdict.retrospective_due {
        let _ = writeln!(out, "\nEmergency retrospective due by {}.", when(due));
    }
    for (level, heading) in [
        (ReasonLevel::Block, "Blocking"),
        (ReasonLevel::Pending, "Pending"),
        (ReasonLevel::Warning, "Warnings"),
    ] {
        let reasons: Vec<_> = verdict
            .reasons()
            .filter(|(_, r)| r.level == level)
            .collect();
        if reasons.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {heading}\n");
        for (category, reason) in reasons {
            write_reason_line(&mut out, category, reason);
        }
    }
    let passed: Vec<_> = verdict
        .reasons()
        .filter(|(_, r)| r.level == ReasonLevel::Info)
        .collect();
    if !passed.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>Checks in order ({})</summary>\n",
            passed.len()
        );
        for (category, reason) in passed {
            write_reason_line(&mut out, category, reason);
        }
        out.push_str("\n</details>\n");
    }
    out
}

fn escape_code(text: &str) -> String {
    text.replace('`', "'").replace(['\n', '\r'], " ")
}

fn write_reason_line(out: &mut String, category: GateCategory, reason: &super::Reason) {
    let _ = write!(
        out,
        "- **{}** `{}` ({}): {}",
        category.title(),
        escape_code(&reason.code),
        escape_markdown(&reason.rule.to_string()),
        escape_markdown(&reason.message)
    );
    if !reason.evidence.is_empty() {
        let shown: Vec<String> = reason
            .evidence
            .iter()
            .map(|e| {
                format!(
                    "`{}` {} `{}`",
                    escape_code(&e.id),
                    escape_markdown(&e.kind),
                    escape_code(&e.digest)
                )
            })
            .collect();
        let _ = write!(out, " — evidence: {}", shown.join(", "));
    }
    out.push('\n');
}

/// A plain-text summary for terminals (`gate check --format text`): the decision, one line
/// per category, then every reason that is not informational. Control characters in user text
/// are dropped so a comment cannot move the cursor or clear the screen.
pub fn text_summary(verdict: &GateVerdict) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect()
    };
    let mut out = format!(
        "gate {} for release {} (class {}, revision {}, at {})\n",
        verdict.decision.as_str().to_uppercase(),
        clean(&verdict.release),
        clean(&verdict.class),
        verdict.revision,
        when(verdict.evaluated_at)
    );
    if let Some(bypass) = &verdict.bypass {
        let _ = writeln!(
            out,
            "BYPASSED by {} at {}: {}",
            clean(&bypass.by.display),
            when(bypass.at),
            clean(&bypass.reason)
        );
    }
    for category in &verdict.categories {
        let _ = writeln!(
            out,
            "  {:<20} {}",
            category.category.title(),
            category.decision.as_str()
        );
    }
    for (category, reason) in verdict
        .reasons()
        .filter(|(_, r)| r.level >= ReasonLevel::Warning)
    {
        let _ = write!(
            out,
            "{:<7} {} [{}] {}: {}",
            reason.level.as_str(),
            category.as_str(),
            clean(&reason.code),
            clean(&reason.rule.to_string()),
            clean(&reason.message)
        );
        for e in &reason.evidence {
            let _ = write!(out, " ({} {})", clean(&e.id), clean(&e.digest));
        }
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Security release memo

/// A table: headings and rows of plain (unescaped) text.
struct Table {
    headings: &'static [&'static str],
    rows: Vec<Vec<String>>,
    empty: &'static str,
}

enum Block {
    Paragraph(String),
    KeyValues(Vec<(&'static str, String)>),
    Table(Table),
    List(Vec<String>),
}

struct Section {
    title: &'static str,
    blocks: Vec<Block>,
}

struct Memo {
    title: String,
    sections: Vec<Section>,
}

fn memo_content(
    class: &ReleaseClass,
    risk_model: Option<&RiskModel>,
    state: &ReleaseGateState,
    verdict: &GateVerdict,
) -> Memo {
    let release = &state.release;
    let title = format!(
        "Security release memo: {} {}",
        release.service, release.version
    );
    let mut sections = Vec::new();

    let mut facts = vec![
        ("Release", release.id.to_string()),
        ("Service", release.service.clone()),
        ("Version", release.version.clone()),
        ("Target environment", release.target_environment.clone()),
        (
            "Release class",
            format!(
                "{}{}",
                class.id.value,
                class
                    .title
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            ),
        ),
        ("Owner", release.owner.clone()),
        ("Submitted by", release.submitter.clone()),
        ("Submitted at", when(release.created_at)),
        ("Change summary", release.change.summary.clone()),
    ];
    if let Some(ticket) = &release.change.ticket {
        facts.push(("Ticket", ticket.clone()));
    }
    if let Some(pr) = &release.change.pull_request {
        facts.push(("Pull request", pr.clone()));
    }
    facts.push((
        "Artifacts",
        release
            .artifact_digests
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    ));
    sections.push(Section {
        title: "Release",
        blocks: vec![Block::KeyValues(facts)],
    });

    let mut status = vec![Block::KeyValues(vec![
        ("Gate decision", verdict.decision.as_str().to_owned()),
        ("Evaluated at", when(verdict.evaluated_at)),
        ("Material revision", verdict.revision.to_string()),
        (
            "Open findings",
            format!(
                "critical {}, high {}, medium {}, low {}",
                verdict.findings.critical,
                verdict.findings.high,
                verdict.findings.medium,
                verdict.findings.low
            ),
        ),
    ])];
    if let Some(bypass) = &verdict.bypass {
        status.push(Block::Paragraph(format!(
            "The gate ({}) was BYPASSED by {} at {}: {}",
            bypass.overridden,
            bypass.by.display,
            when(bypass.at),
            bypass.reason
        )));
    }
    if let Some(due) = verdict.retrospective_due {
        status.push(Block::Paragraph(format!(
            "Emergency release: retrospective review due by {}.",
            when(due)
        )));
    }
    status.push(Block::Table(Table {
        headings: &["Category", "Result", "Open items"],
        rows: verdict
            .categories
            .iter()
            .map(|c| {
                let open: Vec<String> = c
                    .reasons
                    .iter()
                    .filter(|r| r.level >= ReasonLevel::Pending)
                    .map(|r| r.message.clone())
                    .collect();
                vec![
                    c.category.title().to_owned(),
                    c.decision.as_str().to_owned(),
                    if open.is_empty() {
                        "none".to_owned()
                    } else {
                        open.join("; ")
                    },
                ]
            })
            .collect(),
        empty: "no categories",
    }));
    sections.push(Section {
        title: "Validation status",
        blocks: status,
    });

    let risks = state
        .risks
        .iter()
        .filter(|r| r.status != RiskStatus::Closed)
        .map(|r| {
            let score = r.likelihood.saturating_mul(r.impact);
            vec![
                r.id.clone(),
                r.title.clone(),
                format!(
                    "{score}{}",
                    risk_model
                        .and_then(|m| risk_model_band(m, score))
                        .map(|b| format!(" ({b})"))
                        .unwrap_or_default()
                ),
                r.status.as_str().to_owned(),
                r.owner.clone(),
            ]
        })
        .collect();
    sections.push(Section {
        title: "Residual risks",
        blocks: vec![Block::Table(Table {
            headings: &["Risk", "Title", "Score", "Status", "Owner"],
            rows: risks,
            empty: "No open or mitigated risks are recorded.",
        })],
    });

    let live_exceptions: Vec<_> = state
        .exceptions
        .iter()
        .filter(|x| !x.is_withdrawn(verdict.evaluated_at))
        .collect();
    let controls: Vec<String> = live_exceptions
        .iter()
        .flat_map(|x| {
            x.compensating_controls
                .iter()
                .map(move |c| format!("{c} (exception {})", x.id))
        })
        .collect();
    sections.push(Section {
        title: "Required compensating controls",
        blocks: vec![if controls.is_empty() {
            Block::Paragraph("None: no exception is in force.".into())
        } else {
            Block::List(controls)
        }],
    });
    sections.push(Section {
        title: "Exceptions",
        blocks: vec![Block::Table(Table {
            headings: &[
                "Exception",
                "Scope",
                "Justification",
                "Approved by",
                "Expires",
                "State",
            ],
            rows: live_exceptions
                .iter()
                .map(|x| {
                    vec![
                        x.id.clone(),
                        describe_scope(&x.scope),
                        x.justification.clone(),
                        format!(
                            "{} ({}) at {}",
                            x.approver.display,
                            x.approver_role,
                            when(x.approved_at)
                        ),
                        when(x.expires_at),
                        if x.is_expired(verdict.evaluated_at) {
                            "EXPIRED".to_owned()
                        } else {
                            "in force".to_owned()
                        },
                    ]
                })
                .collect(),
            empty: "No exceptions.",
        })],
    });

    let approvals = state
        .approvals
        .iter()
        .map(|a| {
            let target = match &a.target {
                ApprovalTarget::Step { index } => format!(
                    "step {} ({})",
                    index + 1,
                    class
                        .approver_path
                        .get(*index)
                        .map(|s| s.role.value.as_str())
                        .unwrap_or("?")
                ),
                ApprovalTarget::RiskEscalation { risk } => format!("escalation of {risk}"),
            };
            let fresh = match &a.target {
                ApprovalTarget::Step { .. } => a.revision == verdict.revision,
                ApprovalTarget::RiskEscalation { risk } => {
                    state.risk(risk).is_some_and(|r| a.revision >= r.revision)
                }
            };
            vec![
                target,
                format!("{} ({})", a.approver.display, a.approver.id),
                a.role.clone(),
                a.decision.as_str().to_owned(),
                when(a.at),
                if fresh {
                    format!("current (revision {})", a.revision)
                } else {
                    format!("stale (revision {})", a.revision)
                },
                a.comment.clone(),
            ]
        })
        .collect();
    let mut approval_blocks = vec![Block::Table(Table {
        headings: &[
            "For", "Who", "Role", "Decision", "When", "Standing", "Comment",
        ],
        rows: approvals,
        empty: "No approvals recorded.",
    })];
    if let Some(retro) = &state.retrospective {
        approval_blocks.push(Block::Paragraph(format!(
            "Retrospective review by {} ({}) at {}: {}",
            retro.reviewer.display,
            retro.role,
            when(retro.completed_at),
            retro.summary
        )));
    }
    sections.push(Section {
        title: "Approvals",
        blocks: approval_blocks,
    });

    let superseded: Vec<&str> = state
        .evidence
        .iter()
        .filter_map(|e| e.supersedes.as_deref())
        .collect();
    sections.push(Section {
        title: "Evidence",
        blocks: vec![Block::Table(Table {
            headings: &[
                "Evidence", "Kind", "Digest", "Size", "Attached", "By", "State",
            ],
            rows: state
                .evidence
                .iter()
                .map(|e| {
                    vec![
                        e.id.clone(),
                        e.kind.to_string(),
                        e.digest(),
                        format!("{} bytes", e.size),
                        when(e.attached_at),
                        e.attached_by.clone(),
                        if superseded.contains(&e.id.as_str()) {
                            "superseded".to_owned()
                        } else {
                            "current".to_owned()
                        },
                    ]
                })
                .collect(),
            empty: "No evidence attached.",
        })],
    });
    Memo { title, sections }
}

fn describe_scope(scope: &ExceptionScope) -> String {
    match scope {
        ExceptionScope::Requirement { id } => format!("requirement {id}"),
        ExceptionScope::Evidence { kind } => format!("evidence kind {kind}"),
        ExceptionScope::Finding { finding } => match finding {
            FindingScope::Vulnerability { id } => format!("vulnerability {id}"),
            FindingScope::SarifRule { rule_id } => format!("SARIF rule {rule_id}"),
            FindingScope::TestCase { classname, name } => format!(
                "test {}{name}",
                classname
                    .as_deref()
                    .map(|c| format!("{c}."))
                    .unwrap_or_default()
            ),
            FindingScope::EvidenceItem { evidence } => format!("all findings of {evidence}"),
        },
    }
}

/// The security release memo in Markdown.
pub fn memo_markdown(
    class: &ReleaseClass,
    risk_model: Option<&RiskModel>,
    state: &ReleaseGateState,
    verdict: &GateVerdict,
) -> String {
    let memo = memo_content(class, risk_model, state, verdict);
    let mut out = format!("# {}\n", escape_markdown(&memo.title));
    for section in &memo.sections {
        let _ = writeln!(out, "\n## {}\n", section.title);
        for block in &section.blocks {
            match block {
                Block::Paragraph(text) => {
                    let _ = writeln!(out, "{}\n", escape_markdown(text));
                }
                Block::KeyValues(pairs) => {
                    for (key, value) in pairs {
                        let _ = writeln!(out, "- **{key}:** {}", escape_markdown(value));
                    }
                    out.push('\n');
                }
                Block::List(items) => {
                    for item in items {
                        let _ = writeln!(out, "- {}", escape_markdown(item));
                    }
                    out.push('\n');
                }
                Block::Table(table) => {
                    if table.rows.is_empty() {
                        let _ = writeln!(out, "{}\n", table.empty);
                        continue;
                    }
                    let _ = writeln!(out, "| {} |", table.headings.join(" | "));
                    let _ = writeln!(
                        out,
                        "|{}",
                        table.headings.iter().map(|_| " --- |").collect::<String>()
                    );
                    for row in &table.rows {
                        let cells: Vec<String> = row.iter().map(|c| escape_markdown(c)).collect();
                        let _ = writeln!(out, "| {} |", cells.join(" | "));
                    }
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// The security release memo as a standalone HTML document.
pub fn memo_html(
    class: &ReleaseClass,
    risk_model: Option<&RiskModel>,
    state: &ReleaseGateState,
    verdict: &GateVerdict,
) -> String {
    let memo = memo_content(class, risk_model, state, verdict);
    let title = escape_html(&memo.title);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\
         body{{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}}\
         table{{border-collapse:collapse;width:100%}}\
         th,td{{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}}\
         code{{word-break:break-all}}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    for section in &memo.sections {
        let _ = writeln!(out, "<h2>{}</h2>", escape_html(section.title));
        for block in &section.blocks {
            match block {
                Block::Paragraph(text) => {
                    let _ = writeln!(out, "<p>{}</p>", escape_html(text));
                }
                Block::KeyValues(pairs) => {
                    out.push_str("<dl>\n");
                    for (key, value) in pairs {
                        let _ = writeln!(
                            out,
                            "<dt>{}</dt><dd>{}</dd>",
                            escape_html(key),
                            escape_html(value)
                        );
                    }
                    out.push_str("</dl>\n");
                }
                Block::List(items) => {
                    out.push_str("<ul>\n");
                    for item in items {
                        let _ = writeln!(out, "<li>{}</li>", escape_html(item));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table(table) => {
                    if table.rows.is_empty() {
                        let _ = writeln!(out, "<p>{}</p>", escape_html(table.empty));
                        continue;
                    }
                    out.push_str("<table>\n<thead><tr>");
                    for heading in table.headings {
                        let _ = write!(out, "<th>{}</th>", escape_html(heading));
                    }
                    out.push_str("</tr></thead>\n<tbody>\n");
                    for row in &table.rows {
                        out.push_str("<tr>");
                        for cell in row {
                            let _ = write!(out, "<td>{}</td>", escape_html(cell));
                        }
                        out.push_str("</tr>\n");
                    }
                    out.push_str("</tbody>\n</table>\n");
                }
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// A readiness entry for a `Test_Result_Analysis.md`-style log, tagged e.g. `SEC-PH5`, to be
/// appended by `gatehouse release memo --log FILE --tag TAG`.
pub fn readiness_log_entry(state: &ReleaseGateState, verdict: &GateVerdict, tag: &str) -> String {
    let release = &state.release;
    let mut out = format!(
        "\n## [{}] Release readiness: {} {} — {}\n\n",
        escape_markdown(tag),
        escape_markdown(&release.service),
        escape_markdown(&release.version),
        verdict.decision.as_str().to_uppercase()
    );
    let _ = writeln!(out, "- Evaluated: {}", when(verdict.evaluated_at));
    let _ = writeln!(
        out,
        "- Release: `{}` (class `{}`, revision {}) to {}",
        escape_code(&verdict.release),
        escape_code(&verdict.class),
        verdict.revision,
        escape_markdown(&release.target_environment)
    );
    let categories: Vec<String> = verdict
        .categories
        .iter()
        .map(|c| format!("{} {}", c.category.title(), c.decision.as_str()))
        .collect();
    let _ = writeln!(out, "- Categories: {}", categories.join(", "));
    let f = &verdict.findings;
    let _ = writeln!(
        out,
        "- Open findings: critical {}, high {}, medium {}, low {}",
        f.critical, f.high, f.medium, f.low
    );
    let approvers: Vec<String> = state
        .approvals
        .iter()
        .map(|a| {
            format!(
                "{} ({}, {} at {})",
                escape_markdown(&a.approver.display),
                escape_markdown(&a.role),
                a.decision.as_str(),
                when(a.at)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "- Approvals: {}",
        if approvers.is_empty() {
            "none".to_owned()
        } else {
            approvers.join("; ")
        }
    );
    if let Some(bypass) = &verdict.bypass {
        let _ = writeln!(
            out,
            "- BYPASSED by {} at {}: {}",
            escape_markdown(&bypass.by.display),
            when(bypass.at),
            escape_markdown(&bypass.reason)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escaping_neutralises_markup() {
        let hostile = "# Title\n[link](http://x) <script>alert(1)</script> | cell";
        let escaped = escape_markdown(hostile);
        assert!(!escaped.contains('\n'));
        assert!(escaped.contains("\\#"));
        assert!(escaped.contains("\\[link\\]"));
        assert!(escaped.contains("\\<script\\>"));
        assert!(escaped.contains("\\|"));
    }

    #[test]
    fn text_summary_drops_terminal_control_sequences() {
        let mut verdict = GateVerdict::from_categories(
            "r\u{1b}[2J".into(),
            "c".into(),
            0,
            Timestamp::UNIX_EPOCH,
            Vec::new(),
        );
        verdict.decision = GateDecision::Blocked;
        let text = text_summary(&verdict);
        assert!(text.starts_with("gate BLOCKED for release r[2J"), "{text}");
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn html_escaping_covers_text_and_attributes() {
        assert_eq!(
            escape_html(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
