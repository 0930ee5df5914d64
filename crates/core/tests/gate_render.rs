//! The Markdown summary, the security release memo (Markdown and HTML) and the readiness log
//! entry: content that must be there, and user text that must be escaped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fixtures/gate/support.rs"]
mod support;

use gatehouse_core::gate::{
    Actor, ApprovalDecision, ApprovalTarget, Exception, ExceptionScope, FindingScope, GateVerdict,
    Risk, RiskStatus, render,
};
use support::{Scenario, days, person, t};

const HOSTILE: &str = "<script>alert('x')</script> | # [click](http://evil)";

#[test]
fn the_summary_leads_with_the_decision_and_lists_blocking_reasons_with_evidence() {
    let mut s = Scenario::passing_normal();
    let sarif = s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    let verdict = s.verdict(t(3));
    let md = render::markdown_summary(&verdict);
    assert!(md.starts_with("## Release gate: ❌ BLOCKED"), "{md}");
    assert!(md.contains("| Findings | ❌ blocked |"), "{md}");
    assert!(md.contains("| Context & ownership | ✅ pass |"));
    assert!(md.contains("### Blocking"));
    let digest = &s.state.evidence_item(&sarif).unwrap().sha256;
    let line = md
        .lines()
        .find(|l| l.contains("findings_over_threshold"))
        .unwrap();
    assert!(line.contains("normal: finding\\_thresholds.high"), "{line}");
    assert!(line.contains(&format!("`sha256:{digest}`")), "{line}");
    assert!(md.contains("### Pending"), "stale approvals are pending");
    assert!(md.contains("<details><summary>Checks in order"));
}

#[test]
fn the_summary_escapes_comments() {
    let mut s = Scenario::passing_normal();
    s.state.approvals.clear();
    s.decide(
        &person("bob"),
        ApprovalTarget::Step { index: 0 },
        ApprovalDecision::Reject,
        t(2),
    )
    .unwrap();
    s.state.approvals[0].comment = HOSTILE.into();
    let md = render::markdown_summary(&s.verdict(t(3)));
    assert!(!md.contains("<script>"), "{md}");
    assert!(md.contains("\\<script\\>"));
    assert!(!md.contains("[click](http://evil)"));
}

/// A release with one of everything the memo reports.
fn memo_scenario() -> Scenario {
    let mut s = Scenario::passing_normal();
    s.state.approvals.clear();
    let revision = s.state.next_revision();
    s.state.risks.push(Risk {
        id: "R-3".into(),
        title: format!("Residual: {HOSTILE}"),
        likelihood: 2,
        impact: 3,
        status: RiskStatus::Mitigated,
        owner: "team-payments".into(),
        revision,
    });
    let revision = s.state.next_revision();
    s.state.exceptions.push(Exception {
        id: "EXC-9".into(),
        scope: ExceptionScope::Finding {
            finding: FindingScope::Vulnerability {
                id: "CVE-2026-0001".into(),
            },
        },
        justification: "Not reachable: lodash template() unused".into(),
        compensating_controls: vec!["CSP forbids inline script".into()],
        approver: Actor::from_principal(&person("erin"), true),
        approver_role: "ciso".into(),
        approved_at: t(1),
        expires_at: t(0) + days(30),
        withdrawn_at: None,
        revision,
    });
    s.approve("bob", 0, t(2)).unwrap();
    s.approve("dave", 1, t(2)).unwrap();
    s
}

fn memo_inputs(s: &Scenario) -> GateVerdict {
    s.verdict(t(3))
}

#[test]
fn the_memo_covers_status_risks_controls_exceptions_approvals_and_evidence() {
    let s = memo_scenario();
    let verdict = memo_inputs(&s);
    let md = render::memo_markdown(&s.class, Some(&s.risk_model), &s.state, &verdict);
    assert!(
        md.starts_with("# Security release memo: payments 2.14.0"),
        "{md}"
    );
    for section in [
        "## Validation status",
        "## Residual risks",
        "## Required compensating controls",
        "## Exceptions",
        "## Approvals",
        "## Evidence",
    ] {
        assert!(md.contains(section), "missing {section}");
    }
    assert!(md.contains("- **Gate decision:** pass"), "{md}");
    assert!(md.contains("| R-3 |"));
    assert!(md.contains("| 6 (Medium) | mitigated |"), "{md}");
    assert!(md.contains("- CSP forbids inline script (exception EXC-9)"));
    assert!(
        md.contains("2026-12-20 10:00:00 UTC"),
        "exception expiry shown"
    );
    assert!(md.contains("Bob Approver (bob)"));
    assert!(
        md.contains("2026-11-20 12:00:00 UTC"),
        "approval time shown"
    );
    for item in &s.state.evidence {
        assert!(md.contains(&format!("sha256:{}", item.sha256)));
    }
    assert!(!md.contains("<script>"));
}

#[test]
fn the_html_memo_is_escaped_and_complete() {
    let s = memo_scenario();
    let verdict = memo_inputs(&s);
    let html = render::memo_html(&s.class, Some(&s.risk_model), &s.state, &verdict);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(!html.contains("<script>"), "user text must be escaped");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(html.contains("<h2>Residual risks</h2>"));
    assert!(html.contains("<td>EXC-9</td>"));
    assert_eq!(
        html.matches("<table>").count(),
        html.matches("</table>").count()
    );
    assert!(html.contains("<dt>Gate decision</dt><dd>pass</dd>"));
}

#[test]
fn the_readiness_log_entry_is_tagged() {
    let s = memo_scenario();
    let verdict = memo_inputs(&s);
    let entry = render::readiness_log_entry(&s.state, &verdict, "SEC-PH5");
    assert!(
        entry.contains("## [SEC-PH5] Release readiness: payments 2.14.0 — PASS"),
        "{entry}"
    );
    assert!(entry.contains("Approvals: Bob Approver (approver, approve at"));
}

#[test]
fn the_text_summary_lists_what_weighs() {
    let mut s = Scenario::passing_normal();
    s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    let verdict = s.verdict(t(3));
    let text = render::text_summary(&verdict);
    assert!(text.starts_with("gate BLOCKED for release "), "{text}");
    assert!(text.contains("  Findings             blocked\n"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with(
            "block   findings [findings_over_threshold] normal: finding_thresholds.high"
        )),
        "{text}"
    );
    assert_eq!(verdict.exit_code(), 1);
    assert_eq!(Scenario::passing_normal().verdict(t(3)).exit_code(), 0);
}

#[test]
fn the_verdict_round_trips_through_json_for_the_cli() {
    let mut s = Scenario::passing_normal();
    s.attach("sarif", "sarif_two_errors_one_warning.sarif", t(1));
    let verdict = s.verdict(t(3));
    let json = serde_json::to_value(&verdict).unwrap();
    assert_eq!(json["decision"], "blocked");
    assert_eq!(json["categories"][0]["category"], "context_and_ownership");
    assert_eq!(json["findings"]["high"], 2);
    let reason = json["categories"][3]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "findings_over_threshold")
        .unwrap();
    assert_eq!(reason["level"], "block");
    assert_eq!(reason["rule"]["class"], "normal");
    assert!(
        reason["evidence"][0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let back: GateVerdict = serde_json::from_value(json).unwrap();
    assert_eq!(back, verdict);
}
