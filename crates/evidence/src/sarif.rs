//! SARIF (2.1.0, the 2.2 draft; 1.0.0 and 2.0.0 best effort): results by effective level,
//! suppressions, baseline state, `security-severity` and rule ids.
//!
//! A result's level often is not in the result: SARIF 2.1.0 §3.27.10 says to fall back to
//! the result's kind, the invocation's rule configuration overrides, then the rule's
//! `defaultConfiguration.level`, then "warning". Rules live in `tool.driver.rules` (or an
//! extension's), and may come after the results in the file. So the parser folds results into
//! a small map keyed by "how this result's level must be resolved" (explicit level, rule
//! reference, suppression class…) and resolves each key once the run is complete. Memory is
//! bounded by the number of distinct keys, not by the number of results.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::BufRead;

use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::Limits;
use crate::error::EvidenceError;
use crate::jsonkit::{
    Array, Elements, ForeignMarker, LenientNumber, LenientString, field_keys, limit_exceeded,
    string_enum,
};
use crate::kind::EvidenceKind;

/// Results per effective level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LevelCounts {
    pub error: u64,
    pub warning: u64,
    pub note: u64,
    pub none: u64,
}

impl LevelCounts {
    fn add(&mut self, level: Level, count: u64) {
        match level {
            Level::Error => self.error += count,
            Level::Warning => self.warning += count,
            Level::Note => self.note += count,
            Level::None => self.none += count,
        }
    }
}

/// Results per `security-severity` band (GitHub code scanning bands: critical ≥ 9.0,
/// high ≥ 7.0, medium ≥ 4.0, low > 0.0, none = 0.0). The score is the result's own
/// `properties.security-severity`, else its rule's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SecuritySeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub none: u64,
    /// Results with no score at all.
    pub unscored: u64,
}

/// How each result's effective level was found (a debugging aid for the defaulting rules).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LevelSources {
    pub explicit: u64,
    /// `kind` present and not `fail` → none.
    pub kind: u64,
    pub invocation_override: u64,
    pub rule_default: u64,
    /// No level anywhere → "warning".
    pub default_warning: u64,
}

/// Facts of a SARIF log.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SarifFacts {
    pub sarif_version: Option<String>,
    pub runs: u64,
    pub total_results: u64,
    pub by_level: LevelCounts,
    /// Results suppressed in effect: a non-empty `suppressions` array none of whose entries is
    /// `rejected` or `underReview` (pre-2.1: non-empty `suppressionStates`).
    pub suppressed: u64,
    /// Results with a non-empty `suppressions` array, whatever the status.
    pub with_suppressions: u64,
    /// `by_level` restricted to results that are not suppressed in effect: what a gate blocks on.
    pub unsuppressed_by_level: LevelCounts,
    pub by_security_severity: SecuritySeverityCounts,
    /// Results per `baselineState` (absent states are not counted).
    pub baseline_state: BTreeMap<String, u64>,
    pub level_sources: LevelSources,
    /// Tool (driver) name of each run.
    pub tools: Vec<String>,
    /// Results per rule id (the result's `ruleId`, else its located rule's id).
    pub rule_ids: BTreeMap<String, u64>,
    /// True when more distinct rule ids existed than [`Limits::max_listed`].
    pub rule_ids_truncated: bool,
    /// `unsuppressed_by_level` per rule id (same bound as `rule_ids`), so an exception of one
    /// rule removes exactly that rule's results from each level.
    pub unsuppressed_by_rule: BTreeMap<String, LevelCounts>,
}

