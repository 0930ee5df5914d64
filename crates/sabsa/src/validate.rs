//! Checks a Layer 6 document produced anywhere (by `gatehouse export sabsa-l6`, by hand, by a
//! language model given `003_*`) against the output schema and every line of the quality
//! checklist in `003_*`.
//!
//! Every finding names the checklist line it breaks, the JSON Pointer of the offending value and
//! its `line:column` in the source. Several checklist lines ask for judgement ("complete
//! markdown", "specific metrics"); those are decided by stated keyword heuristics, reported as
//! heuristic in every output format, and listed in the checklist summary even when they pass,
//! so a reader always knows what was only approximated.

use std::collections::BTreeSet;

use crate::document::{REQUIRED_UPSTREAM, SectionId, source_section};
use crate::json::{self, LineIndex, Member, Node, Value, pointer_token};

/// One line of the `003_*` quality checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    Sections,
    Content,
    Monitoring,
    Runbooks,
    Playbooks,
    Maintenance,
    Metrics,
    Improvement,
    Rationale,
    Frameworks,
    Traceability,
    Json,
}

impl Check {
    pub const ALL: [Check; 12] = [
        Check::Sections,
        Check::Content,
        Check::Monitoring,
        Check::Runbooks,
        Check::Playbooks,
        Check::Maintenance,
        Check::Metrics,
        Check::Improvement,
        Check::Rationale,
        Check::Frameworks,
        Check::Traceability,
        Check::Json,
    ];

    /// Stable rule id used in every output format.
    pub fn id(self) -> &'static str {
        match self {
            Check::Sections => "L6-01",
            Check::Content => "L6-02",
            Check::Monitoring => "L6-03",
            Check::Runbooks => "L6-04",
            Check::Playbooks => "L6-05",
            Check::Maintenance => "L6-06",
            Check::Metrics => "L6-07",
            Check::Improvement => "L6-08",
            Check::Rationale => "L6-09",
            Check::Frameworks => "L6-10",
            Check::Traceability => "L6-11",
            Check::Json => "L6-12",
        }
    }

    /// The checklist line of `003_*`, verbatim.
    pub fn checklist_line(self) -> &'static str {
        match self {
            Check::Sections => "All 6 sections present with correct IDs (6-1 through 6-6)",
            Check::Content => "Each section has complete markdown content",
            Check::Monitoring => {
                "Monitoring section defines specific metrics, thresholds, and SLAs"
            }
            Check::Runbooks => "Operational runbooks include step-by-step procedures with commands",
            Check::Playbooks => {
                "Incident playbooks cover key compromise, data breach, and access failures"
            }
            Check::Maintenance => {
                "Maintenance procedures define schedule, automation, and validation"
            }
            Check::Metrics => "Metrics section includes KPIs with targets and reporting frequency",
            Check::Improvement => {
                "Continuous improvement defines post-incident review and quarterly review processes"
            }
            Check::Rationale => "Both rationale fields populated for each section",
            Check::Frameworks => {
                "Framework references include operational standards (ITIL, SRE, incident handling)"
            }
            Check::Traceability => "Traceability links to Layer 5 sections (5-1, 5-3, 5-4) and 4-5",
            Check::Json => "Valid JSON with proper escaping",
        }
    }

    /// How a check that needs judgement decides, or `None` when it is purely structural.
    pub fn heuristic(self) -> Option<&'static str> {
        match self {
            Check::Sections | Check::Rationale | Check::Traceability => None,
            Check::Content => Some(
                "content of at least 120 characters with a Markdown heading, balanced ``` fences \
                 and no template placeholder ([Markdown with ...], TODO, lorem ipsum)",
            ),
            Check::Monitoring => Some(
                "6-1 content mentions metrics and lists at least one, states a threshold \
                 (a comparison such as `> 100ms`, or 'threshold' with a number) and an SLA \
                 ('SLA', 'SLO', 'acknowledge' or 'response time')",
            ),
            Check::Runbooks => Some(
                "6-2 content has at least two numbered steps ('Step N' or '1.' list items) and \
                 a command (a ``` code block or an inline `code` span)",
            ),
            Check::Playbooks => Some(
                "6-3 content has a Markdown heading for each scenario: a key compromise (key, \
                 credential or secret + compromised/leaked/exposed/stolen), a data breach (breach, \
                 or data + exfiltration/leak/exposure) and an access-control failure \
                 (access/authorization/authentication + failure/bypass/unauthorized/escalation)",
            ),
            Check::Maintenance => Some(
                "6-4 content states a schedule (schedule, cron, daily..annually), automation \
                 (automated/manual) and validation (validate/verify)",
            ),
            Check::Metrics => Some(
                "6-5 content mentions KPIs or metrics, a target, and a reporting frequency \
                 (frequency, real-time, daily, weekly, monthly, quarterly)",
            ),
            Check::Improvement => Some(
                "6-6 content mentions post-incident review (post-incident, post-mortem, lessons \
                 learned) and has a line with both 'quarterly' and 'review'",
            ),
            Check::Frameworks => Some(
                "each section's rationale_why or content names a recognised framework (NIST, \
                 ISO, SOC 2, CIS, ITIL, SRE, SANS, PDCA, COBIT, OWASP, PCI DSS), and the document \
                 names ITIL, SRE and an incident-handling standard (NIST SP 800-61, ISO 27035, \
                 incident handling)",
            ),
            Check::Json => Some(
                "besides strict parsing: a content string holding literal \\n sequences but no \
                 line break was escaped twice",
            ),
        }
    }
}

