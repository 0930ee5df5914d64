//! Semantic rules over a parsed pack: what YAML and serde cannot see.
//!
//! [`crate::load`] already runs these rules; [`lint`] is public so a caller holding a [`Pack`]
//! (e.g. one assembled in a test) can check it too. Every rule continues past a finding, so one
//! run reports everything. Rule codes:
//!
//! | code | what |
//! | --- | --- |
//! | `dangling-reference` | an id (role, person, team, schedule, policy, control, alert, runbook, risk model, support tier, trace target) that no document has |
//! | `wrong-reference-kind` | an id that exists but names the wrong kind of document |
//! | `role-without-holder` | an approver step (or risk escalation) names a role no person holds |
//! | `quorum-unreachable` | an approver step needs more approvers than people hold the role |
//! | `empty-approver-path` | a release class nobody can approve |
//! | `invalid-cron`, `invalid-rrule`, `invalid-recurrence` | schedule expressions |
//! | `invalid-time-zone`, `invalid-time`, `invalid-date` | civil time fields |
//! | `sla-order` | acknowledge ≤ initial response ≤ resolution (and tier response ≤ resolution) |
//! | `kpi-threshold-order` | KPI thresholds out of order for their direction |
//! | `overlapping-phases`, `empty-phase` | playbook time boxes |
//! | `score-out-of-range` | improvement scores outside 1–3, tier levels outside 1–3 |
//! | `invalid-trigger`, `invalid-remediation` | alert trigger and remediation shape |
//! | `overlapping-bands`, `invalid-band` | risk model score bands |
//! | `invalid-value` | other out-of-range numbers (zero lengths, percentages over 100) |
//! | `lead-not-member` (warning) | a team lead who is not a member |
//! | `duplicate-entry` (warning) | the same evidence kind, requirement id, member or participant listed twice |
//! | `band-gap` (warning) | risk scores that fall in no band |
//! | `kpi-target-not-green` (warning) | a KPI target its own thresholds would not show green |
//! | `phase-gap` (warning) | the first playbook phase does not start at T+0 |
//! | `trace-cycle` (warning) | a document derives from itself through traces |
//! | `insecure-issuer` | an identity provider's issuer, `jwks_uri` or `redirect_uri` is not `https://` (loopback hosts excepted, for tests) |
//! | `empty-audience` | an identity provider accepts no audience (or an empty one) |
//! | `empty-claim-match` | a claim rule without any `match` entry would admit every token of its issuer |

use std::path::Path;

use crate::diagnostic::{Diagnostic, Location};
use crate::duration::Duration;
use crate::located::Located;
use crate::model::{
    Alert, Document, EscalationPolicy, EscalationRule, HealthCheck, Improvement, Kind, Kpi,
    KpiDirection, Maintenance, Person, Playbook, Recurrence, ReleaseClass, RemediationMode,
    RiskModel, Runbook, ScaleLevel, Schedule, SupportTier, Team,
};
use crate::pack::Pack;
use crate::trace::TraceGraph;

/// Who can own or be accountable for something.
const PARTY: &[Kind] = &[Kind::Person, Kind::Team, Kind::Role];
/// Who can be notified or paged: a party or whoever is on call in a schedule.
const TARGET: &[Kind] = &[Kind::Person, Kind::Team, Kind::Role, Kind::Schedule];

/// Runs every semantic rule over `pack`.
pub fn lint(pack: &Pack) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for entry in pack.entries() {
        let mut cx = Cx {
            pack,
            file: &entry.file,
            out: &mut out,
        };
        match &entry.document {
            Document::Control(_) => {}
            Document::Role(d) => cx.role(d),
            Document::Person(d) => cx.person(d),
            Document::Team(d) => cx.team(d),
            Document::ReleaseClass(d) => cx.release_class(d),
            Document::RiskModel(d) => cx.risk_model(d),
            Document::Alert(d) => cx.alert(d),
            Document::Schedule(d) => cx.schedule(d),
            Document::EscalationPolicy(d) => cx.escalation_policy(d),
            Document::SupportTier(d) => cx.support_tier(d),
            Document::HealthCheck(d) => cx.health_check(d),
            Document::Runbook(d) => cx.runbook(d),
            Document::Playbook(d) => cx.playbook(d),
            Document::Maintenance(d) => cx.maintenance(d),
            Document::Kpi(d) => cx.kpi(d),
            Document::Improvement(d) => cx.improvement(d),
            Document::IdentityProvider(d) => cx.identity_provider(d),
            // Checked with the rule folders on disk: crate::detection.
            Document::EventSource(_) | Document::DetectionRules(_) => {}
        }
        if let Document::Control(d) = &entry.document {
            cx.reference(&d.owner, PARTY, "owner");
        }
    }
    traces(pack, &mut out);
    out
}

