//! Renders the Layer 6 document from the policy pack, so the operational layer is generated
//! from the same Alert, HealthCheck, Runbook, Playbook, Maintenance, Kpi and Improvement
//! documents gatehouse runs on, instead of being written by hand and drifting from them.
//!
//! Output is deterministic: documents are visited in id order, maps are ordered, and nothing
//! depends on time or on load order, so the same pack always gives byte-identical output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use gatehouse_pack::Pack;
use gatehouse_pack::model::{
    Alert, AutomationStatus, Cadence, Comparison, ContactKind, Document, HealthCheck, Improvement,
    Kind, Kpi, KpiDirection, Maintenance, NoticeTiming, Playbook, Recurrence, RemediationMode,
    Runbook, SabsaColumn, SabsaLayer, Step,
};
use gatehouse_pack::trace::is_external_id;

use crate::backlog::{self, Decision};
use crate::document::{L6Document, Section, SectionId, TraceLink};

/// Why no document could be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    #[error(
        "the pack traces to no external policy component (`POL-YYYY-NNN.component.5-1`); \
         pass --policy to name the policy this layer belongs to"
    )]
    NoPolicy,
    #[error("the pack traces to several policies ({}); pass --policy to choose one", .0.join(", "))]
    AmbiguousPolicy(Vec<String>),
    #[error("policy id `{0}` is not of the form POL-YYYY-NNN (upper-case letters, digits, dashes)")]
    InvalidPolicy(String),
}

/// The rendered document with what it was rendered from.
#[derive(Debug, Clone)]
pub struct Export {
    pub policy: String,
    pub document: L6Document,
    pub coverage: Coverage,
}

/// How the pack's documents spread over the SABSA matrix (column × layer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub total: usize,
    /// Each column in SABSA order (What, Why, How, Who, Where, When) with the ids tagged with it.
    pub by_column: Vec<(&'static str, Vec<String>)>,
    /// Each layer in SABSA order with the number of documents tagged with it.
    pub by_layer: Vec<(&'static str, usize)>,
    /// Ids of documents without a `sabsa:` tag.
    pub untagged: Vec<String>,
}

pub const COLUMNS: [&str; 6] = ["What", "Why", "How", "Who", "Where", "When"];
pub const LAYERS: [&str; 6] = [
    "Contextual",
    "Conceptual",
    "Logical",
    "Physical",
    "Component",
    "Operational",
];

fn column_name(column: SabsaColumn) -> &'static str {
    match column {
        SabsaColumn::What => "What",
        SabsaColumn::Why => "Why",
        SabsaColumn::How => "How",
        SabsaColumn::Who => "Who",
        SabsaColumn::Where => "Where",
        SabsaColumn::When => "When",
    }
}

fn layer_name(layer: SabsaLayer) -> &'static str {
    match layer {
        SabsaLayer::Contextual => "Contextual",
        SabsaLayer::Conceptual => "Conceptual",
        SabsaLayer::Logical => "Logical",
        SabsaLayer::Physical => "Physical",
        SabsaLayer::Component => "Component",
        SabsaLayer::Operational => "Operational",
    }
}

/// SABSA column coverage of every document in the pack.
pub fn coverage(pack: &Pack) -> Coverage {
    let mut coverage = Coverage {
        total: pack.document_count(),
        ..Coverage::default()
    };
    coverage.by_column = COLUMNS.iter().map(|c| (*c, Vec::new())).collect();
    coverage.by_layer = LAYERS.iter().map(|l| (*l, 0)).collect();
    for document in sorted_documents(pack) {
        let id = document.id().value.clone();
        match document.sabsa() {
            Some(tag) => {
                let column = column_name(tag.column);
                if let Some((_, ids)) = coverage.by_column.iter_mut().find(|(c, _)| *c == column) {
                    ids.push(id);
                }
                let layer = layer_name(tag.layer);
                if let Some((_, n)) = coverage.by_layer.iter_mut().find(|(l, _)| *l == layer) {
                    *n += 1;
                }
            }
            None => coverage.untagged.push(id),
        }
    }
    coverage
}

impl Coverage {
    /// A plain-text table: documents per column, per layer, and the untagged ones.
    pub fn text(&self) -> String {
        let mut out = String::from("SABSA matrix coverage\n");
        let tagged = self.total - self.untagged.len();
        let _ = writeln!(out, "  documents: {} ({tagged} tagged)", self.total);
        for (column, ids) in &self.by_column {
            let mark = if ids.is_empty() {
                "  <- no document"
            } else {
                ""
            };
            let _ = writeln!(out, "  {column:<6} {:>6}{mark}", ids.len());
        }
        for (layer, count) in &self.by_layer {
            let _ = writeln!(out, "  layer {layer:<12} {count:>6}");
        }
        if !self.untagged.is_empty() {
            let shown: Vec<&str> = self.untagged.iter().take(20).map(String::as_str).collect();
            let more = self.untagged.len().saturating_sub(shown.len());
            let _ = write!(out, "  untagged: {}", shown.join(", "));
            if more > 0 {
                let _ = write!(out, " and {more} more");
            }
            out.push('\n');
        }
        out
    }