/// One broken checklist item at one place in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: Check,
    /// JSON Pointer (RFC 6901) of the offending or missing value.
    pub pointer: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// True when the finding comes from the check's heuristic, not from the schema.
    pub heuristic: bool,
}

/// What became of one checklist line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// The check could not run; the reason says which other finding prevents it.
    NotEvaluated(String),
}

#[derive(Debug, Clone)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub outcomes: Vec<(Check, Outcome)>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Validates a Layer 6 document given as raw bytes.
pub fn validate(bytes: &[u8]) -> Report {
    match json::parse_bytes(bytes) {
        Err(err) => {
            let finding = Finding {
                check: Check::Json,
                pointer: String::new(),
                line: err.line,
                column: err.column,
                message: err.message,
                heuristic: false,
            };
            let outcomes = Check::ALL
                .into_iter()
                .map(|check| {
                    let outcome = if check == Check::Json {
                        Outcome::Failed
                    } else {
                        Outcome::NotEvaluated("the document is not valid JSON".to_owned())
                    };
                    (check, outcome)
                })
                .collect();
            Report {
                findings: vec![finding],
                outcomes,
            }
        }
        Ok((src, root)) => {
            let mut v = Validator {
                index: LineIndex::new(&src),
                src: &src,
                findings: Vec::new(),
                not_evaluated: Vec::new(),
            };
            v.run(&root);
            v.finish()
        }
    }
}

struct Validator<'a> {
    src: &'a str,
    index: LineIndex,
    findings: Vec<Finding>,
    not_evaluated: Vec<(Check, String)>,
}

/// A section's content string with where it sits, for the heuristic checks.
struct SectionText<'n> {
    id: SectionId,
    pointer: String,
    node: &'n Node,
    text: String,
}

impl<'a> Validator<'a> {
    fn report(&mut self, check: Check, pointer: &str, offset: usize, message: String) {
        self.push(check, pointer, offset, message, false);
    }

    fn judge(&mut self, check: Check, pointer: &str, offset: usize, message: String) {
        self.push(check, pointer, offset, message, true);
    }