fn traces(pack: &Pack, out: &mut Vec<Diagnostic>) {
    let (graph, dangling) = TraceGraph::build(pack);
    for d in dangling {
        let file = pack.file_of(d.from).unwrap_or(Path::new(""));
        let to = &d.trace.to;
        out.push(
            Diagnostic::error(
                "dangling-reference",
                format!("trace target `{}` is not a document in this pack", to.value),
            )
            .at(Location::new(file, to.line, to.column))
            .with_hint(suggest(pack, &to.value, None).unwrap_or_else(|| {
                "trace to a document id, or to an external policy component written \
                 `POLICY-ID.component.SECTION` (e.g. POL-2026-001.component.5-1)"
                    .to_owned()
            })),
        );
    }
    for cycle in graph.derivation_cycles() {
        let ids: Vec<&str> = cycle
            .iter()
            .map(|&n| graph.nodes()[n].id.as_str())
            .collect();
        let Some(first) = ids.first().and_then(|id| pack.get(id)) else {
            continue;
        };
        let file = pack.file_of(&first.id().value).unwrap_or(Path::new(""));
        let at = first
            .traces()
            .iter()
            .find(|t| ids.contains(&t.to.value.as_str()))
            .map_or((first.id().line, first.id().column), |t| {
                (t.to.line, t.to.column)
            });
        out.push(
            Diagnostic::warning(
                "trace-cycle",
                format!("derivation cycle: {} -> {}", ids.join(" -> "), ids[0]),
            )
            .at(Location::new(file, at.0, at.1))
            .with_hint("derives_from/refines should point from the more specific to the more general document"),
        );
    }
}

