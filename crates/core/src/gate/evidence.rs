//! Gate category "evidence": every kind the class requires is attached, readable, trustworthy
//! (attestations verified against the class's trusted keys and SLSA expectations — see
//! `attestation` — and about this release's artifacts) and fresh enough; and nothing
//! attached is unreadable or untrustworthy.

use std::collections::HashMap;

use gatehouse_evidence::Facts;

use super::attestation;
use super::evaluate::{Ctx, exception_reasons, human, with_evidence};
use super::kinds::{self, RequiredKind};
use super::model::{EvidenceFacts, EvidenceItem, ExceptionScope};
use super::verdict::{Reason, ReasonLevel};

/// Why an item cannot be relied on (empty when it can).
fn distrust(ctx: &Ctx<'_>, item: &EvidenceItem) -> Vec<(ReasonLevel, &'static str, String)> {
    let mut problems = Vec::new();
    match &item.facts {
        EvidenceFacts::Unreadable { reason } => problems.push((
            ReasonLevel::Block,
            "evidence_unreadable",
            format!("the facts of evidence {} cannot be read: {reason}", item.id),
        )),
        EvidenceFacts::Parsed(Facts::InToto(facts)) => {
            if facts.envelopes.is_empty() {
                problems.push((
                    ReasonLevel::Block,
                    "attestation_unverified",
                    format!("attestation {} contains no statement", item.id),
                ));
            }
            for (index, envelope) in facts.envelopes.iter().enumerate() {
                problems.extend(attestation::envelope_problems(
                    ctx.class,
                    &item.id,
                    index + 1,
                    envelope,
                ));
            }
            let digests: Vec<&str> = facts
                .subjects
                .iter()
                .filter_map(|s| s.sha256.as_deref())
                .collect();
            if !digests.iter().any(|d| ctx.artifact_hexes.contains(d)) {
                let shown = if digests.is_empty() {
                    "no sha256 subject".to_owned()
                } else {
                    digests
                        .iter()
                        .take(5)
                        .map(|d| format!("sha256:{d}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                problems.push((
                    ReasonLevel::Block,
                    "attestation_subject_mismatch",
                    format!(
                        "attestation {} is about {shown}, none of which is an artifact of \
                         this release",
                        item.id
                    ),
                ));
            }
        }
        EvidenceFacts::Parsed(Facts::CycloneDx(facts)) if !facts.problems.is_empty() => problems
            .push((
                ReasonLevel::Warning,
                "evidence_problems",
                format!(
                    "SBOM {} has schema problems ({}); it does not satisfy a requirement",
                    item.id,
                    facts.problems.join("; ")
                ),
            )),
        EvidenceFacts::Parsed(_) => {}
    }
    problems
}

pub(super) fn assess(ctx: &Ctx<'_>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let state = ctx.state;
    for (index, required) in ctx.class.required_evidence.iter().enumerate() {
        let field = format!("required_evidence[{index}]");
        let name = required.kind.as_str();
        let resolved = kinds::resolve(name);
        let candidates: Vec<&EvidenceItem> = state
            .evidence
            .iter()
            .filter(|e| kinds::satisfies(&e.kind, &resolved))
            .collect();
        if matches!(resolved, RequiredKind::Declared(_)) && candidates.is_empty() {
            reasons.push(ctx.reason(
                ReasonLevel::Block,
                "unknown_evidence_kind",
                format!("{field}.kind"),
                format!(
                    "`{name}` is not an evidence kind gatehouse knows ({}) and no attached \
                     document declares it; attach a document with `--kind {}` or correct the \
                     class",
                    kinds::known_names().join(", "),
                    kinds::normalize(name)
                ),
            ));
            continue;
        }
        let exception = ctx
            .usable_exceptions(|scope| {
                matches!(scope, ExceptionScope::Evidence { kind } if kinds::normalize(kind) == kinds::normalize(name))
            })
            .next();
        let live: Vec<&EvidenceItem> = candidates
            .iter()
            .copied()
            .filter(|e| !ctx.is_superseded(e))
            .collect();
        let trusted: Vec<&EvidenceItem> = live
            .iter()
            .copied()
            .filter(|e| distrust(ctx, e).is_empty())
            .collect();
        let Some(newest) = trusted.iter().copied().max_by_key(|e| e.attached_at) else {
            if let Some(x) = exception {
                reasons.push(ctx.reason(
                    ReasonLevel::Info,
                    "evidence_excepted",
                    field,
                    format!(
                        "no usable `{name}` evidence; excepted by {} until {}",
                        x.id, x.expires_at
                    ),
                ));
            } else if live.is_empty() {
                reasons.push(ctx.reason(
                    ReasonLevel::Pending,
                    "evidence_missing",
                    field,
                    format!(
                        "no `{name}` evidence attached{}",
                        required
                            .description
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                ));
            } else {
                reasons.push(with_evidence(
                    ctx.reason(
                        ReasonLevel::Block,
                        "evidence_untrustworthy",
                        field,
                        format!(
                            "`{name}` evidence is attached but none of it can be relied on \
                             (see the reasons for each item)"
                        ),
                    ),
                    &live,
                ));
            }
            continue;
        };
        let age = ctx.now.duration_since(newest.attached_at);
        let max_age = required.max_age.as_ref().map(|a| a.value.to_signed());
        match max_age {
            Some(max) if age > max => {
                if let Some(x) = exception {
                    reasons.push(with_evidence(
                        ctx.reason(
                            ReasonLevel::Info,
                            "evidence_excepted",
                            format!("{field}.max_age"),
                            format!(
                                "newest `{name}` evidence is {} old (max {}); excepted by {} \
                                 until {}",
                                human(age),
                                human(max),
                                x.id,
                                x.expires_at
                            ),
                        ),
                        &[newest],
                    ));
                } else {
                    reasons.push(with_evidence(
                        ctx.reason(
                            ReasonLevel::Block,
                            "evidence_stale",
                            format!("{field}.max_age"),
                            format!(
                                "newest `{name}` evidence {} was attached {} ago; the class \
                                 accepts at most {}",
                                newest.id,
                                human(age),
                                human(max)
                            ),
                        ),
                        &[newest],
                    ));
                }
            }
            _ => reasons.push(with_evidence(
                ctx.reason(
                    ReasonLevel::Info,
                    "evidence_present",
                    field,
                    format!(
                        "`{name}` evidence {} attached {} ago{}",
                        newest.id,
                        human(age),
                        max_age
                            .map(|m| format!(" (max {})", human(m)))
                            .unwrap_or_default()
                    ),
                ),
                &[newest],
            )),
        }
    }

    // Checks of every attached item, required or not: anything attached that cannot be read
    // or trusted is a problem in its own right.
    let mut first_by_digest: HashMap<&str, &str> = HashMap::new();
    for item in &state.evidence {
        if let Some(target) = &item.supersedes
            && state.evidence_item(target).is_none()
        {
            reasons.push(with_evidence(
                ctx.reason(
                    ReasonLevel::Warning,
                    "evidence_supersedes_unknown",
                    "gate.evidence.supersedes",
                    format!(
                        "evidence {} supersedes {target}, which does not exist",
                        item.id
                    ),
                ),
                &[item],
            ));
        }
        if ctx.is_superseded(item) {
            continue;
        }
        if let Some(first) = first_by_digest.get(item.sha256.as_str()) {
            reasons.push(with_evidence(
                ctx.reason(
                    ReasonLevel::Info,
                    "evidence_duplicate",
                    "gate.evidence.duplicate",
                    format!(
                        "evidence {} has the same content as {first}; counted once",
                        item.id
                    ),
                ),
                &[item],
            ));
            continue;
        }
        first_by_digest.insert(item.sha256.as_str(), item.id.as_str());
        for (level, code, message) in distrust(ctx, item) {
            reasons.push(with_evidence(
                ctx.reason(level, code, "gate.evidence.integrity", message),
                &[item],
            ));
        }
    }
    exception_reasons(ctx, &mut reasons, |scope| {
        matches!(scope, ExceptionScope::Evidence { .. })
    });
    reasons
}
