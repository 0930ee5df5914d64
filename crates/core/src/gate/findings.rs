//! Findings against the class's thresholds: open SARIF results, vulnerabilities and failing
//! tests, after suppressions, VEX statements and exceptions.
//!
//! Severities, per source:
//!
//! | source | counted | severity |
//! | --- | --- | --- |
//! | SARIF | unsuppressed results with effective level `error` / `warning` / `note` | high / medium / low |
//! | CycloneDX | vulnerabilities by their highest rating; `info`/`none` are not counted | as rated; unrated → critical |
//! | JUnit | test cases that failed or errored | high |
//!
//! Fail-closed counting: facts are aggregates, so where an exception cannot be attributed
//! exactly the count stays an upper bound. A SARIF rule exception removes exactly that rule's
//! unsuppressed results from each level (`unsuppressed_by_rule`); when the log had more rules
//! than the parser lists (`rule_ids_truncated`), at most that rule's results (`rule_ids`), and
//! the rest stays an upper bound; a vulnerability missing from a truncated list is
//! counted at the severity `by_severity` gives it and no VEX statement can clear it; an
//! unrated vulnerability counts as critical, because the gate cannot rank it.
//!
//! A vulnerability is cleared by a CycloneDX analysis state `not_affected`, `false_positive`,
//! `resolved` or `resolved_with_pedigree`, or by an OpenVEX statement `not_affected` / `fixed`
//! naming it (or an alias) for a product that is one of its affected components (same purl, or
//! the purl without version) or that carries a release artifact's digest, or for no product in
//! particular. Any applicable `affected` or `under_investigation` statement wins over a
//! clearing one. The same vulnerability id in several SBOMs is counted once, at its highest
//! severity, and stays open if any occurrence is open.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use gatehouse_evidence::{Facts, VexStatement};
use gatehouse_pack::model::SeverityLevel;

use super::evaluate::{Ctx, exception_reasons, with_evidence};
use super::model::{EvidenceFacts, EvidenceItem, Exception, ExceptionScope, FindingScope};
use super::verdict::{FindingTally, Reason, ReasonLevel};

const SEVERITIES: [SeverityLevel; 4] = [
    SeverityLevel::Critical,
    SeverityLevel::High,
    SeverityLevel::Medium,
    SeverityLevel::Low,
];

/// What one evidence item adds to one severity.
struct Contribution<'a> {
    severity: SeverityLevel,
    count: u64,
    item: &'a EvidenceItem,
    what: String,
}

/// One vulnerability, merged over every SBOM that lists it.
struct Vulnerability<'a> {
    severity: SeverityLevel,
    unrated: bool,
    open: bool,
    /// The first SBOM listing it, and any further ones (rare, so usually no allocation).
    first: &'a EvidenceItem,
    more: Vec<&'a EvidenceItem>,
}