    fn markdown(&self) -> String {
        let mut out = String::from("| SABSA column | Documents |\n|---|---|\n");
        for (column, ids) in &self.by_column {
            let _ = writeln!(out, "| {column} | {} |", ids.len());
        }
        let _ = writeln!(
            out,
            "\n{} of {} documents carry a SABSA tag.",
            self.total - self.untagged.len(),
            self.total
        );
        out
    }
}

fn sorted_documents(pack: &Pack) -> Vec<&Document> {
    let mut documents: Vec<&Document> = pack.documents().collect();
    documents.sort_by(|a, b| a.id().value.cmp(&b.id().value));
    documents
}

fn by_id<'a, T>(items: impl Iterator<Item = &'a T>, id: impl Fn(&T) -> &str) -> Vec<&'a T> {
    let mut items: Vec<&T> = items.collect();
    items.sort_by(|a, b| id(a).cmp(id(b)));
    items
}

/// The policy of an external component id (`POL-2026-001.component.5-1` → `POL-2026-001`).
fn policy_of(id: &str) -> Option<&str> {
    is_external_id(id)
        .then(|| id.split_once(".component.").map(|(p, _)| p))
        .flatten()
}

/// Picks the policy: the one given, or the only one the pack traces to.
pub fn choose_policy(pack: &Pack, requested: Option<&str>) -> Result<String, ExportError> {
    if let Some(policy) = requested {
        if !is_external_id(&format!("{policy}.component.1-1")) {
            return Err(ExportError::InvalidPolicy(policy.to_owned()));
        }
        return Ok(policy.to_owned());
    }
    let policies: BTreeSet<&str> = pack
        .documents()
        .flat_map(|d| d.traces())
        .filter_map(|t| policy_of(&t.to.value))
        .collect();
    let mut policies: Vec<String> = policies.into_iter().map(str::to_owned).collect();
    match policies.len() {
        0 => Err(ExportError::NoPolicy),
        1 => Ok(policies.remove(0)),
        _ => Err(ExportError::AmbiguousPolicy(policies)),
    }
}

/// The section a document kind is rendered in, if any.
pub fn section_of(kind: Kind) -> Option<SectionId> {
    match kind {
        Kind::Alert | Kind::HealthCheck => Some(SectionId::Monitoring),
        Kind::Runbook => Some(SectionId::Runbooks),
        Kind::Playbook => Some(SectionId::Playbooks),
        Kind::Maintenance => Some(SectionId::Maintenance),
        Kind::Kpi => Some(SectionId::Metrics),
        Kind::Improvement => Some(SectionId::Improvement),
        _ => None,
    }
}

/// Renders the Layer 6 document of `pack` for `policy` (or the only policy it traces to).
pub fn export(pack: &Pack, policy: Option<&str>) -> Result<Export, ExportError> {
    let policy = choose_policy(pack, policy)?;
    let mut sections = BTreeMap::new();
    let mut traceability = BTreeMap::new();
    let names = Names { pack };
    for id in SectionId::ALL {
        let content = match id {
            SectionId::Monitoring => monitoring(pack, &names),
            SectionId::Runbooks => runbooks(pack, &names),
            SectionId::Playbooks => playbooks(pack, &names),
            SectionId::Maintenance => maintenance(pack, &names),
            SectionId::Metrics => metrics(pack, &names),
            SectionId::Improvement => improvement(pack, &names),
        };
        let links = section_traces(pack, &policy, id);
        sections.insert(
            id.key().to_owned(),
            Section {
                title: id.title().to_owned(),
                content,
                rationale_why: rationale_why(pack, id),
                rationale_condition: rationale_condition(&links),
            },
        );
        traceability.insert(id.key().to_owned(), links);
    }
    Ok(Export {
        policy,
        document: L6Document {
            sections,
            traceability,
        },
        coverage: coverage(pack),
    })
}

/// Resolves ids to "Title (`id`)" for readable output.
struct Names<'a> {
    pack: &'a Pack,
}

impl Names<'_> {
    fn name(&self, id: &str) -> String {
        match self.pack.get(id).and_then(Document::title) {
            Some(title) => format!("{title} (`{id}`)"),
            None => format!("`{id}`"),
        }
    }

    fn list<'s>(&self, ids: impl IntoIterator<Item = &'s str>) -> String {
        let names: Vec<String> = ids.into_iter().map(|id| self.name(id)).collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }
}