/// Suggests the closest existing id (of the wanted kinds) for a misspelt reference.
fn suggest(pack: &Pack, wanted: &str, kinds: Option<&[Kind]>) -> Option<String> {
    // Edit distance over every id is quadratic in the worst case; large packs skip it.
    if pack.document_count() > 5_000 {
        return None;
    }
    let best = pack
        .documents()
        .filter(|d| kinds.is_none_or(|k| k.contains(&d.kind())))
        .map(|d| (edit_distance(wanted, &d.id().value), &d.id().value))
        .filter(|(dist, id)| *dist <= (id.len() / 3).max(2))
        .min_by_key(|(dist, _)| *dist)?;
    Some(format!("did you mean `{}`?", best.1))
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn kinds_text(kinds: &[Kind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    match names.as_slice() {
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
        [] => String::new(),
    }
}

fn article(kinds: &[Kind]) -> &'static str {
    let vowel = kinds
        .first()
        .and_then(|k| k.as_str().chars().next())
        .is_some_and(|c| "AEIOU".contains(c));
    if vowel { "an" } else { "a" }
}

struct Cx<'a, 'o> {
    pack: &'a Pack,
    file: &'a Path,
    out: &'o mut Vec<Diagnostic>,
}

impl Cx<'_, '_> {
    fn at<T>(&self, value: &Located<T>) -> Location {
        Location::new(self.file, value.line, value.column)
    }

    fn error<T>(&mut self, code: &'static str, at: &Located<T>, message: String, hint: &str) {
        let d = Diagnostic::error(code, message).at(self.at(at));
        self.out.push(if hint.is_empty() {
            d
        } else {
            d.with_hint(hint)
        });
    }

    fn warning<T>(&mut self, code: &'static str, at: &Located<T>, message: String, hint: &str) {
        let d = Diagnostic::warning(code, message).at(self.at(at));
        self.out.push(if hint.is_empty() {
            d
        } else {
            d.with_hint(hint)
        });
    }

    /// Checks that `id` names a document of one of `kinds`. Returns whether it does.
    fn reference(&mut self, id: &Located<String>, kinds: &[Kind], field: &str) -> bool {
        match self.pack.kind_of(&id.value) {
            Some(kind) if kinds.contains(&kind) => true,
            Some(kind) => {
                self.error(
                    "wrong-reference-kind",
                    id,
                    format!(
                        "`{}` in `{field}` is {} {kind}, expected {} {}",
                        id.value,
                        article(&[kind]),
                        article(kinds),
                        kinds_text(kinds)
                    ),
                    "point the reference at a document of the expected kind",
                );
                false
            }
            None => {
                let hint = suggest(self.pack, &id.value, Some(kinds)).unwrap_or_else(|| {
                    format!(
                        "define a {} with this id, or fix the spelling",
                        kinds_text(kinds)
                    )
                });
                self.error(
                    "dangling-reference",
                    id,
                    format!(
                        "`{field}` refers to `{}`, but no {} has that id",
                        id.value,
                        kinds_text(kinds)
                    ),
                    &hint,
                );
                false
            }
        }
    }

    fn references(&mut self, ids: &[Located<String>], kinds: &[Kind], field: &str) {
        for id in ids {
            self.reference(id, kinds, field);
        }
    }

    fn escalation_rules(&mut self, rules: &[EscalationRule], field: &str) {
        for rule in rules {
            self.references(&rule.to, TARGET, field);
        }
    }

    fn time_zone(&mut self, tz: &Located<String>) {
        if let Err(e) = jiff::tz::TimeZone::get(&tz.value) {
            self.error(
                "invalid-time-zone",
                tz,
                format!("`{}` is not a known time zone: {e}", tz.value),
                "use an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`",
            );
        }
    }

    fn date(&mut self, date: &Located<String>, field: &str) {
        if let Err(e) = date.value.parse::<jiff::civil::Date>() {
            self.error(
                "invalid-date",
                date,
                format!("`{field}` `{}` is not a date: {e}", date.value),
                "write dates as YYYY-MM-DD",
            );
        }
    }

    fn positive(&mut self, d: &Located<Duration>, field: &str) {
        if d.value == Duration::ZERO {
            self.error(
                "invalid-value",
                d,
                format!("`{field}` must be longer than zero"),
                "use a positive duration such as \"15m\" or \"1d\"",
            );
        }
    }

    fn recurrence(&mut self, r: &Recurrence, anchor: &Located<String>, field: &str) {
        match (&r.cron, &r.rrule) {
            (Some(cron), None) => {
                if let Err(e) = cron.value.parse::<croner::Cron>() {
                    self.error(
                        "invalid-cron",
                        cron,
                        format!("`{}` is not a valid cron expression: {e}", cron.value),
                        "cron has 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; e.g. `0 9 15 1,4,7,10 *`",
                    );
                }
            }
            (None, Some(rule)) => {
                let body = rule.value.trim();
                let body = body.strip_prefix("RRULE:").unwrap_or(body);
                // The rrule crate validates a rule against a start; the start does not change
                // whether the rule itself is well-formed.
                let text = format!("DTSTART:20260101T000000Z\nRRULE:{body}");
                if let Err(e) = text.parse::<rrule::RRuleSet>() {
                    self.error(
                        "invalid-rrule",
                        rule,
                        format!("`{}` is not a valid RFC 5545 RRULE: {e}", rule.value),
                        "e.g. `FREQ=MONTHLY;BYDAY=2TU` (second Tuesday) or `FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=15`",
                    );
                }
            }
            (Some(_), Some(rule)) => self.error(
                "invalid-recurrence",
                rule,
                format!("`{field}` has both `cron` and `rrule`"),
                "keep exactly one of them",
            ),
            (None, None) => self.error(
                "invalid-recurrence",
                anchor,
                format!("`{field}` has neither `cron` nor `rrule`"),
                "add `cron: \"0 9 * * 1\"` or `rrule: \"FREQ=WEEKLY;BYDAY=MO\"`",
            ),
        }
        if let Some(tz) = &r.time_zone {
            self.time_zone(tz);
        }
    }

    /// Warns about a value listed twice where each entry should be distinct.
    fn duplicates<'v>(
        &mut self,
        values: impl Iterator<Item = &'v Located<String>>,
        field: &str,
        what: &str,
    ) {
        let mut seen: Vec<&Located<String>> = Vec::new();
        for value in values {
            if let Some(first) = seen.iter().find(|s| s.value == value.value) {
                let hint = format!("first listed at line {}; remove one", first.line);
                self.warning(
                    "duplicate-entry",
                    value,
                    format!("{what} `{}` appears twice in `{field}`", value.value),
                    &hint,
                );
            } else {
                seen.push(value);
            }
        }
    }

    /// Each located duration must not be shorter than the one before it.
    fn ordered(&mut self, code: &'static str, steps: &[(&str, &Located<Duration>)]) {
        for pair in steps.windows(2) {
            let ((a_name, a), (b_name, b)) = (pair[0], pair[1]);
            if b.value < a.value {
                self.error(
                    code,
                    b,
                    format!(
                        "`{b_name}` ({}) is shorter than `{a_name}` ({})",
                        b.value, a.value
                    ),
                    &format!("{a_name} ≤ {b_name} must hold"),
                );
            }
        }
    }

    // --- kinds ---------------------------------------------------------------------------

    /// Permission names must be known: a misspelt one would silently grant nothing.
    fn role(&mut self, d: &crate::model::Role) {
        for permission in d.permissions.iter().flatten() {
            if !crate::model::PERMISSIONS.contains(&permission.as_str()) {
                let hint = crate::model::PERMISSIONS
                    .iter()
                    .min_by_key(|known| edit_distance(known, permission.as_str()))
                    .filter(|known| edit_distance(known, permission.as_str()) <= 3)
                    .map_or_else(
                        || {
                            format!(
                                "known permissions: {}",
                                crate::model::PERMISSIONS.join(", ")
                            )
                        },
                        |known| format!("did you mean `{known}`?"),
                    );
                self.error(
                    "unknown-permission",
                    permission,
                    format!("`{}` is not a gatehouse permission", permission.value),
                    &hint,
                );
            }
        }
    }

    fn person(&mut self, d: &Person) {
        self.references(&d.roles, &[Kind::Role], "roles");
        let email = &d.email.value;
        let valid = email
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'));
        if !valid {
            self.error(
                "invalid-value",
                &d.email,
                format!("`{email}` is not an email address"),
                "write the address as name@example.com",
            );
        }
        if let Some(tz) = &d.time_zone {
            self.time_zone(tz);
        }
    }

    fn team(&mut self, d: &Team) {
        self.references(&d.members, &[Kind::Person], "members");
        self.duplicates(d.members.iter(), "members", "member");
        if let Some(lead) = &d.lead
            && self.reference(lead, &[Kind::Person], "lead")
            && !d.members.iter().any(|m| m.value == lead.value)
        {
            self.warning(
                "lead-not-member",
                lead,
                format!("team lead `{}` is not in `members`", lead.value),
                "add the lead to members",
            );
        }
        if let Some(s) = &d.schedule {
            self.reference(s, &[Kind::Schedule], "schedule");
        }
        if let Some(p) = &d.escalation_policy {
            self.reference(p, &[Kind::EscalationPolicy], "escalation_policy");
        }
    }

    fn role_holders(&self, role: &str) -> usize {
        self.pack.holders_of(role).count()
    }

    fn release_class(&mut self, d: &ReleaseClass) {
        if d.approver_path.is_empty() {
            self.error(
                "empty-approver-path",
                &d.id,
                format!("release class `{}` has no approver steps", d.id.value),
                "add at least one `{role: …, quorum: 1}` step; releases must not rely on implied approval",
            );
        }
        for step in &d.approver_path {
            if !self.reference(&step.role, &[Kind::Role], "approver_path.role") {
                continue;
            }
            let holders = self.role_holders(&step.role.value);
            if step.quorum.value == 0 {
                self.error(
                    "invalid-value",
                    &step.quorum,
                    "quorum must be at least 1".to_owned(),
                    "set quorum to 1 or more",
                );
            } else if holders == 0 {
                self.error(
                    "role-without-holder",
                    &step.role,
                    format!(
                        "approver step names role `{}`, which no person holds; releases of class `{}` could never be approved",
                        step.role.value, d.id.value
                    ),
                    &format!("add `{}` to the `roles` of at least one Person", step.role.value),
                );
            } else if u64::from(step.quorum.value) > holders as u64 {
                self.error(
                    "quorum-unreachable",
                    &step.quorum,
                    format!(
                        "quorum {} needs more approvers than the {holders} person(s) holding `{}`",
                        step.quorum.value, step.role.value
                    ),
                    "lower the quorum or give the role to more people",
                );
            }
        }
        self.duplicates(
            d.required_evidence.iter().map(|e| &e.kind),
            "required_evidence",
            "evidence kind",
        );
        self.duplicates(
            d.security_requirements.iter().map(|r| &r.id),
            "security_requirements",
            "requirement id",
        );
        for requirement in &d.security_requirements {
            if let Some(control) = &requirement.control {
                self.reference(control, &[Kind::Control], "security_requirements.control");
            }
        }
        for evidence in &d.required_evidence {
            if let Some(age) = &evidence.max_age {
                self.positive(age, "max_age");
            }
        }
        if let Some(risk) = &d.delegated_risk {
            if let Some(model) = &risk.risk_model
                && self.reference(model, &[Kind::RiskModel], "delegated_risk.risk_model")
                && let Some(m) = self.pack.risk_model(&model.value)
            {
                let max = max_value(&m.likelihood).saturating_mul(max_value(&m.impact));
                if risk.max_score.value > max {
                    self.warning(
                        "invalid-value",
                        &risk.max_score,
                        format!(
                            "max_score {} is above the highest score {max} of risk model `{}`: every risk is delegated",
                            risk.max_score.value, model.value
                        ),
                        "lower max_score so that high risks escalate",
                    );
                }
            }
            if self.reference(
                &risk.escalate_to,
                &[Kind::Role],
                "delegated_risk.escalate_to",
            ) && self.role_holders(&risk.escalate_to.value) == 0
            {
                self.error(
                    "role-without-holder",
                    &risk.escalate_to,
                    format!(
                        "risks above the threshold escalate to role `{}`, which no person holds",
                        risk.escalate_to.value
                    ),
                    "give the role to at least one Person",
                );
            }
        }
        if let Some(emergency) = &d.emergency {
            self.positive(&emergency.retrospective_within, "retrospective_within");
            if let Some(role) = &emergency.retrospective_role {
                self.reference(role, &[Kind::Role], "emergency.retrospective_role");
            }
        }
        if let Some(attestation) = &d.attestation {
            self.attestation(d, attestation);
        }
    }

    /// Shape checks of a class's trusted attestation keys. Whether a key really holds an
    /// Ed25519, P-256 or RSA public key is decided where the crypto lives (the gate), which
    /// blocks naming the key; the pack crate stays free of crypto dependencies.
    fn attestation(&mut self, d: &ReleaseClass, a: &crate::model::AttestationPolicy) {
        self.duplicates(a.keys.iter().map(|k| &k.id), "attestation.keys", "key id");
        for key in &a.keys {
            let text = key.public_key.value.trim();
            let pem = text.starts_with("-----BEGIN PUBLIC KEY-----")
                && text.ends_with("-----END PUBLIC KEY-----");
            let base64 = !text.is_empty()
                && text.len() % 4 == 0
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
            if text.contains("PRIVATE KEY") {
                self.error(
                    "invalid-value",
                    &key.public_key,
                    format!(
                        "attestation key `{}` is a private key; a pack holds public keys only",
                        key.id.value
                    ),
                    "remove it from the pack now and rotate it; put the matching PUBLIC KEY here",
                );
            } else if !pem && !base64 {
                self.error(
                    "invalid-value",
                    &key.public_key,
                    format!(
                        "attestation key `{}` is neither a PEM PUBLIC KEY block nor base64",
                        key.id.value
                    ),
                    "paste the PEM from `cosign public-key` / `openssl pkey -pubout`, or base64 of a raw Ed25519 key",
                );
            }
        }
        if a.keys.is_empty() {
            self.warning(
                "invalid-value",
                &d.id,
                format!(
                    "release class `{}` has an `attestation` block without keys: no attestation can be verified, so none counts as evidence",
                    d.id.value
                ),
                "add the public key(s) your build signs attestations with under `attestation.keys`",
            );
        }
        self.duplicates(
            a.builder_ids.iter(),
            "attestation.builder_ids",
            "builder id",
        );
        self.duplicates(
            a.source_repositories.iter(),
            "attestation.source_repositories",
            "source repository",
        );
    }

    fn risk_model(&mut self, d: &RiskModel) {
        for (name, scale) in [("likelihood", &d.likelihood), ("impact", &d.impact)] {
            if scale.is_empty() {
                self.error(
                    "invalid-value",
                    &d.id,
                    format!("`{name}` scale is empty"),
                    "list at least one level, e.g. `- { value: 1, label: Rare }`",
                );
            }
            for (i, level) in scale.iter().enumerate() {
                if level.value.value == 0 {
                    self.error(
                        "invalid-value",
                        &level.value,
                        format!("`{name}` values start at 1"),
                        "number scale levels 1, 2, 3, …",
                    );
                }
                if scale[..i]
                    .iter()
                    .any(|l| l.value.value == level.value.value)
                {
                    self.error(
                        "invalid-value",
                        &level.value,
                        format!("`{name}` value {} appears twice", level.value.value),
                        "give each level a distinct value",
                    );
                }
            }
        }
        let mut bands: Vec<_> = d.bands.iter().collect();
        for band in &bands {
            if band.min.value > band.max.value {
                self.error(
                    "invalid-band",
                    &band.max,
                    format!(
                        "band `{}` has max {} below min {}",
                        band.name, band.max.value, band.min.value
                    ),
                    "swap min and max",
                );
            }
        }
        bands.sort_by_key(|b| b.min.value);
        // Every score likelihood × impact can produce must land in a band, or a risk could
        // not be named (and gated) at all.
        let highest = max_value(&d.likelihood).saturating_mul(max_value(&d.impact));
        let mut covered_to = 0u32;
        // Inverted bands are reported above; counting them would invent gaps.
        for band in bands.iter().filter(|b| b.min.value <= b.max.value) {
            if band.min.value > covered_to.saturating_add(1) {
                self.warning(
                    "band-gap",
                    &band.min,
                    format!(
                        "scores {}–{} fall in no band",
                        covered_to + 1,
                        band.min.value - 1
                    ),
                    "make each band start where the previous one ends",
                );
            }
            covered_to = covered_to.max(band.max.value);
        }
        if covered_to < highest
            && let Some(last) = bands.iter().max_by_key(|b| b.max.value)
        {
            self.warning(
                "band-gap",
                &last.max,
                format!("scores {}–{highest} fall in no band", covered_to + 1),
                "extend the last band to the highest possible score",
            );
        }
        for pair in bands.windows(2) {
            if pair[1].min.value <= pair[0].max.value {
                self.error(
                    "overlapping-bands",
                    &pair[1].min,
                    format!(
                        "band `{}` starts at {} inside band `{}` ({}–{})",
                        pair[1].name,
                        pair[1].min.value,
                        pair[0].name,
                        pair[0].min.value,
                        pair[0].max.value
                    ),
                    "each score must fall in exactly one band",
                );
            }
        }
    }

    fn alert(&mut self, d: &Alert) {
        match (&d.trigger.sigma_rule, &d.trigger.metric) {
            (Some(_), None) | (None, Some(_)) => {}
            (Some(rule), Some(_)) => self.error(
                "invalid-trigger",
                rule,
                "trigger has both `sigma_rule` and `metric`".to_owned(),
                "keep exactly one; write two alerts for two conditions",
            ),
            (None, None) => self.error(
                "invalid-trigger",
                &d.id,
                format!("alert `{}` has no trigger", d.id.value),
                "set `trigger.sigma_rule` or `trigger.metric`",
            ),
        }
        self.references(&d.routing.notify, TARGET, "routing.notify");
        if d.routing.notify.is_empty() {
            self.error(
                "invalid-value",
                &d.id,
                "`routing.notify` is empty: nobody is paged".to_owned(),
                "add a schedule, team, person or role to `routing.notify`",
            );
        }
        if let Some(p) = &d.escalation_policy {
            self.reference(p, &[Kind::EscalationPolicy], "escalation_policy");
        }
        self.ordered(
            "sla-order",
            &[
                ("acknowledge", &d.sla.acknowledge),
                ("initial_response", &d.sla.initial_response),
                ("resolution", &d.sla.resolution),
            ],
        );
        let remediation = &d.auto_remediation;
        match (remediation.mode, &remediation.runbook) {
            (RemediationMode::None, _) => {}
            (_, Some(runbook)) => {
                self.reference(runbook, &[Kind::Runbook], "auto_remediation.runbook");
            }
            (mode, None) => self.error(
                "invalid-remediation",
                &d.id,
                format!(
                    "auto_remediation mode `{}` needs a `runbook`",
                    if mode == RemediationMode::Automatic {
                        "automatic"
                    } else {
                        "suggest"
                    }
                ),
                "set `auto_remediation.runbook`, or use `mode: none`",
            ),
        }
        self.references(&d.controls, &[Kind::Control], "controls");
    }

    fn schedule(&mut self, d: &Schedule) {
        self.time_zone(&d.time_zone);
        let rotation = &d.rotation;
        self.references(
            &rotation.participants,
            &[Kind::Person],
            "rotation.participants",
        );
        self.duplicates(
            rotation.participants.iter(),
            "rotation.participants",
            "participant",
        );
        if rotation.participants.is_empty() {
            self.error(
                "invalid-value",
                &d.id,
                "rotation has no participants".to_owned(),
                "add person ids to `rotation.participants`",
            );
        }
        self.positive(&rotation.length, "rotation.length");
        if let Err(e) = rotation.handoff_time.value.parse::<jiff::civil::Time>() {
            self.error(
                "invalid-time",
                &rotation.handoff_time,
                format!(
                    "handoff_time `{}` is not a time of day: {e}",
                    rotation.handoff_time.value
                ),
                "write HH:MM, e.g. 09:00",
            );
        }
        self.date(&rotation.start_date, "rotation.start_date");
        for o in &d.overrides {
            self.reference(&o.person, &[Kind::Person], "overrides.person");
            let start = self.datetime(&o.start, "start");
            let end = self.datetime(&o.end, "end");
            if let (Some(start), Some(end)) = (start, end)
                && end <= start
            {
                self.error(
                    "invalid-value",
                    &o.end,
                    format!(
                        "override ends ({}) before it starts ({})",
                        o.end.value, o.start.value
                    ),
                    "end must be after start",
                );
            }
        }
    }

    fn datetime(&mut self, v: &Located<String>, field: &str) -> Option<jiff::civil::DateTime> {
        match v.value.parse::<jiff::civil::DateTime>() {
            Ok(dt) => Some(dt),
            Err(e) => {
                self.error(
                    "invalid-time",
                    v,
                    format!("`{field}` `{}` is not a local date-time: {e}", v.value),
                    "write YYYY-MM-DDTHH:MM in the schedule's time zone",
                );
                None
            }
        }
    }

    fn escalation_policy(&mut self, d: &EscalationPolicy) {
        if d.steps.is_empty() {
            self.error(
                "invalid-value",
                &d.id,
                "escalation policy has no steps".to_owned(),
                "add at least one `{wait: 0, notify: [...]}` step",
            );
        }
        for step in &d.steps {
            self.references(&step.notify, TARGET, "steps.notify");
        }
    }

    fn support_tier(&mut self, d: &SupportTier) {
        if !(1..=3).contains(&d.level.value) {
            self.error(
                "score-out-of-range",
                &d.level,
                format!("support level {} is outside 1–3", d.level.value),
                "L1 = 1, L2 = 2, L3 = 3",
            );
        }
        self.reference(&d.team, &[Kind::Team], "team");
        self.ordered(
            "sla-order",
            &[
                ("response_time", &d.response_time),
                ("resolution_time", &d.resolution_time),
            ],
        );
        if let Some(next) = &d.next_tier
            && self.reference(next, &[Kind::SupportTier], "next_tier")
            && let Some(tier) = self.pack.support_tier(&next.value)
            && tier.level.value <= d.level.value
        {
            self.error(
                "invalid-value",
                next,
                format!(
                    "next_tier `{}` is level {}, not above this tier's level {}",
                    next.value, tier.level.value, d.level.value
                ),
                "escalation goes up: L1 → L2 → L3",
            );
        }
    }

    fn health_check(&mut self, d: &HealthCheck) {
        self.positive(&d.interval, "interval");
        if let Some(timeout) = &d.timeout
            && timeout.value > d.interval.value
        {
            self.error(
                "invalid-value",
                timeout,
                format!(
                    "timeout {} is longer than the interval {}",
                    timeout.value, d.interval.value
                ),
                "a probe must time out before the next one starts",
            );
        }
        for (name, value) in [
            ("availability_percent", &d.slo.availability_percent),
            ("error_rate_percent", &d.slo.error_rate_percent),
        ] {
            if let Some(v) = value
                && !(0.0..=100.0).contains(&v.value)
            {
                self.error(
                    "invalid-value",
                    v,
                    format!("`{name}` {} is not a percentage", v.value),
                    "percentages are between 0 and 100",
                );
            }
        }
        if let Some(alert) = &d.alert {
            self.reference(alert, &[Kind::Alert], "alert");
        }
        if let Some(owner) = &d.owner {
            self.reference(owner, PARTY, "owner");
        }
    }

    fn runbook(&mut self, d: &Runbook) {
        self.recurrence(&d.frequency, &d.id, "frequency");
        self.reference(&d.owner, PARTY, "owner");
        self.positive(&d.expected_duration, "expected_duration");
        if d.steps.is_empty() {
            self.error(
                "invalid-value",
                &d.id,
                "runbook has no steps".to_owned(),
                "add at least one `{title: …}` step",
            );
        }
        self.escalation_rules(&d.escalation, "escalation.to");
    }

    fn playbook(&mut self, d: &Playbook) {
        self.references(&d.alerts, &[Kind::Alert], "alerts");
        if let Some(commander) = &d.incident_commander {
            self.reference(commander, TARGET, "incident_commander");
        }
        self.escalation_rules(&d.escalation_triggers, "escalation_triggers.to");
        for phase in &d.phases {
            if phase.ends_at.value <= phase.starts_at.value {
                self.error(
                    "empty-phase",
                    &phase.ends_at,
                    format!(
                        "phase `{}` ends at T+{} but starts at T+{}",
                        phase.name.value, phase.ends_at.value, phase.starts_at.value
                    ),
                    "ends_at must be after starts_at",
                );
            }
        }
        let mut phases: Vec<_> = d.phases.iter().collect();
        phases.sort_by_key(|p| p.starts_at.value);
        if let Some(first) = phases.first()
            && first.starts_at.value != Duration::ZERO
        {
            self.warning(
                "phase-gap",
                &first.starts_at,
                format!(
                    "the first phase starts at T+{}, not T+0",
                    first.starts_at.value
                ),
                "time boxes are measured from detection; start the first phase at 0",
            );
        }
        for pair in phases.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.starts_at.value < a.ends_at.value {
                self.error(
                    "overlapping-phases",
                    &b.starts_at,
                    format!(
                        "phase `{}` starts at T+{}, before phase `{}` ends at T+{}",
                        b.name.value, b.starts_at.value, a.name.value, a.ends_at.value
                    ),
                    "phases are consecutive time boxes; start this one when the previous ends",
                );
            }
        }
    }

    fn maintenance(&mut self, d: &Maintenance) {
        self.recurrence(&d.schedule, &d.id, "schedule");
        self.reference(&d.owner, PARTY, "owner");
        for notice in &d.notification {
            self.references(&notice.notify, TARGET, "notification.notify");
        }
    }

    fn kpi(&mut self, d: &Kpi) {
        let (green, yellow) = (&d.thresholds.green, &d.thresholds.yellow);
        let in_order = match d.direction {
            KpiDirection::HigherIsBetter => green.value > yellow.value,
            KpiDirection::LowerIsBetter => green.value < yellow.value,
        };
        if !in_order {
            let (relation, example) = match d.direction {
                KpiDirection::HigherIsBetter => ("above", "green: 100, yellow: 95"),
                KpiDirection::LowerIsBetter => ("below", "green: 1, yellow: 5"),
            };
            self.error(
                "kpi-threshold-order",
                yellow,
                format!(
                    "with direction {}, green ({}) must be {relation} yellow ({})",
                    match d.direction {
                        KpiDirection::HigherIsBetter => "higher_is_better",
                        KpiDirection::LowerIsBetter => "lower_is_better",
                    },
                    green.value,
                    yellow.value
                ),
                &format!("e.g. {example}"),
            );
        } else if d.status(d.target.value) != crate::model::KpiStatus::Green {
            self.warning(
                "kpi-target-not-green",
                &d.target,
                format!("target {} would be shown as not green", d.target.value),
                "the target should lie in the green band",
            );
        }
        self.references(&d.audience, PARTY, "audience");
    }

    fn improvement(&mut self, d: &Improvement) {
        for (name, score) in [("risk_reduction", &d.risk_reduction), ("effort", &d.effort)] {
            if !(1..=3).contains(&score.value) {
                self.error(
                    "score-out-of-range",
                    score,
                    format!("`{name}` is {}, outside 1–3", score.value),
                    "scores are 1 (low), 2 (medium) or 3 (high); effort scores 3 for the least effort",
                );
            }
        }
        if let Some(owner) = &d.owner {
            self.reference(owner, PARTY, "owner");
        }
        if let Some(due) = &d.due {
            self.date(due, "due");
        }
    }
}