pub(crate) fn parse<R: BufRead>(
    reader: &mut R,
    limits: &Limits,
) -> Result<SarifFacts, EvidenceError> {
    let mut facts = SarifFacts::default();
    let top = crate::jsonkit::parse_document(
        &EvidenceKind::Sarif,
        reader,
        LogSeed {
            facts: &mut facts,
            limits,
        },
    )?;
    if !top.saw_runs && !top.version_is_sarif {
        return Err(EvidenceError::WrongKind {
            kind: EvidenceKind::Sarif,
            found: top
                .foreign
                .describe("no `runs` array and no SARIF `version`"),
        });
    }
    Ok(facts)
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Level {
    Error,
    Warning,
    Note,
    None,
}

string_enum!(RawLevel, "a SARIF level string" {
    Error => "error",
    Warning => "warning",
    Note => "note",
    None => "none",
    // Pre-2.1 levels that mean "not a problem".
    Legacy => "pass" | "notApplicable" | "open",
});

fn level_of<E: de::Error>(raw: RawLevel) -> Result<Level, E> {
    Ok(match raw {
        RawLevel::Error => Level::Error,
        RawLevel::Warning => Level::Warning,
        RawLevel::Note => Level::Note,
        RawLevel::None | RawLevel::Legacy => Level::None,
        RawLevel::Other => {
            return Err(E::custom(
                "unknown SARIF level (expected error, warning, note or none)",
            ));
        }
    })
}

struct LevelSeed;

impl<'de> DeserializeSeed<'de> for LevelSeed {
    type Value = Option<Level>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match <Option<RawLevel> as serde::Deserialize>::deserialize(deserializer)? {
            Some(raw) => level_of(raw).map(Some),
            None => Ok(None),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Band {
    Critical,
    High,
    Medium,
    Low,
    None,
}

fn band(score: f64) -> Band {
    if score >= 9.0 {
        Band::Critical
    } else if score >= 7.0 {
        Band::High
    } else if score >= 4.0 {
        Band::Medium
    } else if score > 0.0 {
        Band::Low
    } else {
        Band::None
    }
}

// ---------------------------------------------------------------------------------------------
// Top level

struct LogSeed<'a> {
    facts: &'a mut SarifFacts,
    limits: &'a Limits,
}

struct TopLevelSeen {
    saw_runs: bool,
    version_is_sarif: bool,
    foreign: ForeignMarker,
}

impl<'de> DeserializeSeed<'de> for LogSeed<'_> {
    type Value = TopLevelSeen;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LogSeed<'_> {
    type Value = TopLevelSeen;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF log object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = TopLevelSeen {
            saw_runs: false,
            version_is_sarif: false,
            foreign: ForeignMarker::default(),
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => {
                    let version = map.next_value_seed(LenientString)?;
                    seen.version_is_sarif = version
                        .as_deref()
                        .is_some_and(|v| v.starts_with("1.") || v.starts_with("2."));
                    self.facts.sarif_version = version;
                }
                "runs" => {
                    seen.saw_runs = true;
                    let mut runs = Runs {
                        facts: self.facts,
                        limits: self.limits,
                    };
                    map.next_value_seed(Array(&mut runs))?;
                }
                other => {
                    seen.foreign.note(other);
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(seen)
    }
}

struct Runs<'a> {
    facts: &'a mut SarifFacts,
    limits: &'a Limits,
}

impl<'de> Elements<'de> for Runs<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let mut run = RunState::default();
        let seed = RunSeed {
            run: &mut run,
            facts: self.facts,
            limits: self.limits,
        };
        if seq.next_element_seed(seed)?.is_none() {
            return Ok(false);
        }
        self.facts.runs += 1;
        run.account(self.facts, self.limits, true);
        if let Some(name) = run.tool_name.or(run.driver.name) {
            self.facts.tools.push(name);
        }
        Ok(true)
    }
}

// ---------------------------------------------------------------------------------------------
// Run

#[derive(Debug, Default, Clone)]
struct Rule {
    id: Option<String>,
    guid: Option<String>,
    default_level: Option<Level>,
    security_severity: Option<f64>,
}

#[derive(Debug, Default)]
struct Component {
    name: Option<String>,
    guid: Option<String>,
    rules: Vec<Rule>,
}

/// Which tool component a rule reference points into.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
enum ComponentRef {
    #[default]
    Driver,
    Index(i64),
    Guid(Box<str>),
    Name(Box<str>),
}

/// A reference from a result (or a configuration override) to a rule.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
struct RuleRef {
    component: ComponentRef,
    index: Option<i64>,
    guid: Option<Box<str>>,
    id: Option<Box<str>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Suppression {
    None,
    Effective,
    /// Suppressions exist but one is rejected or under review.
    NotEffective,
}

/// Everything about a result that its facts depend on. Results with equal keys are counted
/// together.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct ResultKey {
    rule: RuleRef,
    explicit: Option<Level>,
    kind_not_fail: bool,
    invocation: Option<i64>,
    suppression: Suppression,
    own_band: Option<Band>,
    baseline: Option<Baseline>,
}