fn heading(id: SectionId) -> String {
    format!("## {} {}\n\n", id.number(), id.title())
}

fn title_of<'a>(title: &'a Option<String>, id: &'a str) -> &'a str {
    title.as_deref().unwrap_or(id)
}

fn recurrence(r: &Recurrence) -> String {
    let zone = r
        .time_zone
        .as_ref()
        .map_or("UTC".to_owned(), |z| z.value.clone());
    match (&r.cron, &r.rrule) {
        (Some(cron), _) => format!("cron `{}` ({zone})", cron.value),
        (None, Some(rrule)) => format!("RRULE `{}` ({zone})", rrule.value),
        (None, None) => "not scheduled".to_owned(),
    }
}

fn comparison(c: Comparison) -> &'static str {
    match c {
        Comparison::Gt => ">",
        Comparison::Ge => ">=",
        Comparison::Lt => "<",
        Comparison::Le => "<=",
        Comparison::Eq => "==",
        Comparison::Ne => "!=",
    }
}

/// A fenced code block whose fence is longer than any backtick run inside it.
fn code_block(out: &mut String, lang: &str, code: &str) {
    let longest = code.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(out, "{fence}{lang}\n{}\n{fence}", code.trim_end());
}

/// Numbered steps with their commands; `first` continues numbering across playbook phases.
fn steps(out: &mut String, steps: &[Step], first: usize) -> usize {
    let mut n = first;
    for step in steps {
        let _ = writeln!(out, "**Step {n}: {}**\n", step.title);
        if let Some(description) = &step.description {
            let _ = writeln!(out, "{}\n", description.trim());
        }
        if let Some(command) = &step.command {
            code_block(out, "bash", command);
            out.push('\n');
        }
        n += 1;
    }
    n
}

fn bullets(out: &mut String, label: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "**{label}:**");
    for item in items {
        let _ = writeln!(out, "- {}", item.trim());
    }
    out.push('\n');
}