impl Cx<'_, '_> {
    fn identity_provider(&mut self, d: &crate::model::IdentityProvider) {
        self.secure_url(&d.issuer, "issuer");
        if let Some(uri) = &d.jwks_uri {
            self.secure_url(uri, "jwks_uri");
        }
        if let Some(uri) = &d.redirect_uri {
            self.secure_url(uri, "redirect_uri");
        }
        if d.audiences.is_empty() {
            self.error(
                "empty-audience",
                &d.id,
                format!("identity provider `{}` accepts no audience", d.id.value),
                "list the `aud` values tokens for gatehouse carry, e.g. `audiences: [gatehouse]`; without one, a token minted for any other service would be accepted",
            );
        }
        for aud in d.audiences.iter().filter(|a| a.value.trim().is_empty()) {
            self.error(
                "empty-audience",
                aud,
                "an audience is empty".to_owned(),
                "write the `aud` value tokens for gatehouse carry",
            );
        }
        if d.algorithms.is_empty() {
            self.error(
                "invalid-value",
                &d.id,
                format!(
                    "identity provider `{}` allows no signing algorithm",
                    d.id.value
                ),
                "omit `algorithms` for the default [RS256, ES256, EdDSA]",
            );
        }
        if d.max_clock_skew.value > MAX_CLOCK_SKEW {
            self.error(
                "invalid-value",
                &d.max_clock_skew,
                format!("`max_clock_skew` is {}, more than 5m", d.max_clock_skew.value),
                "a larger skew keeps expired tokens valid for longer; fix the clocks instead (60s is the default)",
            );
        }
        for rule in &d.rules {
            self.references(&rule.roles, &[Kind::Role], "roles");
            if rule.matches.is_empty() {
                self.error(
                    "empty-claim-match",
                    &d.id,
                    format!(
                        "a claim rule of `{}` has an empty `match`, so it admits every token the issuer signs",
                        d.id.value
                    ),
                    "match at least one claim, e.g. `repository: acme/payments`",
                );
            }
        }
    }

    /// Tokens and keys fetched over plain HTTP could be swapped by anyone on the path.
    fn secure_url(&mut self, url: &Located<String>, field: &str) {
        if !is_secure_url(&url.value) {
            self.error(
                "insecure-issuer",
                url,
                format!("`{field}` `{}` is not an https:// URL", url.value),
                "use https:// (plain http is accepted only for loopback hosts such as 127.0.0.1, for tests)",
            );
        }
    }
}

/// The largest `max_clock_skew` an identity provider may set.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Whether `url` is `https://…`, or `http://` to a loopback host.
pub fn is_secure_url(url: &str) -> bool {
    let scheme = |name: &str| {
        url.get(..name.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(name))
    };
    if scheme("https://") && url.len() > "https://".len() {
        return true;
    }
    if !scheme("http://") {
        return false;
    }
    let rest = &url["http://".len()..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn max_value(scale: &[ScaleLevel]) -> u32 {
    scale.iter().map(|l| l.value.value).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("approver", "aprover"), 1);
        assert_eq!(edit_distance("ciso", "ciso"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn kinds_text_reads_as_a_list() {
        assert_eq!(kinds_text(&[Kind::Role]), "Role");
        assert_eq!(kinds_text(PARTY), "Person, Team or Role");
    }
}