string_enum!(Baseline, "a SARIF baselineState" {
    New => "new",
    Unchanged => "unchanged",
    Updated => "updated",
    Absent => "absent",
});

impl Baseline {
    fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Unchanged => "unchanged",
            Self::Updated => "updated",
            Self::Absent => "absent",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Default)]
struct RunState {
    tool_name: Option<String>,
    driver: Component,
    extensions: Vec<Component>,
    /// Rule configuration overrides per invocation.
    invocations: Vec<Vec<(RuleRef, Option<Level>)>>,
    /// Results not yet accounted, grouped by everything their facts depend on.
    results: HashMap<ResultKey, u64>,
    /// Whether the run's rules are known (the tool was read, and for pre-2.1 logs whose tool
    /// has no driver, the rule dictionary too), so pending results can be accounted early.
    tool_seen: bool,
    legacy_rules_seen: bool,
    invocations_seen: bool,
}

/// Position of a located rule: component slot (0 = driver, i + 1 = extension i) and index.
type RulePosition = (usize, usize);

/// Lookup tables over a run's rules, built once per accounting pass.
struct RuleTables<'a> {
    components: Vec<&'a Component>,
    ids: Vec<HashMap<&'a str, usize>>,
    guids: Vec<HashMap<&'a str, usize>>,
}

impl<'a> RuleTables<'a> {
    fn new(run: &'a RunState) -> Self {
        let components: Vec<&Component> = std::iter::once(&run.driver)
            .chain(&run.extensions)
            .collect();
        let index = |field: fn(&Rule) -> Option<&str>, component: &&'a Component| {
            let mut map = HashMap::new();
            for (position, rule) in component.rules.iter().enumerate() {
                if let Some(key) = field(rule) {
                    // The first rule with an id wins, as in a sequential scan.
                    map.entry(key).or_insert(position);
                }
            }
            map
        };
        let ids = components
            .iter()
            .map(|c| index(|r| r.id.as_deref(), c))
            .collect();
        let guids = components
            .iter()
            .map(|c| index(|r| r.guid.as_deref(), c))
            .collect();
        Self {
            components,
            ids,
            guids,
        }
    }

    fn slot(&self, reference: &ComponentRef) -> Option<usize> {
        match reference {
            ComponentRef::Driver => Some(0),
            ComponentRef::Index(index) => usize::try_from(*index)
                .ok()
                .map(|i| i + 1)
                .filter(|slot| *slot < self.components.len()),
            ComponentRef::Guid(guid) => self
                .components
                .iter()
                .position(|c| c.guid.as_deref() == Some(guid)),
            ComponentRef::Name(name) => self
                .components
                .iter()
                .position(|c| c.name.as_deref() == Some(name)),
        }
    }

    /// Locates a rule: by index, then guid, then (as SARIF SDK and GitHub do) by id, exact and
    /// then by hierarchical prefix (`a/b/c` → `a/b` → `a`).
    fn locate(&self, reference: &RuleRef) -> Option<RulePosition> {
        let slot = self.slot(&reference.component)?;
        let rules = &self.components[slot].rules;
        let position = reference
            .index
            .and_then(|index| usize::try_from(index).ok())
            .filter(|index| *index < rules.len())
            .or_else(|| self.guids[slot].get(reference.guid.as_deref()?).copied())
            .or_else(|| {
                let mut id = reference.id.as_deref()?;
                loop {
                    if let Some(position) = self.ids[slot].get(id) {
                        return Some(*position);
                    }
                    id = &id[..id.rfind('/')?];
                }
            })?;
        Some((slot, position))
    }

    fn rule(&self, position: RulePosition) -> Option<&'a Rule> {
        self.components
            .get(position.0)
            .and_then(|c| c.rules.get(position.1))
    }
}

impl RunState {
    /// Whether a pending group may be accounted now: its rule tables (and, when its level may
    /// come from an invocation override, the invocations) have been read.
    fn ready(&self, key: &ResultKey) -> bool {
        let rules_known = self.tool_seen && (self.legacy_rules_seen || self.tool_name.is_none());
        let needs_invocations =
            key.explicit.is_none() && !key.kind_not_fail && key.invocation.is_some();
        rules_known && (self.invocations_seen || !needs_invocations)
    }