pub(super) fn assess(ctx: &Ctx<'_>) -> (Vec<Reason>, FindingTally) {
    let mut reasons = Vec::new();
    let items = ctx.active_items();
    let exceptions: Vec<&Exception> = ctx
        .usable_exceptions(|scope| matches!(scope, ExceptionScope::Finding { .. }))
        .collect();
    let finding_scopes: Vec<(&FindingScope, &Exception)> = exceptions
        .iter()
        .filter_map(|x| match &x.scope {
            ExceptionScope::Finding { finding } => Some((finding, *x)),
            _ => None,
        })
        .collect();
    let item_exception = |item: &EvidenceItem| {
        finding_scopes.iter().find_map(|(scope, x)| match scope {
            FindingScope::EvidenceItem { evidence } if *evidence == item.id => Some(*x),
            _ => None,
        })
    };

    // VEX statements by the names they cover (vulnerability and aliases, ASCII case ignored),
    // so each vulnerability looks at its own statements only.
    let mut vex: HashMap<Caseless<'_>, Vec<(&VexStatement, &EvidenceItem)>> = HashMap::new();
    for item in &items {
        if let EvidenceFacts::Parsed(Facts::OpenVex(f)) = &item.facts {
            for statement in &f.statement_list {
                let names = statement
                    .vulnerability
                    .iter()
                    .chain(statement.aliases.iter());
                for (index, name) in names.clone().enumerate() {
                    // An alias repeating the name must not list the statement twice.
                    if names
                        .clone()
                        .take(index)
                        .any(|n| n.eq_ignore_ascii_case(name))
                    {
                        continue;
                    }
                    vex.entry(Caseless(name))
                        .or_default()
                        .push((statement, *item));
                }
            }
        }
    }

    let mut contributions: Vec<Contribution<'_>> = Vec::new();
    let listed: usize = items
        .iter()
        .map(|i| match &i.facts {
            EvidenceFacts::Parsed(Facts::CycloneDx(f)) => f.vulnerability_list.len(),
            _ => 0,
        })
        .sum();
    let mut vulnerabilities: HashMap<Cow<'_, str>, Vulnerability<'_>> =
        HashMap::with_capacity(listed);
    // Cleared vulnerabilities grouped by what cleared them (one reason per VEX document,
    // SBOM analysis state or exception, not one per vulnerability).
    type Cleared<'e> = (Vec<(Cow<'e, str>, SeverityLevel)>, Vec<&'e EvidenceItem>);
    let mut cleared_groups: BTreeMap<ClearedBy<'_>, Cleared<'_>> = BTreeMap::new();
    for item in &items {
        let facts = match &item.facts {
            EvidenceFacts::Parsed(facts) => facts,
            EvidenceFacts::Unreadable { reason } => {
                reasons.push(with_evidence(
                    ctx.reason(
                        ReasonLevel::Block,
                        "findings_unknown",
                        "finding_thresholds",
                        format!(
                            "the findings of evidence {} cannot be counted: {reason}",
                            item.id
                        ),
                    ),
                    &[item],
                ));
                continue;
            }
        };
        if matches!(
            facts,
            Facts::Sarif(_) | Facts::CycloneDx(_) | Facts::Junit(_)
        ) && let Some(x) = item_exception(item)
        {
            reasons.push(with_evidence(
                ctx.reason(
                    ReasonLevel::Info,
                    "findings_excepted",
                    "finding_thresholds",
                    format!(
                        "every finding of evidence {} is excepted by {} until {}",
                        item.id, x.id, x.expires_at
                    ),
                ),
                &[item],
            ));
            continue;
        }
        match facts {
            Facts::Sarif(f) => {
                let mut excepted = 0u64;
                // Per-level counts of the excepted rules' unsuppressed results, when the facts
                // have them for every rule (not truncated): then the exception is exact.
                let exact = !f.rule_ids_truncated;
                let mut excepted_levels = [0u64; 3];
                for (scope, x) in &finding_scopes {
                    if let FindingScope::SarifRule { rule_id } = scope
                        && let Some(count) = f.rule_ids.get(rule_id)
                    {
                        excepted = excepted.saturating_add(*count);
                        if let Some(levels) = f.unsuppressed_by_rule.get(rule_id) {
                            excepted_levels[0] = excepted_levels[0].saturating_add(levels.error);
                            excepted_levels[1] = excepted_levels[1].saturating_add(levels.warning);
                            excepted_levels[2] = excepted_levels[2].saturating_add(levels.note);
                        }
                        reasons.push(with_evidence(
                            ctx.reason(
                                ReasonLevel::Info,
                                "findings_excepted",
                                "finding_thresholds",
                                format!(
                                    "{count} result(s) of SARIF rule {rule_id} in {} are \
                                     excepted by {} until {}",
                                    item.id, x.id, x.expires_at
                                ),
                            ),
                            &[item],
                        ));
                    }
                }
                let not_excepted = f.total_results.saturating_sub(excepted);
                let levels = [
                    (SeverityLevel::High, f.unsuppressed_by_level.error, "error"),
                    (
                        SeverityLevel::Medium,
                        f.unsuppressed_by_level.warning,
                        "warning",
                    ),
                    (SeverityLevel::Low, f.unsuppressed_by_level.note, "note"),
                ];
                for (index, (severity, count, level)) in levels.into_iter().enumerate() {
                    let count = if exact {
                        count.saturating_sub(excepted_levels[index])
                    } else {
                        count.min(not_excepted)
                    };
                    if count > 0 {
                        contributions.push(Contribution {
                            severity,
                            count,
                            item,
                            what: if excepted > 0 && exact {
                                format!(
                                    "unsuppressed SARIF {level} result(s) outside the excepted \
                                     rules"
                                )
                            } else if excepted > 0 {
                                format!(
                                    "unsuppressed SARIF {level} result(s) outside the excepted \
                                     rules (an upper bound: the facts do not split levels by rule)"
                                )
                            } else {
                                format!("unsuppressed SARIF {level} result(s)")
                            },
                        });
                    }
                }
            }
            Facts::CycloneDx(f) => {
                let mut listed = [0u64; 4];
                for (index, v) in f.vulnerability_list.iter().enumerate() {
                    let (rank, unrated) = match vulnerability_severity(&v.severity) {
                        Rank::Counted(severity) => (severity, false),
                        Rank::Unrated => (SeverityLevel::Critical, true),
                        Rank::NotCounted => continue,
                    };
                    if let Some(slot) = listed.get_mut(severity_index(rank)) {
                        *slot += 1;
                    }
                    let key: Cow<'_, str> = match &v.id {
                        Some(id) => Cow::Borrowed(id.as_str()),
                        None => Cow::Owned(format!("{}#{}", item.id, index + 1)),
                    };
                    let cleared = clearing(ctx, &key, v, &vex, &finding_scopes);
                    if let Some(cause) = cleared {
                        let group = cleared_groups.entry(cause).or_default();
                        group.0.push((key.clone(), rank));
                        let by = match cause {
                            ClearedBy::Vex { item: vex_item, .. } => Some(vex_item.0),
                            _ => None,
                        };
                        for e in std::iter::once(*item).chain(by) {
                            if !group.1.iter().any(|g| g.id == e.id) {
                                group.1.push(e);
                            }
                        }
                    }
                    let entry = vulnerabilities.entry(key).or_insert(Vulnerability {
                        severity: rank,
                        unrated,
                        open: false,
                        first: item,
                        more: Vec::new(),
                    });
                    // SeverityLevel orders Critical first, so the minimum is the highest.
                    if rank < entry.severity {
                        entry.severity = rank;
                        entry.unrated = unrated;
                    }
                    entry.open |= cleared.is_none();
                    if !std::ptr::eq(entry.first, *item) {
                        entry.more.push(item);
                    }
                }
                // Vulnerabilities beyond a truncated list are known only by count.
                let s = &f.by_severity;
                let totals = [
                    s.critical
                        .saturating_add(s.unknown)
                        .saturating_add(s.no_ratings),
                    s.high,
                    s.medium,
                    s.low,
                ];
                for (severity, (total, seen)) in SEVERITIES.iter().zip(totals.iter().zip(listed)) {
                    let unlisted = total.saturating_sub(seen);
                    if unlisted > 0 {
                        contributions.push(Contribution {
                            severity: *severity,
                            count: unlisted,
                            item,
                            what: "vulnerabilities beyond the listed ones (not VEX-able)".into(),
                        });
                    }
                }
            }
            Facts::Junit(f) => {
                let failing = f.failures.saturating_add(f.errors);
                let mut excepted = 0u64;
                for case in &f.failed_testcases {
                    let exception = finding_scopes.iter().find_map(|(scope, x)| match scope {
                        FindingScope::TestCase { classname, name } => (case.name.as_deref()
                            == Some(name.as_str())
                            && classname
                                .as_deref()
                                .is_none_or(|c| case.classname.as_deref() == Some(c)))
                        .then_some(*x),
                        _ => None,
                    });
                    if let Some(x) = exception {
                        excepted += 1;
                        reasons.push(with_evidence(
                            ctx.reason(
                                ReasonLevel::Info,
                                "findings_excepted",
                                "finding_thresholds",
                                format!(
                                    "failing test {}.{} in {} is excepted by {} until {}",
                                    case.classname.as_deref().unwrap_or("-"),
                                    case.name.as_deref().unwrap_or("-"),
                                    item.id,
                                    x.id,
                                    x.expires_at
                                ),
                            ),
                            &[item],
                        ));
                    }
                }
                let open = failing.saturating_sub(excepted);
                if open > 0 {
                    let names: Vec<String> = f
                        .failed_testcases
                        .iter()
                        .take(3)
                        .map(|c| {
                            format!(
                                "{}.{}",
                                c.classname.as_deref().unwrap_or("-"),
                                c.name.as_deref().unwrap_or("-")
                            )
                        })
                        .collect();
                    contributions.push(Contribution {
                        severity: SeverityLevel::High,
                        count: open,
                        item,
                        what: format!("failing test(s), e.g. {}", names.join(", ")),
                    });
                }
            }
            Facts::Spdx(_) | Facts::OpenVex(_) | Facts::InToto(_) | Facts::Document(_) => {}
        }
    }

    for (cause, (ids, evidence)) in &cleared_groups {
        let shown: Vec<String> = ids
            .iter()
            .take(10)
            .map(|(id, rank)| format!("{id} ({})", rank.as_str().to_ascii_lowercase()))
            .collect();
        reasons.push(with_evidence(
            ctx.reason(
                ReasonLevel::Info,
                "vulnerability_cleared",
                "finding_thresholds",
                format!(
                    "{} vulnerabilit{} cleared, {cause}: {}{}",
                    ids.len(),
                    if ids.len() == 1 { "y" } else { "ies" },
                    shown.join(", "),
                    if ids.len() > shown.len() { ", …" } else { "" }
                ),
            ),
            evidence,
        ));
    }
    // Open vulnerabilities per severity, in id order, with the SBOMs that list them.
    type Open<'v> = (Vec<(&'v str, bool)>, Vec<&'v EvidenceItem>);
    let mut by_severity: BTreeMap<SeverityLevel, Open<'_>> = BTreeMap::new();
    let mut open: Vec<(&Cow<'_, str>, &Vulnerability<'_>)> =
        vulnerabilities.iter().filter(|(_, v)| v.open).collect();
    open.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (id, v) in open {
        let entry = by_severity.entry(v.severity).or_default();
        entry.0.push((id.as_ref(), v.unrated));
        for item in std::iter::once(&v.first).chain(v.more.iter()) {
            if !entry.1.iter().any(|e| std::ptr::eq(*e, *item)) {
                entry.1.push(item);
            }
        }
    }
    let mut tally = FindingTally::default();
    for severity in SEVERITIES {
        let from_items: Vec<&Contribution<'_>> = contributions
            .iter()
            .filter(|c| c.severity == severity)
            .collect();
        let (vulns, vuln_items) = by_severity
            .get(&severity)
            .map(|(ids, items)| (ids.as_slice(), items.as_slice()))
            .unwrap_or((&[], &[]));
        let count = from_items
            .iter()
            .map(|c| c.count)
            .sum::<u64>()
            .saturating_add(u64::try_from(vulns.len()).unwrap_or(u64::MAX));
        match severity {
            SeverityLevel::Critical => tally.critical = count,
            SeverityLevel::High => tally.high = count,
            SeverityLevel::Medium => tally.medium = count,
            SeverityLevel::Low => tally.low = count,
        }
        if count == 0 {
            continue;
        }
        let mut parts: Vec<String> = from_items
            .iter()
            .map(|c| format!("{} {} in {}", c.count, c.what, c.item.id))
            .collect();
        if !vulns.is_empty() {
            let shown: Vec<String> = vulns
                .iter()
                .take(10)
                .map(|(id, unrated)| {
                    if *unrated {
                        format!("{id} (unrated)")
                    } else {
                        (*id).to_owned()
                    }
                })
                .collect();
            parts.push(format!(
                "{} open vulnerabilit{} ({}{})",
                vulns.len(),
                if vulns.len() == 1 { "y" } else { "ies" },
                shown.join(", "),
                if vulns.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        let mut evidence: Vec<&EvidenceItem> = from_items.iter().map(|c| c.item).collect();
        evidence.extend(vuln_items.iter().copied());
        evidence.sort_by(|a, b| a.id.cmp(&b.id));
        evidence.dedup_by(|a, b| a.id == b.id);
        let name = severity.as_str().to_ascii_lowercase();
        let field = format!("finding_thresholds.{name}");
        let reason = match ctx.class.finding_thresholds.max_for(severity) {
            Some(max) if count > u64::from(max) => ctx.reason(
                ReasonLevel::Block,
                "findings_over_threshold",
                field,
                format!(
                    "{count} open {name} finding(s), the class allows {max}: {}",
                    parts.join("; ")
                ),
            ),
            Some(max) => ctx.reason(
                ReasonLevel::Info,
                "findings_within_threshold",
                field,
                format!(
                    "{count} open {name} finding(s), within the class's {max}: {}",
                    parts.join("; ")
                ),
            ),
            None => ctx.reason(
                ReasonLevel::Info,
                "findings_unlimited",
                field,
                format!(
                    "{count} open {name} finding(s); the class sets no limit: {}",
                    parts.join("; ")
                ),
            ),
        };
        reasons.push(with_evidence(reason, &evidence));
    }
    if tally == FindingTally::default() {
        reasons.push(ctx.reason(
            ReasonLevel::Info,
            "no_open_findings",
            "finding_thresholds",
            format!(
                    "no open findings in {} evidence item(s)",
                    items
                        .iter()
                        .filter(|i| matches!(
                            i.facts,
                            EvidenceFacts::Parsed(
                                Facts::Sarif(_) | Facts::CycloneDx(_) | Facts::Junit(_)
                            )
                        ))
                        .count()
                ),
        ));
    }
    exception_reasons(ctx, &mut reasons, |scope| {
        matches!(scope, ExceptionScope::Finding { .. })
    });
    (reasons, tally)
}

enum Rank {
    Counted(SeverityLevel),
    Unrated,
    NotCounted,
}

fn vulnerability_severity(severity: &str) -> Rank {
    let is = |name: &str| severity.eq_ignore_ascii_case(name);
    if is("critical") {
        Rank::Counted(SeverityLevel::Critical)
    } else if is("high") {
        Rank::Counted(SeverityLevel::High)
    } else if is("medium") || is("moderate") {
        Rank::Counted(SeverityLevel::Medium)
    } else if is("low") {
        Rank::Counted(SeverityLevel::Low)
    } else if is("info") || is("none") {
        Rank::NotCounted
    } else {
        Rank::Unrated
    }
}

fn severity_index(severity: SeverityLevel) -> usize {
    match severity {
        SeverityLevel::Critical => 0,
        SeverityLevel::High => 1,
        SeverityLevel::Medium => 2,
        SeverityLevel::Low => 3,
    }
}

/// What cleared a vulnerability; its text is written once per group. Ordered (by evidence id,
/// status, …) so groups are reported in a stable order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ClearedBy<'a> {
    Vex {
        item: ById<'a>,
        status: &'a str,
        justification: Option<&'a str>,
    },
    Analysis(&'a str),
    Exception(&'a str, jiff::Timestamp),
}

impl std::fmt::Display for ClearedBy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Vex {
                item,
                status,
                justification,
            } => {
                write!(f, "{status} per OpenVEX {}", item.0.id)?;
                if let Some(j) = justification {
                    write!(f, " ({j})")?;
                }
                Ok(())
            }
            Self::Analysis(state) => write!(f, "analysis state `{state}` in the SBOM"),
            Self::Exception(id, expires_at) => write!(f, "excepted by {id} until {expires_at}"),
        }
    }
}