    fn push(
        &mut self,
        check: Check,
        pointer: &str,
        offset: usize,
        message: String,
        heuristic: bool,
    ) {
        let (line, column) = self.index.locate(self.src, offset);
        self.findings.push(Finding {
            check,
            pointer: pointer.to_owned(),
            line,
            column,
            message,
            heuristic,
        });
    }

    fn skip(&mut self, check: Check, reason: String) {
        self.not_evaluated.push((check, reason));
    }

    fn finish(mut self) -> Report {
        self.findings.sort_by_key(|f| (f.line, f.column, f.check));
        let outcomes = Check::ALL
            .into_iter()
            .map(|check| {
                let outcome = if self.findings.iter().any(|f| f.check == check) {
                    Outcome::Failed
                } else if let Some((_, reason)) =
                    self.not_evaluated.iter().find(|(c, _)| *c == check)
                {
                    Outcome::NotEvaluated(reason.clone())
                } else {
                    Outcome::Passed
                };
                (check, outcome)
            })
            .collect();
        Report {
            findings: self.findings,
            outcomes,
        }
    }

    fn run(&mut self, root: &Node) {
        self.duplicate_keys(root, "");
        let Value::Object(_) = &root.value else {
            self.report(
                Check::Sections,
                "",
                root.span.start,
                format!(
                    "the document must be an object with a `sections` member, found {}",
                    root.value.type_name()
                ),
            );
            self.skip_content_checks("the document root is not an object");
            return;
        };
        let texts = self.sections(root);
        self.content(&texts);
        self.section_heuristics(&texts);
        self.frameworks(root, &texts);
        self.traceability(root);
    }

    fn skip_content_checks(&mut self, reason: &str) {
        for check in [
            Check::Content,
            Check::Monitoring,
            Check::Runbooks,
            Check::Playbooks,
            Check::Maintenance,
            Check::Metrics,
            Check::Improvement,
            Check::Rationale,
            Check::Frameworks,
            Check::Traceability,
        ] {
            self.skip(check, reason.to_owned());
        }
    }

    /// Reports keys written twice. Duplicate section ids belong to the sections check and
    /// duplicate traceability keys to the traceability check; any other is a JSON defect,
    /// because most parsers silently keep only the last value.
    fn duplicate_keys(&mut self, node: &Node, pointer: &str) {
        match &node.value {
            Value::Object(members) => {
                for (i, member) in members.iter().enumerate() {
                    let child = format!("{pointer}/{}", pointer_token(&member.key));
                    if let Some(first) = members[..i].iter().find(|m| m.key == member.key) {
                        let (fl, fc) = self.index.locate(self.src, first.key_span.start);
                        let (check, what) = match pointer {
                            "/sections" => (Check::Sections, "duplicate section id"),
                            "/traceability" => (Check::Traceability, "duplicate traceability key"),
                            _ => (Check::Json, "duplicate key"),
                        };
                        self.report(
                            check,
                            &child,
                            member.key_span.start,
                            format!(
                                "{what} `{}` (first at {fl}:{fc}); most parsers keep only the last value",
                                member.key
                            ),
                        );
                    }
                    self.duplicate_keys(&member.value, &child);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.duplicate_keys(item, &format!("{pointer}/{i}"));
                }
            }
            _ => {}
        }
    }