fn monitoring(pack: &Pack, names: &Names<'_>) -> String {
    let id = SectionId::Monitoring;
    let mut out = heading(id);
    let mut n = 0;
    let checks = by_id(pack.health_checks(), |h| &h.id.value);
    let alerts = by_id(pack.alerts(), |a| &a.id.value);
    if checks.is_empty() && alerts.is_empty() {
        out.push_str("The pack defines no HealthCheck or Alert documents.\n");
    }
    for check in checks {
        n += 1;
        health_check(&mut out, id, n, check, names);
    }
    // Playbooks by the alerts that open them, built once (in id order) for all alerts.
    let mut responders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for playbook in by_id(pack.playbooks(), |p| &p.id.value) {
        for alert in &playbook.alerts {
            responders
                .entry(alert.value.as_str())
                .or_default()
                .push(playbook.id.value.as_str());
        }
    }
    for alert in alerts {
        n += 1;
        let playbooks = responders
            .get(alert.id.value.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        alert_block(&mut out, id, n, alert, playbooks, pack, names);
    }
    out
}

fn health_check(out: &mut String, id: SectionId, n: usize, check: &HealthCheck, names: &Names<'_>) {
    let _ = writeln!(
        out,
        "### {}.{n} Health Check: {}\n",
        id.number(),
        title_of(&check.title, &check.id.value)
    );
    if let Some(description) = &check.description {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    let _ = writeln!(out, "**Target:** `{}`\n", check.target);
    let _ = writeln!(
        out,
        "**Collection Frequency:** every {}\n",
        check.interval.value
    );
    if let Some(timeout) = &check.timeout {
        let _ = writeln!(out, "**Timeout:** {}\n", timeout.value);
    }
    let mut metrics = Vec::new();
    if let Some(a) = &check.slo.availability_percent {
        metrics.push(format!("Availability (alert threshold: < {}%)", a.value));
    }
    if let Some(l) = &check.slo.max_latency {
        metrics.push(format!("Response latency (alert threshold: > {})", l.value));
    }
    if let Some(e) = &check.slo.error_rate_percent {
        metrics.push(format!("Error rate (alert threshold: > {}%)", e.value));
    }
    bullets(out, "Metrics to Track (SLO)", &metrics);
    if let Some(owner) = &check.owner {
        let _ = writeln!(out, "**Owner:** {}\n", names.name(&owner.value));
    }
    if let Some(alert) = &check.alert {
        let _ = writeln!(out, "**Raises:** {}\n", names.name(&alert.value));
    }
    out.push_str("---\n\n");
}

fn alert_block(
    out: &mut String,
    id: SectionId,
    n: usize,
    alert: &Alert,
    playbooks: &[&str],
    pack: &Pack,
    names: &Names<'_>,
) {
    let title = title_of(&alert.title, &alert.id.value);
    let _ = writeln!(
        out,
        "### {}.{n} Alert: {} - {title}\n",
        id.number(),
        alert.id.value
    );
    if let Some(description) = &alert.description {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    let _ = writeln!(out, "**Severity:** {}\n", alert.severity.value.as_str());
    if let Some(metric) = &alert.trigger.metric {
        let _ = writeln!(out, "**Metrics to Track:**");
        let _ = writeln!(out, "- `{}`\n", metric.metric);
        let _ = writeln!(out, "**Data Source:** {}\n", metric.source);
        let _ = writeln!(out, "**Trigger Condition:**");
        let held = metric
            .for_duration
            .map(|d| format!(" for {d}"))
            .unwrap_or_default();
        code_block(
            out,
            "text",
            &format!(
                "{} {} {}{held}",
                metric.metric,
                comparison(metric.comparison),
                metric.threshold
            ),
        );
        out.push('\n');
    }
    if let Some(rule) = &alert.trigger.sigma_rule {
        let _ = writeln!(
            out,
            "**Trigger Condition:** Sigma rule `{}` matches an ingested event\n",
            rule.value
        );
    }
    let _ = writeln!(out, "**Alert Routing:**");
    let channels: Vec<String> = alert
        .routing
        .channels
        .iter()
        .map(|c| channel(*c).to_owned())
        .collect();
    let via = if channels.is_empty() {
        String::new()
    } else {
        format!(" via {}", channels.join(", "))
    };
    let _ = writeln!(
        out,
        "- Immediate{via}: {}",
        names.list(alert.routing.notify.iter().map(|r| r.value.as_str()))
    );
    if let Some(policy) = alert
        .escalation_policy
        .as_ref()
        .and_then(|p| pack.escalation_policy(&p.value))
    {
        for step in policy.steps.iter().filter(|s| s.wait.value.as_secs() > 0) {
            let _ = writeln!(
                out,
                "- Escalation (if no ack in {}): {}",
                step.wait.value,
                names.list(step.notify.iter().map(|r| r.value.as_str()))
            );
        }
    }
    out.push('\n');
    let _ = writeln!(out, "**Response SLA:**");
    let _ = writeln!(out, "- Acknowledge: {}", alert.sla.acknowledge.value);
    let _ = writeln!(
        out,
        "- Initial response: {}",
        alert.sla.initial_response.value
    );
    let _ = writeln!(out, "- Resolution: {}\n", alert.sla.resolution.value);
    let remediation = &alert.auto_remediation;
    let runbook = remediation
        .runbook
        .as_ref()
        .map(|r| names.name(&r.value))
        .unwrap_or_default();
    let mode = match remediation.mode {
        RemediationMode::None => "None (requires manual investigation)".to_owned(),
        RemediationMode::Suggest => format!("Suggested to the responder: {runbook}"),
        RemediationMode::Automatic => format!("Automatic: runs {runbook}"),
    };
    let note = remediation
        .note
        .as_ref()
        .map(|n| format!(" — {}", n.trim()))
        .unwrap_or_default();
    let _ = writeln!(out, "**Auto-Remediation:** {mode}{note}\n");
    if !alert.controls.is_empty() {
        let _ = writeln!(
            out,
            "**Monitors controls:** {}\n",
            names.list(alert.controls.iter().map(|c| c.value.as_str()))
        );
    }
    if !playbooks.is_empty() {
        let _ = writeln!(
            out,
            "**Response playbook:** {}\n",
            names.list(playbooks.iter().copied())
        );
    }
    out.push_str("---\n\n");
}

fn channel(kind: ContactKind) -> &'static str {
    match kind {
        ContactKind::Email => "Email",
        ContactKind::Phone => "Phone",
        ContactKind::Sms => "SMS",
        ContactKind::Slack => "Slack",
        ContactKind::Pagerduty => "PagerDuty",
        ContactKind::Webhook => "Webhook",
    }
}

fn runbooks(pack: &Pack, names: &Names<'_>) -> String {
    let id = SectionId::Runbooks;
    let mut out = heading(id);
    let runbooks = by_id(pack.runbooks(), |r| &r.id.value);
    if runbooks.is_empty() {
        out.push_str("The pack defines no Runbook documents.\n");
    }
    for (i, runbook) in runbooks.into_iter().enumerate() {
        runbook_block(&mut out, id, i + 1, runbook, names);
    }
    out
}

fn runbook_block(out: &mut String, id: SectionId, n: usize, r: &Runbook, names: &Names<'_>) {
    let _ = writeln!(
        out,
        "### {}.{n} {} Runbook\n",
        id.number(),
        title_of(&r.title, &r.id.value)
    );
    if let Some(description) = &r.description {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    let _ = writeln!(out, "**Frequency:** {}\n", recurrence(&r.frequency));
    let _ = writeln!(out, "**Owner:** {}\n", names.name(&r.owner.value));
    let _ = writeln!(
        out,
        "**Expected Duration:** {}\n",
        r.expected_duration.value
    );
    bullets(out, "Prerequisites", &r.prerequisites);
    out.push_str("**Procedure:**\n\n");
    steps(out, &r.steps, 1);
    let _ = writeln!(
        out,
        "**Documentation:** record completion in `{}`\n",
        r.completion_record
    );
    if !r.escalation.is_empty() {
        out.push_str("**Escalation:**\n");
        for rule in &r.escalation {
            let _ = writeln!(
                out,
                "- {}: escalate to {}",
                rule.when.trim(),
                names.list(rule.to.iter().map(|t| t.value.as_str()))
            );
        }
        out.push('\n');
    }
    bullets(out, "Success Criteria", &r.success_criteria);
    out.push_str("---\n\n");
}

fn playbooks(pack: &Pack, names: &Names<'_>) -> String {
    let id = SectionId::Playbooks;
    let mut out = heading(id);
    let playbooks = by_id(pack.playbooks(), |p| &p.id.value);
    if playbooks.is_empty() {
        out.push_str("The pack defines no Playbook documents.\n");
    }
    for (i, playbook) in playbooks.into_iter().enumerate() {
        playbook_block(&mut out, id, i + 1, playbook, names);
    }
    out
}

fn playbook_block(out: &mut String, id: SectionId, n: usize, p: &Playbook, names: &Names<'_>) {
    let _ = writeln!(
        out,
        "### {}.{n} {} Playbook\n",
        id.number(),
        title_of(&p.title, &p.id.value)
    );
    if let Some(description) = &p.description {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    bullets(out, "Trigger Conditions", &p.trigger_conditions);
    if !p.alerts.is_empty() {
        let _ = writeln!(
            out,
            "**Opened by alerts:** {}\n",
            names.list(p.alerts.iter().map(|a| a.value.as_str()))
        );
    }
    out.push_str("**Severity Classification:**\n");
    for rule in &p.severity_classification {
        let _ = writeln!(
            out,
            "- **{}:** {}",
            rule.severity.as_str(),
            rule.when.trim()
        );
    }
    out.push('\n');
    if let Some(commander) = &p.incident_commander {
        let _ = writeln!(
            out,
            "**Incident Commander:** {}\n",
            names.name(&commander.value)
        );
    }
    let mut next = 1;
    for (i, phase) in p.phases.iter().enumerate() {
        let _ = writeln!(
            out,
            "---\n\n**Phase {}: {} (T+{} to T+{})**\n",
            i + 1,
            phase.name.value,
            phase.starts_at.value,
            phase.ends_at.value
        );
        next = steps(out, &phase.steps, next);
    }
    if !p.escalation_triggers.is_empty() {
        out.push_str("**Escalation Triggers:**\n");
        for rule in &p.escalation_triggers {
            let _ = writeln!(
                out,
                "- {} → {}",
                rule.when.trim(),
                names.list(rule.to.iter().map(|t| t.value.as_str()))
            );
        }
        out.push('\n');
    }
    bullets(out, "Success Criteria", &p.success_criteria);
    out.push_str("---\n\n");
}

fn maintenance(pack: &Pack, names: &Names<'_>) -> String {
    let id = SectionId::Maintenance;
    let mut out = heading(id);
    let tasks = by_id(pack.maintenance_tasks(), |m| &m.id.value);
    if tasks.is_empty() {
        out.push_str("The pack defines no Maintenance documents.\n");
    }
    for (i, task) in tasks.into_iter().enumerate() {
        maintenance_block(&mut out, id, i + 1, task, names);
    }
    out
}

fn maintenance_block(
    out: &mut String,
    id: SectionId,
    n: usize,
    m: &Maintenance,
    names: &Names<'_>,
) {
    let _ = writeln!(
        out,
        "### {}.{n} {}\n",
        id.number(),
        title_of(&m.title, &m.id.value)
    );
    if let Some(description) = &m.description {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    let _ = writeln!(out, "**Schedule:** {}\n", recurrence(&m.schedule));
    let automation = match m.automation {
        AutomationStatus::Automated => "Fully automated",
        AutomationStatus::SemiAutomated => "Semi-automated",
        AutomationStatus::Manual => "Manual",
    };
    let _ = writeln!(out, "**Automation:** {automation}\n");
    let _ = writeln!(out, "**Owner:** {}\n", names.name(&m.owner.value));
    out.push_str("**Procedure:**\n\n");
    steps(out, &m.procedure, 1);
    bullets(out, "Validation", &m.validation);
    let _ = writeln!(out, "**Rollback:** {}\n", m.rollback.trim());
    let downtime = if m.downtime.as_secs() == 0 {
        "None".to_owned()
    } else {
        m.downtime.to_string()
    };
    let _ = writeln!(out, "**Downtime:** {downtime}\n");
    if !m.notification.is_empty() {
        out.push_str("**Notification:**\n");
        for notice in &m.notification {
            let sign = match notice.timing {
                NoticeTiming::Before => "-",
                NoticeTiming::After => "+",
            };
            let message = notice
                .message
                .as_ref()
                .map(|m| format!(" — {}", m.trim()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- T{sign}{}: {}{message}",
                notice.offset,
                names.list(notice.notify.iter().map(|r| r.value.as_str()))
            );
        }
        out.push('\n');
    }
    out.push_str("---\n\n");
}

fn cadence(c: Cadence) -> &'static str {
    match c {
        Cadence::Realtime => "Real-time",
        Cadence::Hourly => "Hourly",
        Cadence::Daily => "Daily",
        Cadence::Weekly => "Weekly",
        Cadence::Monthly => "Monthly",
        Cadence::Quarterly => "Quarterly",
        Cadence::Annually => "Annually",
    }
}

fn metrics(pack: &Pack, names: &Names<'_>) -> String {
    let id = SectionId::Metrics;
    let mut out = heading(id);
    let kpis = by_id(pack.kpis(), |k| &k.id.value);
    if kpis.is_empty() {
        out.push_str("The pack defines no Kpi documents.\n");
    }
    for (i, kpi) in kpis.into_iter().enumerate() {
        kpi_block(&mut out, id, i + 1, kpi, names);
    }
    out
}

fn kpi_block(out: &mut String, id: SectionId, n: usize, k: &Kpi, names: &Names<'_>) {
    let _ = writeln!(
        out,
        "### {}.{n} {} (KPI `{}`)\n",
        id.number(),
        title_of(&k.title, &k.id.value),
        k.id.value
    );
    if let Some(description) = &k.description {
        let _ = writeln!(out, "**Metric:** {}\n", description.trim());
    }
    out.push_str("**Calculation:**\n");
    code_block(out, "text", &k.calculation);
    out.push('\n');
    let _ = writeln!(out, "**Data Source:** {}\n", k.data_source);
    let unit = match k.unit.as_deref() {
        None => String::new(),
        Some("percent" | "%") => "%".to_owned(),
        Some(unit) => format!(" {unit}"),
    };
    let (better, green_op, yellow_op) = match k.direction {
        KpiDirection::HigherIsBetter => ("higher is better", ">=", ">="),
        KpiDirection::LowerIsBetter => ("lower is better", "<=", "<="),
    };
    let _ = writeln!(out, "**Target:** {}{unit} ({better})\n", k.target.value);
    let _ = writeln!(
        out,
        "**Thresholds:** green {green_op} {g}{unit}, yellow {yellow_op} {y}{unit}, red otherwise\n",
        g = k.thresholds.green.value,
        y = k.thresholds.yellow.value
    );
    let _ = writeln!(out, "**Reporting Frequency:** {}\n", cadence(k.frequency));
    let _ = writeln!(
        out,
        "**Audience:** {}\n",
        names.list(k.audience.iter().map(|a| a.value.as_str()))
    );
    out.push_str("---\n\n");
}

fn improvement(pack: &Pack, names: &Names<'_>) -> String {
    let id = SectionId::Improvement;
    let mut out = heading(id);

    let _ = writeln!(out, "### {}.1 Post-Incident Review Process\n", id.number());
    let mut reviews = 0;
    for playbook in by_id(pack.playbooks(), |p| &p.id.value) {
        for phase in &playbook.phases {
            let name = phase.name.value.to_lowercase();
            if name.contains("post") || name.contains("lessons") || name.contains("review") {
                reviews += 1;
                let steps: Vec<&str> = phase.steps.iter().map(|s| s.title.as_str()).collect();
                let _ = writeln!(
                    out,
                    "- {}: {} (T+{} to T+{}): {}",
                    names.name(&playbook.id.value),
                    phase.name.value,
                    phase.starts_at.value,
                    phase.ends_at.value,
                    steps.join("; ")
                );
            }
        }
    }
    if reviews == 0 {
        out.push_str("No playbook in the pack has a phase after recovery.\n");
    }
    let from_incidents: Vec<&Improvement> = by_id(pack.improvements(), |i| &i.id.value)
        .into_iter()
        .filter(|i| {
            i.traces
                .iter()
                .any(|t| pack.kind_of(&t.to.value) == Some(Kind::Playbook))
        })
        .collect();
    if !from_incidents.is_empty() {
        out.push_str("\nAction items from incidents tracked in the improvement backlog:\n");
        for item in from_incidents {
            let _ = writeln!(out, "- {}", names.name(&item.id.value));
        }
    }
    out.push('\n');

    let _ = writeln!(
        out,
        "### {}.2 Quarterly Security Architecture Review\n",
        id.number()
    );
    let review_runbooks: Vec<&Runbook> = by_id(pack.runbooks(), |r| &r.id.value)
        .into_iter()
        .filter(|r| {
            let title = title_of(&r.title, &r.id.value).to_lowercase();
            title.contains("review") && recurrence(&r.frequency).to_lowercase().contains("quarter")
                || title.contains("architecture")
        })
        .collect();
    for r in &review_runbooks {
        let _ = writeln!(
            out,
            "- Performed as {}, {}",
            names.name(&r.id.value),
            recurrence(&r.frequency)
        );
    }
    let kpis: Vec<&str> = by_id(pack.kpis(), |k| &k.id.value)
        .into_iter()
        .map(|k| k.id.value.as_str())
        .collect();
    let _ = writeln!(
        out,
        "- Metrics review: the quarterly review compares the KPIs of 6-5 with their targets: {}",
        names.list(kpis)
    );
    let _ = writeln!(
        out,
        "- Backlog prioritisation at the quarterly review: Priority Score = Risk Reduction × \
         Implementation Effort (high 3, medium 2, low 1; low effort scores 3). Score ≥ {} is \
         approved automatically, {}–{} needs Security Lead approval, below {} is deferred unless \
         a business driver is recorded (`gatehouse backlog`).\n",
        backlog::AUTO_APPROVE_MIN,
        backlog::LEAD_APPROVAL_MIN,
        backlog::AUTO_APPROVE_MIN - 1,
        backlog::LEAD_APPROVAL_MIN
    );

    let _ = writeln!(out, "### {}.3 Improvement Backlog\n", id.number());
    let items = backlog::prioritise(pack);
    if items.is_empty() {
        out.push_str("The pack defines no Improvement documents.\n");
    } else {
        out.push_str(
            "| ID | Title | Category | Risk Reduction | Effort | Priority Score | Decision | Status | Owner | Due Date |\n\
             |----|-------|----------|----------------|--------|----------------|----------|--------|-------|----------|\n",
        );
        for item in items {
            let decision = match item.decision {
                Decision::AutoApproved => "Auto-approved",
                Decision::NeedsSecurityLead => "Security Lead approval",
                Decision::Deferred => "Deferred",
                Decision::DeferredWithDriver => "Needs driver review",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {decision} | {} | {} | {} |",
                item.id,
                table_cell(&item.title),
                table_cell(item.category.as_deref().unwrap_or("-")),
                item.risk_reduction,
                item.effort,
                item.score,
                item.status.label(),
                table_cell(item.owner.as_deref().unwrap_or("-")),
                item.due.as_deref().unwrap_or("TBD"),
            );
        }
        out.push('\n');
        out.push_str("Status values: Backlog → Approved → In Progress → Completed → Closed.\n");
    }
    out
}

fn table_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The operational framework each section is grounded in, as `003_*` names it. Combined with
/// the standards of the pack's controls the section operates.
fn section_frameworks(id: SectionId) -> &'static str {
    match id {
        SectionId::Monitoring => {
            "NIST SP 800-53 SI-4 (System Monitoring), ISO 27001 A.12.4 (Logging and monitoring), \
             SRE principles (observability, SLIs, SLOs)"
        }
        SectionId::Runbooks => {
            "NIST SP 800-53 AC-2 (Account Management), ISO 27001 A.12.1.1 (Documented operating \
             procedures), ITIL Service Operation"
        }
        SectionId::Playbooks => {
            "NIST SP 800-61 Rev. 2 (Incident Handling Guide), ISO 27001 A.16.1 (Incident \
             management), SANS Incident Handler's Handbook"
        }
        SectionId::Maintenance => {
            "NIST SP 800-40 Rev. 4 (Patch and Vulnerability Management), ISO 27001 A.12.6.1 \
             (Management of technical vulnerabilities), CIS Controls v8 Control 7"
        }
        SectionId::Metrics => {
            "ISO 27001 Clause 9.3 (Management review), SOC 2 CC4.1 (Monitoring activities), \
             NIST CSF measurement"
        }
        SectionId::Improvement => {
            "ISO 27001 Clause 10 (Improvement), ITIL Continual Service Improvement, PDCA cycle"
        }
    }
}

/// Control ids the section's documents operate: alerts' `controls` and any trace to a Control.
fn section_controls(pack: &Pack, id: SectionId) -> BTreeSet<String> {
    let mut controls = BTreeSet::new();
    for document in pack.documents() {
        if section_of(document.kind()) != Some(id) {
            continue;
        }
        if let Document::Alert(alert) = document {
            controls.extend(alert.controls.iter().map(|c| c.value.clone()));
        }
        for trace in document.traces() {
            if pack.kind_of(&trace.to.value) == Some(Kind::Control) {
                controls.insert(trace.to.value.clone());
            }
        }
    }
    controls
}

fn rationale_why(pack: &Pack, id: SectionId) -> String {
    let mut why = section_frameworks(id).to_owned();
    let mut standards = BTreeSet::new();
    for control_id in section_controls(pack, id) {
        if let Some(control) = pack.control(&control_id) {
            for standard in &control.standards {
                standards.insert(format!("{standard} ({control_id})"));
            }
        }
    }
    if !standards.is_empty() {
        let list: Vec<String> = standards.into_iter().collect();
        let _ = write!(why, "; controls operated: {}", list.join(", "));
    }
    why
}

fn rationale_condition(links: &[TraceLink]) -> String {
    if links.is_empty() {
        return "No document of this section traces to the policy's layer 4/5 components yet."
            .to_owned();
    }
    let mut by_rel: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for link in links {
        by_rel
            .entry(link.relationship.as_str())
            .or_default()
            .insert(crate::document::source_section(&link.source));
    }
    let parts: Vec<String> = by_rel
        .into_iter()
        .map(|(rel, sections)| {
            let verb = rel.replace('_', " ");
            let sections: Vec<&str> = sections.into_iter().collect();
            format!("{verb} {}", sections.join(", "))
        })
        .collect();
    let mut condition = parts.join("; ");
    if let Some(first) = condition.get(..1) {
        condition = first.to_uppercase() + &condition[1..];
    }
    condition
}

/// The documents carrying one (source, relationship) trace and the reasons they give.
type Carriers = (BTreeSet<String>, BTreeSet<String>);

/// Traceability entries of a section: traces of its documents to components of `policy`, and
/// to documents rendered in other sections (as that section's component id), grouped by
/// (source, relationship) with the documents that carry them.
fn section_traces(pack: &Pack, policy: &str, id: SectionId) -> Vec<TraceLink> {
    let mut grouped: BTreeMap<(String, &'static str), Carriers> = BTreeMap::new();
    for document in sorted_documents(pack) {
        if section_of(document.kind()) != Some(id) {
            continue;
        }
        for trace in document.traces() {
            let target = trace.to.value.as_str();
            let source = if policy_of(target) == Some(policy) {
                target.to_owned()
            } else if let Some(other) = pack.kind_of(target).and_then(section_of) {
                if other == id {
                    continue;
                }
                format!("{policy}.component.{}", other.key())
            } else {
                continue;
            };
            let entry = grouped.entry((source, trace.rel.as_str())).or_default();
            entry.0.insert(document.id().value.clone());
            if let Some(why) = &trace.why {
                entry.1.insert(why.trim().to_owned());
            }
        }
    }
    grouped
        .into_iter()
        .map(|((source, relationship), (from, whys))| {
            let from: Vec<String> = from.into_iter().collect();
            let because = if whys.is_empty() {
                format!("{} {relationship} {source}", from.join(", "))
            } else {
                whys.into_iter().collect::<Vec<_>>().join(" ")
            };
            TraceLink {
                description: format!("{because} (from {})", from.join(", ")),
                source,
                relationship: relationship.to_owned(),
            }
        })
        .collect()
}

/// The document as `003_*` JSON, pretty-printed, with a trailing newline.
pub fn to_json(document: &L6Document) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(document)?;
    text.push('\n');
    Ok(text)
}

/// The document as one Markdown file: sections, rationale, traceability, coverage.
pub fn to_markdown(export: &Export) -> String {
    let mut out = format!(
        "# SABSA Layer 6: Operational ({})\n\nRendered by gatehouse from the policy pack.\n\n",
        export.policy
    );
    for id in SectionId::ALL {
        let Some(section) = export.document.sections.get(id.key()) else {
            continue;
        };
        out.push_str(&section.content);
        let _ = writeln!(
            out,
            "\n**Rationale (why):** {}\n\n**Rationale (condition):** {}\n",
            section.rationale_why, section.rationale_condition
        );
        let links = export
            .document
            .traceability
            .get(id.key())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if !links.is_empty() {
            out.push_str("| Traces to | Relationship | Description |\n|---|---|---|\n");
            for link in links {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    link.source,
                    link.relationship,
                    table_cell(&link.description)
                );
            }
            out.push('\n');
        }
    }
    out.push_str("## SABSA Matrix Coverage\n\n");
    out.push_str(&export.coverage.markdown());
    out
}

/// The Markdown rendering as a standalone HTML page.
pub fn to_html(export: &Export) -> String {
    let markdown = to_markdown(export);
    let parser = pulldown_cmark::Parser::new_ext(&markdown, pulldown_cmark::Options::ENABLE_TABLES);
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, parser);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>SABSA Layer 6: Operational ({})</title>\n</head>\n<body>\n{body}</body>\n</html>\n",
        html_escape(&export.policy)
    )
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