/// An evidence item compared by id.
#[derive(Debug, Clone, Copy)]
struct ById<'a>(&'a EvidenceItem);

impl PartialEq for ById<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById<'_> {}

impl PartialOrd for ById<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ById<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}

/// A string compared and hashed with ASCII case ignored (vulnerability ids).
#[derive(Debug, Clone, Copy)]
struct Caseless<'a>(&'a str);

impl PartialEq for Caseless<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for Caseless<'_> {}

impl std::hash::Hash for Caseless<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Lower-case in stack-sized chunks: one hasher call per chunk, not per byte.
        let mut buffer = [0u8; 64];
        for chunk in self.0.as_bytes().chunks(buffer.len()) {
            let lowered = &mut buffer[..chunk.len()];
            lowered.copy_from_slice(chunk);
            lowered.make_ascii_lowercase();
            state.write(lowered);
        }
        state.write_u8(0xff);
    }
}

/// What clears a vulnerability, or `None` when it is open.
fn clearing<'a>(
    ctx: &Ctx<'_>,
    id: &str,
    vulnerability: &'a gatehouse_evidence::VulnerabilityFact,
    vex: &HashMap<Caseless<'_>, Vec<(&'a VexStatement, &'a EvidenceItem)>>,
    finding_scopes: &[(&FindingScope, &'a Exception)],
) -> Option<ClearedBy<'a>> {
    let statements = vex.get(&Caseless(id)).map(Vec::as_slice).unwrap_or(&[]);
    let applies = |statement: &VexStatement| {
        statement.products.is_empty()
            || statement.products.iter().any(|product| {
                vulnerability
                    .affects
                    .iter()
                    .any(|component| product_matches(product, component))
                    || ctx.artifact_hexes.iter().any(|hex| product.contains(hex))
            })
    };
    let is = |s: &VexStatement, names: &[&str]| {
        let status = s.status.as_deref().unwrap_or("");
        names.iter().any(|n| status.eq_ignore_ascii_case(n))
    };
    let mut clearing_statement = None;
    for (statement, item) in statements.iter().filter(|(s, _)| applies(s)) {
        if is(statement, &["affected", "under_investigation"]) {
            // A statement that it is (or may be) affected wins over any clearing one.
            return None;
        }
        if clearing_statement.is_none() && is(statement, &["not_affected", "fixed"]) {
            clearing_statement = Some(ClearedBy::Vex {
                item: ById(item),
                status: statement.status.as_deref().unwrap_or(""),
                justification: statement.justification.as_deref(),
            });
        }
    }
    if clearing_statement.is_some() {
        return clearing_statement;
    }
    if let Some(state) = vulnerability.analysis_state.as_deref()
        && matches!(
            state,
            "not_affected" | "false_positive" | "resolved" | "resolved_with_pedigree"
        )
    {
        return Some(ClearedBy::Analysis(state));
    }
    finding_scopes.iter().find_map(|(scope, x)| match scope {
        FindingScope::Vulnerability { id: excepted } if excepted.eq_ignore_ascii_case(id) => {
            Some(ClearedBy::Exception(x.id.as_str(), x.expires_at))
        }
        _ => None,
    })
}