    fn sections<'n>(&mut self, root: &'n Node) -> Vec<SectionText<'n>> {
        let mut texts = Vec::new();
        let Some(sections) = root.get("sections") else {
            self.report(
                Check::Sections,
                "/sections",
                root.span.start,
                "the document has no `sections` object".to_owned(),
            );
            self.skip_content_checks("the document has no `sections` object");
            return texts;
        };
        let Value::Object(members) = &sections.value.value else {
            let hint = if matches!(sections.value.value, Value::Array(_)) {
                " (003_* keys sections by id: {\"6-1\": {...}, ...})"
            } else {
                ""
            };
            self.report(
                Check::Sections,
                "/sections",
                sections.value.span.start,
                format!(
                    "`sections` must be an object keyed by section id, found {}{hint}",
                    sections.value.value.type_name()
                ),
            );
            self.skip_content_checks("`sections` is not an object");
            return texts;
        };
        let mut seen = BTreeSet::new();
        for member in members {
            let pointer = format!("/sections/{}", pointer_token(&member.key));
            let Some(id) = SectionId::from_key(&member.key) else {
                self.report(
                    Check::Sections,
                    &pointer,
                    member.key_span.start,
                    format!(
                        "unknown section id `{}`; Layer 6 has exactly 6-1 through 6-6",
                        member.key
                    ),
                );
                continue;
            };
            if !seen.insert(id) {
                continue; // reported by duplicate_keys
            }
            if let Some(text) = self.section(id, &pointer, member) {
                texts.push(text);
            }
        }
        for id in SectionId::ALL {
            if !seen.contains(&id) {
                self.report(
                    Check::Sections,
                    &format!("/sections/{}", id.key()),
                    sections.value.span.start,
                    format!("section {} ({}) is missing", id.key(), id.title()),
                );
            }
        }
        texts
    }

    fn section<'n>(
        &mut self,
        id: SectionId,
        pointer: &str,
        member: &'n Member,
    ) -> Option<SectionText<'n>> {
        let node = &member.value;
        if !matches!(node.value, Value::Object(_)) {
            self.report(
                Check::Sections,
                pointer,
                node.span.start,
                format!(
                    "section {} must be an object with title, content, rationale_why and \
                     rationale_condition, found {}",
                    id.key(),
                    node.value.type_name()
                ),
            );
            return None;
        }
        match self.string_field(Check::Sections, node, pointer, "title") {
            Some((title, at)) if title != id.title() => self.report(
                Check::Sections,
                &format!("{pointer}/title"),
                at,
                format!(
                    "section {} is titled \"{title}\"; 003_* specifies \"{}\"",
                    id.key(),
                    id.title()
                ),
            ),
            _ => {}
        }
        for field in ["rationale_why", "rationale_condition"] {
            if let Some((text, at)) = self.string_field(Check::Rationale, node, pointer, field)
                && text.trim().is_empty()
            {
                self.report(
                    Check::Rationale,
                    &format!("{pointer}/{field}"),
                    at,
                    format!("`{field}` of section {} is empty", id.key()),
                );
            }
        }
        let (content, _) = self.string_field(Check::Content, node, pointer, "content")?;
        let content_member = node.get("content")?;
        Some(SectionText {
            id,
            pointer: format!("{pointer}/content"),
            node: &content_member.value,
            text: content.to_owned(),
        })
    }

    /// A required string member; reports it missing or of the wrong type under `check`.
    fn string_field<'n>(
        &mut self,
        check: Check,
        object: &'n Node,
        pointer: &str,
        field: &str,
    ) -> Option<(&'n str, usize)> {
        let child = format!("{pointer}/{field}");
        match object.get(field) {
            None => {
                self.report(
                    check,
                    &child,
                    object.span.start,
                    format!("`{field}` is missing"),
                );
                None
            }
            Some(member) => match &member.value.value {
                Value::String(s) => Some((s.as_str(), member.value.span.start)),
                other => {
                    self.report(
                        check,
                        &child,
                        member.value.span.start,
                        format!("`{field}` must be a string, found {}", other.type_name()),
                    );
                    None
                }
            },
        }
    }

    fn content(&mut self, texts: &[SectionText<'_>]) {
        for t in texts {
            let mut problems = Vec::new();
            let chars = t.text.trim().chars().count();
            if chars == 0 {
                self.report(
                    Check::Content,
                    &t.pointer,
                    t.node.span.start,
                    format!("content of section {} is empty", t.id.key()),
                );
                continue;
            }
            if chars < 120 {
                problems.push(format!("only {chars} characters"));
            }
            if !t.text.lines().any(|l| l.trim_start().starts_with('#')) {
                problems.push("no Markdown heading".to_owned());
            }
            let fences = t
                .text
                .lines()
                .filter(|l| l.trim_start().starts_with("```"))
                .count();
            if fences % 2 == 1 {
                problems.push(format!(
                    "{fences} ``` fence lines: a code block is not closed"
                ));
            }
            let lower = t.text.to_lowercase();
            for placeholder in ["[markdown with", "lorem ipsum"] {
                if lower.contains(placeholder) {
                    problems.push(format!("template placeholder \"{placeholder}\""));
                }
            }
            if has_word(&t.text, "TODO") {
                problems.push("TODO marker".to_owned());
            }
            if !problems.is_empty() {
                self.judge(
                    Check::Content,
                    &t.pointer,
                    t.node.span.start,
                    format!(
                        "content of section {} looks incomplete: {}",
                        t.id.key(),
                        problems.join("; ")
                    ),
                );
            }
            if t.text.contains("\\n") && !t.text.contains('\n') {
                self.judge(
                    Check::Json,
                    &t.pointer,
                    t.node.span.start,
                    format!(
                        "content of section {} holds literal \\n sequences and no line break: \
                         it was escaped twice",
                        t.id.key()
                    ),
                );
            }
        }
    }

    fn section_heuristics(&mut self, texts: &[SectionText<'_>]) {
        let checks = [
            (SectionId::Monitoring, Check::Monitoring),
            (SectionId::Runbooks, Check::Runbooks),
            (SectionId::Playbooks, Check::Playbooks),
            (SectionId::Maintenance, Check::Maintenance),
            (SectionId::Metrics, Check::Metrics),
            (SectionId::Improvement, Check::Improvement),
        ];
        for (id, check) in checks {
            let Some(t) = texts.iter().find(|t| t.id == id) else {
                self.skip(
                    check,
                    format!(
                        "section {} is missing or has no string content (see L6-01/L6-02)",
                        id.key()
                    ),
                );
                continue;
            };
            let missing = missing_elements(check, &t.text);
            if !missing.is_empty() {
                self.judge(
                    check,
                    &t.pointer,
                    t.node.span.start,
                    format!(
                        "section {} does not define {}",
                        id.key(),
                        missing.join(", ")
                    ),
                );
            }
        }
    }

    fn frameworks(&mut self, root: &Node, texts: &[SectionText<'_>]) {
        let Some(sections) = root.get("sections") else {
            return;
        };
        let mut whole = String::new();
        for t in texts {
            let why = sections
                .value
                .get(t.id.key())
                .and_then(|m| m.value.get("rationale_why"));
            let why_text = why.and_then(|m| m.value.as_str()).unwrap_or_default();
            let cited = format!("{why_text}\n{}", t.text).to_lowercase();
            if !FRAMEWORKS.iter().any(|f| has_phrase(&cited, f)) {
                let (pointer, at) = match why {
                    Some(m) => (
                        format!("/sections/{}/rationale_why", t.id.key()),
                        m.value.span.start,
                    ),
                    None => (t.pointer.clone(), t.node.span.start),
                };
                self.judge(
                    Check::Frameworks,
                    &pointer,
                    at,
                    format!(
                        "section {} cites no recognised framework in rationale_why or content",
                        t.id.key()
                    ),
                );
            }
            whole.push_str(&cited);
            whole.push('\n');
        }
        if texts.is_empty() {
            self.skip(
                Check::Frameworks,
                "no section has string content".to_owned(),
            );
            return;
        }
        let families: [(&str, &[&str]); 3] = [
            ("ITIL", &["itil"]),
            ("SRE", &["sre", "site reliability"]),
            (
                "an incident-handling standard",
                &["800-61", "27035", "incident handling", "incident handler"],
            ),
        ];
        let missing: Vec<&str> = families
            .iter()
            .filter(|(_, words)| !words.iter().any(|w| has_phrase(&whole, w)))
            .map(|(name, _)| *name)
            .collect();
        if !missing.is_empty() {
            self.judge(
                Check::Frameworks,
                "/sections",
                sections.value.span.start,
                format!(
                    "no section references {} as an operational standard",
                    missing.join(", ")
                ),
            );
        }
    }

    fn traceability(&mut self, root: &Node) {
        // (section id, pointer of the entry, entry node)
        let mut entries: Vec<(SectionId, String, &Node)> = Vec::new();
        let mut arrays: Vec<(SectionId, String, &Node)> = Vec::new();
        if let Some(top) = root.get("traceability") {
            match &top.value.value {
                Value::Object(members) => {
                    for member in members {
                        let pointer = format!("/traceability/{}", pointer_token(&member.key));
                        match SectionId::from_key(&member.key) {
                            Some(id) => arrays.push((id, pointer, &member.value)),
                            None => self.report(
                                Check::Traceability,
                                &pointer,
                                member.key_span.start,
                                format!(
                                    "traceability for unknown section `{}`; keys are 6-1 through 6-6",
                                    member.key
                                ),
                            ),
                        }
                    }
                }
                other => self.report(
                    Check::Traceability,
                    "/traceability",
                    top.value.span.start,
                    format!(
                        "`traceability` must be an object keyed by section id, found {}",
                        other.type_name()
                    ),
                ),
            }
        }
        if let Some(sections) = root.get("sections") {
            for id in SectionId::ALL {
                if let Some(trace) = sections
                    .value
                    .get(id.key())
                    .and_then(|s| s.value.get("traceability"))
                {
                    arrays.push((
                        id,
                        format!("/sections/{}/traceability", id.key()),
                        &trace.value,
                    ));
                }
            }
        }
        for (id, pointer, node) in arrays {
            match &node.value {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        entries.push((id, format!("{pointer}/{i}"), item));
                    }
                }
                other => self.report(
                    Check::Traceability,
                    &pointer,
                    node.span.start,
                    format!(
                        "traceability of section {} must be an array of {{source, relationship, \
                         description}}, found {}",
                        id.key(),
                        other.type_name()
                    ),
                ),
            }
        }

        let mut traced_sections = BTreeSet::new();
        let mut upstream = BTreeSet::new();
        for (id, pointer, entry) in &entries {
            if !matches!(entry.value, Value::Object(_)) {
                self.report(
                    Check::Traceability,
                    pointer,
                    entry.span.start,
                    format!(
                        "a traceability entry must be an object, found {}",
                        entry.value.type_name()
                    ),
                );
                continue;
            }
            let mut complete = true;
            for field in ["source", "relationship", "description"] {
                match self.string_field(Check::Traceability, entry, pointer, field) {
                    Some((text, at)) if text.trim().is_empty() => {
                        complete = false;
                        self.report(
                            Check::Traceability,
                            &format!("{pointer}/{field}"),
                            at,
                            format!("`{field}` is empty"),
                        );
                    }
                    Some(_) => {}
                    None => complete = false,
                }
            }
            if complete {
                traced_sections.insert(*id);
            }
            if let Some(source) = entry.get("source").and_then(|m| m.value.as_str()) {
                upstream.insert(source_section(source).to_owned());
            }
        }

        let anchor = root
            .get("traceability")
            .map_or(root.span.start, |m| m.value.span.start);
        if entries.is_empty() {
            self.report(
                Check::Traceability,
                "/traceability",
                anchor,
                "the document has no traceability entries (a top-level `traceability` object \
                 keyed by section id, or a `traceability` array in each section)"
                    .to_owned(),
            );
            return;
        }
        let missing: Vec<&str> = REQUIRED_UPSTREAM
            .into_iter()
            .filter(|s| !upstream.contains(*s))
            .collect();
        if !missing.is_empty() {
            self.report(
                Check::Traceability,
                "/traceability",
                anchor,
                format!("no traceability entry links to {}", missing.join(", ")),
            );
        }
        let present: BTreeSet<SectionId> = root
            .get("sections")
            .map(|s| {
                SectionId::ALL
                    .into_iter()
                    .filter(|id| s.value.get(id.key()).is_some())
                    .collect()
            })
            .unwrap_or_default();
        for id in present {
            if !traced_sections.contains(&id) {
                self.report(
                    Check::Traceability,
                    &format!("/traceability/{}", id.key()),
                    anchor,
                    format!("section {} has no complete traceability entry", id.key()),
                );
            }
        }
    }
}