    /// Accounts pending result groups into `facts`: all of them at the end of the run
    /// (`complete`), else those whose rules are known. Returns how many groups remain.
    fn account(&mut self, facts: &mut SarifFacts, limits: &Limits, complete: bool) -> usize {
        let pending = std::mem::take(&mut self.results);
        let mut remaining = HashMap::new();
        {
            let tables = RuleTables::new(self);
            let overrides: Vec<Vec<(Option<RulePosition>, Option<Level>)>> = self
                .invocations
                .iter()
                .map(|list| {
                    list.iter()
                        .map(|(descriptor, level)| (tables.locate(descriptor), *level))
                        .collect()
                })
                .collect();
            for (key, count) in pending {
                if !complete && !self.ready(&key) {
                    remaining.insert(key, count);
                    continue;
                }
                // Lookups are hash probes, so no per-reference cache is kept (it would grow
                // with the number of distinct rule ids).
                let located = tables.locate(&key.rule);
                let rule = located.and_then(|at| tables.rule(at));
                let override_level = || {
                    let list = overrides.get(usize::try_from(key.invocation?).ok()?)?;
                    let at = located?;
                    list.iter()
                        .find(|(position, _)| *position == Some(at))
                        .and_then(|(_, level)| *level)
                };
                let level = if let Some(level) = key.explicit {
                    facts.level_sources.explicit += count;
                    level
                } else if key.kind_not_fail {
                    facts.level_sources.kind += count;
                    Level::None
                } else if let Some(level) = override_level() {
                    facts.level_sources.invocation_override += count;
                    level
                } else if let Some(level) = rule.and_then(|r| r.default_level) {
                    facts.level_sources.rule_default += count;
                    level
                } else {
                    facts.level_sources.default_warning += count;
                    Level::Warning
                };
                add_result_group(facts, limits, &key, count, level, rule);
            }
        }
        self.results = remaining;
        self.results.len()
    }
}

fn add_result_group(
    facts: &mut SarifFacts,
    limits: &Limits,
    key: &ResultKey,
    count: u64,
    level: Level,
    rule: Option<&Rule>,
) {
    facts.total_results += count;
    facts.by_level.add(level, count);
    match key.suppression {
        Suppression::Effective => {
            facts.suppressed += count;
            facts.with_suppressions += count;
        }
        Suppression::NotEffective => {
            facts.with_suppressions += count;
            facts.unsuppressed_by_level.add(level, count);
        }
        Suppression::None => facts.unsuppressed_by_level.add(level, count),
    }
    let score_band = key
        .own_band
        .or_else(|| rule.and_then(|r| r.security_severity).map(band));
    let bands = &mut facts.by_security_severity;
    match score_band {
        Some(Band::Critical) => bands.critical += count,
        Some(Band::High) => bands.high += count,
        Some(Band::Medium) => bands.medium += count,
        Some(Band::Low) => bands.low += count,
        Some(Band::None) => bands.none += count,
        None => bands.unscored += count,
    }
    if let Some(state) = key.baseline {
        *facts
            .baseline_state
            .entry(state.name().to_string())
            .or_insert(0) += count;
    }
    let rule_id = key
        .rule
        .id
        .as_deref()
        .or_else(|| rule.and_then(|r| r.id.as_deref()));
    if let Some(rule_id) = rule_id
        && !matches!(key.suppression, Suppression::Effective)
        && (facts.unsuppressed_by_rule.contains_key(rule_id)
            || facts.unsuppressed_by_rule.len() < limits.max_listed)
    {
        facts
            .unsuppressed_by_rule
            .entry(rule_id.to_string())
            .or_default()
            .add(level, count);
    }
    if let Some(rule_id) = rule_id {
        if let Some(total) = facts.rule_ids.get_mut(rule_id) {
            *total += count;
        } else if facts.rule_ids.len() < limits.max_listed {
            facts.rule_ids.insert(rule_id.to_string(), count);
        } else {
            facts.rule_ids_truncated = true;
        }
    }
}

struct RunSeed<'a> {
    run: &'a mut RunState,
    facts: &'a mut SarifFacts,
    limits: &'a Limits,
}