/// A VEX product names a component when both are the same identifier, or the product is the
/// component's purl without its version (`pkg:npm/lodash` covers `pkg:npm/lodash@4.17.20`).
fn product_matches(product: &str, component: &str) -> bool {
    product == component
        || component
            .strip_prefix(product)
            .is_some_and(|rest| rest.starts_with('@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_without_version_covers_versions() {
        assert!(product_matches("pkg:npm/lodash", "pkg:npm/lodash@4.17.20"));
        assert!(product_matches(
            "pkg:npm/lodash@4.17.20",
            "pkg:npm/lodash@4.17.20"
        ));
        assert!(!product_matches(
            "pkg:npm/lodash",
            "pkg:npm/lodash-es@4.17.20"
        ));
        assert!(!product_matches(
            "pkg:npm/lodash@4.17.21",
            "pkg:npm/lodash@4.17.20"
        ));
    }

    #[test]
    fn unknown_severities_are_unrated_not_ignored() {
        assert!(matches!(vulnerability_severity("unknown"), Rank::Unrated));
        assert!(matches!(
            vulnerability_severity("no_ratings"),
            Rank::Unrated
        ));
        assert!(matches!(vulnerability_severity("bogus"), Rank::Unrated));
        assert!(matches!(vulnerability_severity("info"), Rank::NotCounted));
        assert!(matches!(
            vulnerability_severity("CRITICAL"),
            Rank::Counted(SeverityLevel::Critical)
        ));
    }
}