/// Frameworks a rationale may cite; matched as whole words/phrases, case-insensitively.
const FRAMEWORKS: [&str; 14] = [
    "nist",
    "iso",
    "soc 2",
    "cis",
    "itil",
    "sre",
    "sans",
    "pdca",
    "cobit",
    "owasp",
    "pci dss",
    "nis2",
    "dora",
    "site reliability",
];

/// Which elements of a section-specific checklist line the content lacks.
fn missing_elements(check: Check, text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    let lines: Vec<&str> = lower.lines().collect();
    let any = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let mut missing = Vec::new();
    let mut need = |ok: bool, what: &'static str| {
        if !ok {
            missing.push(what);
        }
    };
    match check {
        Check::Monitoring => {
            let listed = lines.iter().any(|l| {
                let l = l.trim_start();
                l.starts_with("- ") || l.starts_with("* ") || l.starts_with('|')
            });
            need(
                any(&["metric"]) && listed,
                "specific metrics (a listed metric)",
            );
            let threshold = has_comparison(&lower)
                || lines
                    .iter()
                    .any(|l| l.contains("threshold") && l.chars().any(|c| c.is_ascii_digit()));
            need(threshold, "thresholds (a comparison with a number)");
            need(
                has_word(&lower, "sla")
                    || has_word(&lower, "slo")
                    || has_word(&lower, "slas")
                    || any(&["acknowledge", "response time"]),
                "SLAs",
            );
        }
        Check::Runbooks => {
            let steps = lines
                .iter()
                .filter(|l| {
                    let l = l.trim_start().trim_start_matches(['*', '#', ' ']);
                    starts_with_step(l)
                })
                .count();
            need(
                steps >= 2,
                "step-by-step procedures (two or more numbered steps)",
            );
            let fenced = lines.iter().any(|l| l.trim_start().starts_with("```"));
            let inline = text.split('`').count() >= 3;
            need(
                fenced || inline,
                "commands (a code block or inline `command`)",
            );
        }
        Check::Playbooks => {
            // A scenario is covered when a playbook is headed for it; a passing mention
            // ("decide whether a data breach occurred") inside another playbook is not coverage.
            let headings: Vec<&str> = lines
                .iter()
                .map(|l| l.trim_start())
                .filter(|l| l.starts_with('#'))
                .collect();
            let headed = |test: &dyn Fn(&str) -> bool| headings.iter().any(|h| test(h));
            need(
                headed(&|h| {
                    [
                        "key",
                        "keys",
                        "credential",
                        "credentials",
                        "secret",
                        "secrets",
                    ]
                    .iter()
                    .any(|w| has_word(h, w))
                        && ["compromis", "leak", "expos", "stolen", "theft"]
                            .iter()
                            .any(|w| h.contains(w))
                }),
                "a key compromise playbook",
            );
            need(
                headed(&|h| {
                    h.contains("breach")
                        || h.contains("data")
                            && ["exfiltrat", "leak", "expos"].iter().any(|w| h.contains(w))
                }),
                "a data breach playbook",
            );
            need(
                headed(&|h| {
                    (h.contains("access") || h.contains("authori") || h.contains("authenticat"))
                        && ["fail", "bypass", "unauthori", "escalat", "broken"]
                            .iter()
                            .any(|w| h.contains(w))
                        || h.contains("privilege escalation")
                }),
                "an access-control failure playbook",
            );
        }
        Check::Maintenance => {
            need(
                any(&["schedule", "cron"])
                    || [
                        "daily",
                        "weekly",
                        "monthly",
                        "quarterly",
                        "annually",
                        "yearly",
                    ]
                    .iter()
                    .any(|w| has_word(&lower, w)),
                "a schedule",
            );
            need(any(&["automat", "manual"]), "automation status");
            need(any(&["validat", "verif"]), "validation");
        }
        Check::Metrics => {
            need(
                has_word(&lower, "kpi") || has_word(&lower, "kpis") || any(&["metric"]),
                "KPIs",
            );
            need(any(&["target"]), "targets");
            need(
                any(&["frequency", "real-time"])
                    || ["daily", "weekly", "monthly", "quarterly"]
                        .iter()
                        .any(|w| has_word(&lower, w)),
                "reporting frequency",
            );
        }
        Check::Improvement => {
            need(
                any(&[
                    "post-incident",
                    "post incident",
                    "postmortem",
                    "post-mortem",
                    "lessons learned",
                ]),
                "a post-incident review process",
            );
            need(
                lines
                    .iter()
                    .any(|l| l.contains("quarterly") && l.contains("review")),
                "a quarterly review process",
            );
        }
        _ => {}
    }
    missing
}