field_keys!(RunKey {
    Tool => "tool",
    Results => "results",
    Resources => "resources",
    Rules => "rules",
    Invocations => "invocations",
});

impl<'de> DeserializeSeed<'de> for RunSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RunSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF run object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let run = self.run;
        while let Some(key) = map.next_key::<RunKey>()? {
            match key {
                RunKey::Tool => {
                    map.next_value_seed(ToolSeed(run))?;
                    run.tool_seen = true;
                }
                RunKey::Results => {
                    let mut sink = ResultsSink {
                        run,
                        facts: self.facts,
                        limits: self.limits,
                    };
                    map.next_value_seed(Array(&mut sink))?
                }
                // 2.0: run.resources.rules; 1.0: run.rules. Both are the driver's rules.
                RunKey::Resources => {
                    map.next_value_seed(ResourcesSeed(&mut run.driver.rules))?;
                    run.legacy_rules_seen = true;
                }
                RunKey::Rules => {
                    map.next_value_seed(RulesSeed(&mut run.driver.rules))?;
                    run.legacy_rules_seen = true;
                }
                RunKey::Invocations => {
                    map.next_value_seed(Array(&mut InvocationsSink(&mut run.invocations)))?;
                    run.invocations_seen = true;
                }
                RunKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Tool and rules

struct ToolSeed<'a>(&'a mut RunState);

field_keys!(ToolKey { Driver => "driver", Extensions => "extensions", Name => "name" });

impl<'de> DeserializeSeed<'de> for ToolSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ToolSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF tool object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<ToolKey>()? {
            match key {
                ToolKey::Driver => map.next_value_seed(ComponentSeed(&mut self.0.driver))?,
                ToolKey::Extensions => {
                    map.next_value_seed(Array(&mut ExtensionsSink(&mut self.0.extensions)))?
                }
                // Pre-2.1 logs name the tool directly.
                ToolKey::Name => self.0.tool_name = map.next_value_seed(LenientString)?,
                ToolKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ExtensionsSink<'a>(&'a mut Vec<Component>);

impl<'de> Elements<'de> for ExtensionsSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let mut component = Component::default();
        if seq
            .next_element_seed(ComponentSeed(&mut component))?
            .is_none()
        {
            return Ok(false);
        }
        self.0.push(component);
        Ok(true)
    }
}

struct ComponentSeed<'a>(&'a mut Component);

field_keys!(ComponentKey { Name => "name", Guid => "guid", Rules => "rules" });