/// `step 3` / `step 3:` or an ordered-list item `3.` / `3)`.
fn starts_with_step(line: &str) -> bool {
    let rest = line.strip_prefix("step ").unwrap_or(line);
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    line.starts_with("step ") || matches!(rest[digits..].chars().next(), Some('.' | ')'))
}

/// A threshold written as a comparison: `>100ms`, `>= 5`, `≤ 2`, `< 95%`.
fn has_comparison(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.iter().enumerate().any(|(i, c)| {
        if !matches!(c, '>' | '<' | '≥' | '≤') {
            return false;
        }
        let rest = chars[i + 1..]
            .iter()
            .skip_while(|c| **c == '=' || **c == ' ');
        rest.take(1).any(char::is_ascii_digit)
    })
}

/// `word` occurs in `text` with no ASCII letter or digit on either side. Case-sensitive:
/// callers pass lower-cased text and words (or an exact marker such as `TODO`).
fn has_word(text: &str, word: &str) -> bool {
    has_phrase(text, word)
}

fn has_phrase(hay: &str, needle: &str) -> bool {
    let bytes = hay.as_bytes();
    let mut from = 0;
    while let Some(found) = hay.get(from..).and_then(|rest| rest.find(needle)) {
        let start = from + found;
        let end = start + needle.len();
        let before = start.checked_sub(1).and_then(|i| bytes.get(i));
        let after = bytes.get(end);
        let boundary = |b: Option<&u8>| b.is_none_or(|b| !b.is_ascii_alphanumeric());
        if boundary(before) && boundary(after) {
            return true;
        }
        from = start + 1;
        while !hay.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_need_a_number() {
        assert!(has_comparison("latency >100ms"));
        assert!(has_comparison("rate >= 5%"));
        assert!(!has_comparison("pagerduty -> on-call"));
        assert!(!has_comparison("<br>"));
    }

    #[test]
    fn words_respect_boundaries() {
        assert!(has_word("the sla is 5 min", "sla"));
        assert!(!has_word("slack channel", "sla"));
        assert!(has_phrase("iso 27001 a.12.4", "iso"));
        assert!(!has_phrase("isolate the host", "iso"));
        assert!(has_word("- TODO: write", "TODO"));
        assert!(!has_word("todo list", "TODO"));
    }

    #[test]
    fn steps_are_numbered() {
        assert!(starts_with_step("step 1: export"));
        assert!(starts_with_step("2. revoke"));
        assert!(!starts_with_step("2026 review"));
    }
}