impl<'de> DeserializeSeed<'de> for ComponentSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ComponentSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF toolComponent object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<ComponentKey>()? {
            match key {
                ComponentKey::Name => self.0.name = map.next_value_seed(LenientString)?,
                ComponentKey::Guid => self.0.guid = map.next_value_seed(LenientString)?,
                ComponentKey::Rules => map.next_value_seed(RulesSeed(&mut self.0.rules))?,
                ComponentKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ResourcesSeed<'a>(&'a mut Vec<Rule>);

field_keys!(ResourcesKey { Rules => "rules" });

impl<'de> DeserializeSeed<'de> for ResourcesSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ResourcesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF resources object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<ResourcesKey>()? {
            match key {
                ResourcesKey::Rules => map.next_value_seed(RulesSeed(self.0))?,
                ResourcesKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Rules as a 2.1 array, or as a pre-2.1 dictionary keyed by rule id.
struct RulesSeed<'a>(&'a mut Vec<Rule>);

impl<'de> DeserializeSeed<'de> for RulesSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RulesSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array (or, before SARIF 2.1, a dictionary) of rules")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(rule) = seq.next_element_seed(RuleSeed)? {
            self.0.push(rule);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let mut rule = map.next_value_seed(RuleSeed)?;
            if rule.id.is_none() {
                rule.id = Some(key);
            }
            self.0.push(rule);
        }
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

struct RuleSeed;

field_keys!(RuleKey {
    Id => "id",
    Guid => "guid",
    DefaultConfiguration => "defaultConfiguration",
    Configuration => "configuration",
    DefaultLevel => "defaultLevel",
    Properties => "properties",
});

impl<'de> DeserializeSeed<'de> for RuleSeed {
    type Value = Rule;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Rule, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RuleSeed {
    type Value = Rule;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF reportingDescriptor object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Rule, A::Error> {
        let mut rule = Rule::default();
        while let Some(key) = map.next_key::<RuleKey>()? {
            match key {
                RuleKey::Id => rule.id = map.next_value_seed(LenientString)?,
                RuleKey::Guid => rule.guid = map.next_value_seed(LenientString)?,
                // 2.1 defaultConfiguration.level; 2.0 configuration.defaultLevel.
                RuleKey::DefaultConfiguration | RuleKey::Configuration => {
                    if let Some(level) = map.next_value_seed(ConfigurationSeed)? {
                        rule.default_level = Some(level);
                    }
                }
                // 1.0 rule.defaultLevel.
                RuleKey::DefaultLevel => {
                    if let Some(level) = map.next_value_seed(LevelSeed)? {
                        rule.default_level = Some(level);
                    }
                }
                RuleKey::Properties => {
                    rule.security_severity = map.next_value_seed(PropertiesSeed)?
                }
                RuleKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(rule)
    }
}

/// A reportingConfiguration (`level`) or a 2.0 ruleConfiguration (`defaultLevel`).
struct ConfigurationSeed;

field_keys!(ConfigurationKey { Level => "level", DefaultLevel => "defaultLevel" });

impl<'de> DeserializeSeed<'de> for ConfigurationSeed {
    type Value = Option<Level>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ConfigurationSeed {
    type Value = Option<Level>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF reportingConfiguration object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut level = None;
        while let Some(key) = map.next_key::<ConfigurationKey>()? {
            match key {
                ConfigurationKey::Level | ConfigurationKey::DefaultLevel => {
                    level = map.next_value_seed(LevelSeed)?
                }
                ConfigurationKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(level)
    }
    // 1.0 logs use `"configuration": "enabled"`.
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A property bag; only `security-severity` matters.
struct PropertiesSeed;

impl<'de> DeserializeSeed<'de> for PropertiesSeed {
    type Value = Option<f64>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

field_keys!(PropertiesKey { SecuritySeverity => "security-severity" });

impl<'de> Visitor<'de> for PropertiesSeed {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF property bag")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut score = None;
        while let Some(key) = map.next_key::<PropertiesKey>()? {
            match key {
                PropertiesKey::SecuritySeverity => score = map.next_value_seed(LenientNumber)?,
                PropertiesKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(score)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------
// Invocations

struct InvocationsSink<'a>(&'a mut Vec<Vec<(RuleRef, Option<Level>)>>);

impl<'de> Elements<'de> for InvocationsSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        match seq.next_element_seed(InvocationSeed)? {
            Some(overrides) => {
                self.0.push(overrides);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

struct InvocationSeed;

field_keys!(InvocationKey { RuleConfigurationOverrides => "ruleConfigurationOverrides" });

impl<'de> DeserializeSeed<'de> for InvocationSeed {
    type Value = Vec<(RuleRef, Option<Level>)>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for InvocationSeed {
    type Value = Vec<(RuleRef, Option<Level>)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF invocation object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut overrides = Vec::new();
        while let Some(key) = map.next_key::<InvocationKey>()? {
            match key {
                InvocationKey::RuleConfigurationOverrides => {
                    map.next_value_seed(Array(&mut OverridesSink(&mut overrides)))?
                }
                InvocationKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(overrides)
    }
}

struct OverridesSink<'a>(&'a mut Vec<(RuleRef, Option<Level>)>);

impl<'de> Elements<'de> for OverridesSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        match seq.next_element_seed(OverrideSeed)? {
            Some(entry) => {
                self.0.push(entry);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

struct OverrideSeed;

field_keys!(OverrideKey { Descriptor => "descriptor", Configuration => "configuration" });

impl<'de> DeserializeSeed<'de> for OverrideSeed {
    type Value = (RuleRef, Option<Level>);
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OverrideSeed {
    type Value = (RuleRef, Option<Level>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF configurationOverride object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut descriptor = RuleRef::default();
        let mut level = None;
        while let Some(key) = map.next_key::<OverrideKey>()? {
            match key {
                OverrideKey::Descriptor => descriptor = map.next_value_seed(RuleRefSeed)?,
                OverrideKey::Configuration => level = map.next_value_seed(ConfigurationSeed)?,
                OverrideKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((descriptor, level))
    }
}

/// A reportingDescriptorReference (`result.rule`, `descriptor`).
struct RuleRefSeed;

field_keys!(RuleRefKey { Id => "id", Index => "index", Guid => "guid", ToolComponent => "toolComponent" });

impl<'de> DeserializeSeed<'de> for RuleRefSeed {
    type Value = RuleRef;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RuleRef, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RuleRefSeed {
    type Value = RuleRef;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF reportingDescriptorReference object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RuleRef, A::Error> {
        let mut reference = RuleRef::default();
        while let Some(key) = map.next_key::<RuleRefKey>()? {
            match key {
                RuleRefKey::Id => {
                    reference.id = map
                        .next_value_seed(LenientString)?
                        .map(String::into_boxed_str)
                }
                RuleRefKey::Index => {
                    reference.index = map.next_value::<Option<i64>>()?.filter(|i| *i >= 0)
                }
                RuleRefKey::Guid => {
                    reference.guid = map
                        .next_value_seed(LenientString)?
                        .map(String::into_boxed_str)
                }
                RuleRefKey::ToolComponent => {
                    reference.component = map.next_value_seed(ComponentRefSeed)?
                }
                RuleRefKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(reference)
    }
}

struct ComponentRefSeed;

field_keys!(ComponentRefKey { Index => "index", Guid => "guid", Name => "name" });

impl<'de> DeserializeSeed<'de> for ComponentRefSeed {
    type Value = ComponentRef;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ComponentRef, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ComponentRefSeed {
    type Value = ComponentRef;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF toolComponentReference object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ComponentRef, A::Error> {
        let (mut index, mut guid, mut name) = (None, None, None);
        while let Some(key) = map.next_key::<ComponentRefKey>()? {
            match key {
                ComponentRefKey::Index => {
                    index = map.next_value::<Option<i64>>()?.filter(|i| *i >= 0)
                }
                ComponentRefKey::Guid => guid = map.next_value_seed(LenientString)?,
                ComponentRefKey::Name => name = map.next_value_seed(LenientString)?,
                ComponentRefKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // §3.54: index wins, then guid, then name.
        Ok(match (index, guid, name) {
            (Some(index), _, _) => ComponentRef::Index(index),
            (None, Some(guid), _) => ComponentRef::Guid(guid.into_boxed_str()),
            (None, None, Some(name)) => ComponentRef::Name(name.into_boxed_str()),
            (None, None, None) => ComponentRef::Driver,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Results

struct ResultsSink<'a> {
    run: &'a mut RunState,
    facts: &'a mut SarifFacts,
    limits: &'a Limits,
}

impl<'de> Elements<'de> for ResultsSink<'_> {
    fn next<A: SeqAccess<'de>>(&mut self, seq: &mut A) -> Result<bool, A::Error> {
        let Some(key) = seq.next_element_seed(ResultSeed)? else {
            return Ok(false);
        };
        let groups = &mut self.run.results;
        match groups.get_mut(&key) {
            Some(count) => *count += 1,
            None => {
                groups.insert(key, 1);
                // Bound memory: account what can be accounted; if that is not enough (the
                // rules come after a flood of distinct results), refuse rather than grow.
                let limit = self.limits.max_pending_result_groups;
                if groups.len() >= limit
                    && self.run.account(self.facts, self.limits, false) >= limit
                {
                    return Err(limit_exceeded(&format!(
                        "max_pending_result_groups = {limit} (distinct result groups waiting for the run's rules)"
                    )));
                }
            }
        }
        Ok(true)
    }
}

struct ResultSeed;

field_keys!(ResultKeyName {
    Level => "level",
    Kind => "kind",
    RuleId => "ruleId",
    RuleIndex => "ruleIndex",
    Rule => "rule",
    Suppressions => "suppressions",
    SuppressionStates => "suppressionStates",
    BaselineState => "baselineState",
    Properties => "properties",
    Provenance => "provenance",
});

string_enum!(ResultKind, "a SARIF result kind" { Fail => "fail" });

impl<'de> DeserializeSeed<'de> for ResultSeed {
    type Value = ResultKey;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ResultKey, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ResultSeed {
    type Value = ResultKey;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF result object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResultKey, A::Error> {
        let mut explicit = None;
        let mut kind_not_fail = false;
        let mut rule_id: Option<Box<str>> = None;
        let mut rule_index = None;
        let mut rule: Option<RuleRef> = None;
        let mut suppression = Suppression::None;
        let mut baseline = None;
        let mut own_band = None;
        let mut invocation = None;
        while let Some(key) = map.next_key::<ResultKeyName>()? {
            match key {
                ResultKeyName::Level => explicit = map.next_value_seed(LevelSeed)?,
                ResultKeyName::Kind => {
                    kind_not_fail = map
                        .next_value::<Option<ResultKind>>()?
                        .is_some_and(|k| k != ResultKind::Fail)
                }
                ResultKeyName::RuleId => {
                    rule_id = map
                        .next_value::<Option<String>>()?
                        .map(String::into_boxed_str)
                }
                ResultKeyName::RuleIndex => {
                    rule_index = map.next_value::<Option<i64>>()?.filter(|i| *i >= 0)
                }
                ResultKeyName::Rule => rule = Some(map.next_value_seed(RuleRefSeed)?),
                ResultKeyName::Suppressions => {
                    suppression = map.next_value_seed(SuppressionsSeed)?
                }
                ResultKeyName::SuppressionStates => {
                    let mut states = crate::jsonkit::CountElements(0);
                    map.next_value_seed(Array(&mut states))?;
                    if states.0 > 0 && suppression == Suppression::None {
                        suppression = Suppression::Effective;
                    }
                }
                ResultKeyName::BaselineState => baseline = map.next_value::<Option<Baseline>>()?,
                ResultKeyName::Properties => {
                    own_band = map.next_value_seed(PropertiesSeed)?.map(band)
                }
                ResultKeyName::Provenance => invocation = map.next_value_seed(ProvenanceSeed)?,
                ResultKeyName::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut rule = rule.unwrap_or_default();
        if rule.index.is_none() {
            rule.index = rule_index;
        }
        if rule.id.is_none() {
            rule.id = rule_id;
        }
        Ok(ResultKey {
            rule,
            explicit,
            kind_not_fail,
            invocation,
            suppression,
            own_band,
            baseline,
        })
    }
}

struct SuppressionsSeed;

impl<'de> DeserializeSeed<'de> for SuppressionsSeed {
    type Value = Suppression;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Suppression, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SuppressionsSeed {
    type Value = Suppression;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of SARIF suppression objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Suppression, A::Error> {
        let mut result = Suppression::None;
        while let Some(status) = seq.next_element_seed(SuppressionSeed)? {
            result = match (result, status) {
                (Suppression::NotEffective, _)
                | (_, SuppressionStatus::Rejected | SuppressionStatus::UnderReview) => {
                    Suppression::NotEffective
                }
                _ => Suppression::Effective,
            };
        }
        Ok(result)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Suppression, E> {
        Ok(Suppression::None)
    }
}

string_enum!(SuppressionStatus, "a SARIF suppression status" {
    Accepted => "accepted",
    UnderReview => "underReview",
    Rejected => "rejected",
});

struct SuppressionSeed;

field_keys!(SuppressionKey { Status => "status" });

impl<'de> DeserializeSeed<'de> for SuppressionSeed {
    type Value = SuppressionStatus;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SuppressionSeed {
    type Value = SuppressionStatus;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF suppression object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // An absent status counts as accepted (SARIF SDK Result.TryIsSuppressed).
        let mut status = SuppressionStatus::Accepted;
        while let Some(key) = map.next_key::<SuppressionKey>()? {
            match key {
                SuppressionKey::Status => {
                    if let Some(value) = map.next_value::<Option<SuppressionStatus>>()? {
                        status = value;
                    }
                }
                SuppressionKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(status)
    }
}

struct ProvenanceSeed;

field_keys!(ProvenanceKey { InvocationIndex => "invocationIndex" });

impl<'de> DeserializeSeed<'de> for ProvenanceSeed {
    type Value = Option<i64>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ProvenanceSeed {
    type Value = Option<i64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF resultProvenance object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut index = None;
        while let Some(key) = map.next_key::<ProvenanceKey>()? {
            match key {
                ProvenanceKey::InvocationIndex => index = map.next_value::<Option<i64>>()?,
                ProvenanceKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(index)
    }
}
