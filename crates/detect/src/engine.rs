//! The compiled plan: every loaded rule turned into one shared structure built for speed.
//!
//! * **Atoms.** Each `field|modifiers: value` becomes atoms (field, matcher), shared between
//!   rules: two rules testing `Image|endswith: '\cmd.exe'` test it once per event.
//! * **Field dispatch + shared Aho-Corasick.** All literal needles of all rules on one field
//!   (exact, prefix, suffix, contains, and the longest literal of a wildcard pattern) go into
//!   one Aho-Corasick automaton per field (one for case-folded needles, one for `cased`).
//!   An event runs each automaton once over each value of that field; every hit sets its atoms.
//!   Fields no rule names are never looked at.
//! * **Prefilter.** For each rule a set of automaton atoms is derived such that the rule
//!   cannot match unless one of them fired (its "trigger"). Only rules whose trigger fired (or
//!   that have none, e.g. rules that are pure negations or regexes) are evaluated.
//! * **Log-source dispatch.** The rules that can apply to an event source (a Windows channel
//!   and event id) are computed once per source and cached.
//! * **Lazy expensive checks.** Regexes, numeric, CIDR, field-reference and keyword atoms are
//!   evaluated only when a candidate rule's condition reaches them, at most once per event.
//!
//! Regexes use the `regex` crate (finite automata, no backtracking): matching time is linear in
//! the input for every pattern, so no rule can make an event take exponential time.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aho_corasick::automaton::Automaton as _;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{AhoCorasick, AhoCorasickKind, Anchored, MatchKind};
use serde_json::Value;

use crate::condition::Condition;
use crate::event::{
    EventView, FieldId, FieldIndex, JsonNode, Val, build_view_for, parse_timestamp, source_key_of,
    timestamp_of,
};
use crate::rule::{
    CorrelationRule, Level, LogSource, RuleSet, SearchIdentifier, Selection, SigmaRule, SourceRef,
};
use crate::value::{FieldTest, RefMode, Shape, TimePart, ValueMatcher, fold_case, fold_case_into};
use crate::windows::{EventSource, logsource_applies};

type AtomId = u32;
/// Needle sets up to this size get a DFA (small enough to stay in cache, fastest to scan);
/// larger ones a contiguous NFA (a DFA over thousands of needles measured slower and used
/// twice the memory).
const SMALL_SET: usize = 300;
/// A literal searched by a field automaton, the atom it serves and how a hit is checked.
type Needle = (String, AtomId, UseKind);

#[derive(Debug, Clone)]
enum Expr {
    Const(bool),
    Atom(AtomId),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    AtLeast(usize, Vec<Expr>),
}

#[derive(Debug)]
struct Atom {
    /// `None`: keyword, searched in every value of the event.
    field: Option<FieldId>,
    matcher: ValueMatcher,
    /// Set by the Aho-Corasick pass (never evaluated lazily).
    by_automaton: bool,
    /// Length of the needle the automaton searches (prefilter selectivity).
    needle_len: usize,
    /// A regular expression with a literal every match must contain ([`regex_literal`]): the
    /// field's automaton searches the literal, and the regex runs only when it was found.
    gate: Option<String>,
}

/// How an atom gets its value in an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AtomKind {
    /// Set by the field automata only (false unless a hit set it).
    Automaton,
    /// A regex evaluated only when its required literal was found.
    Gated,
    /// Evaluated when a rule's condition reaches it.
    Lazy,
}

#[derive(Debug, Clone, Copy)]
enum UseKind {
    Exact,
    Prefix,
    Suffix,
    Contains,
    Glob,
    /// The required literal of a gated regex: a hit only opens the gate.
    Regex,
}

/// How an automaton is run over a value. Prefix and exact needles only need an anchored
/// search from the start of the value (which stops as soon as no needle can continue), and
/// suffix needles an anchored search over the reversed value; only `contains` and wildcard
/// needles need a full unanchored scan. Splitting them keeps the full scan's automaton small
/// and its matches few.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SearchMode {
    Unanchored,
    AnchoredStart,
    AnchoredEndReversed,
}

#[derive(Debug)]
enum Searcher {
    /// Unanchored overlapping search.
    Full(AhoCorasick),
    /// Anchored search, walked state by state (the crate has no anchored overlapping
    /// iterator).
    Anchored(Box<NFA>),
}

#[derive(Debug)]
struct AcSet {
    automaton: Searcher,
    mode: SearchMode,
    uses: Vec<Vec<(AtomId, UseKind)>>,
}

#[derive(Debug, Default)]
struct FieldAutomata {
    folded: Vec<AcSet>,
    cased: Vec<AcSet>,
}

/// What the engine reports about a rule.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub id: Option<String>,
    pub name: Option<String>,
    pub title: String,
    pub level: Option<Level>,
    pub logsource: LogSource,
    pub source: SourceRef,
    /// False when the rule only feeds correlations (`generate: false`, the default).
    pub standalone: bool,
}

#[derive(Debug)]
struct CompiledRule {
    info: RuleInfo,
    expr: Expr,
    trigger: Option<Vec<AtomId>>,
    /// Fields whose values correlations need from this rule's events.
    captures: Vec<(String, FieldId)>,
    uses_keywords: bool,
    fields: Vec<FieldId>,
}

#[derive(Debug, Clone)]
struct SourceRules {
    applicable: Vec<bool>,
    untriggered: Vec<u32>,
    needs_keywords: bool,
    /// The raw-text keyword prefilter built from the keyword needles of this source's
    /// applicable rules only (most keyword rules are for one channel, so for most events
    /// this is a handful of needles, or none).
    keyword_prefilter: Option<AhoCorasick>,
    /// Fields named by at least one applicable rule: the others are not scanned.
    fields: Vec<bool>,
}

/// Counts describing a compiled plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanStats {
    pub rules: usize,
    pub atoms: usize,
    pub automaton_atoms: usize,
    pub keyword_atoms: usize,
    /// Rules without a prefilter trigger: evaluated for every event of their log source.
    pub untriggered_rules: usize,
    pub fields_with_automata: usize,
    /// Whether keyword rules can be prefiltered on the raw JSON text.
    pub keyword_prefilter: bool,
}

/// One field that made a rule match, and the event's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedField {
    pub field: String,
    pub value: String,
}

/// A rule that matched an event.
#[derive(Debug, Clone)]
pub struct RuleMatch {
    /// Index of the rule in [`Engine::rule`].
    pub rule: usize,
    pub fields: Vec<MatchedField>,
    /// Values captured for correlations: (field name, value as text).
    pub captures: Vec<(String, Option<String>)>,
}

/// The matches of one JSON line, and the event's timestamp when there are matches.
#[derive(Debug, Clone, Default)]
pub struct LineMatches {
    pub matches: Vec<RuleMatch>,
    pub timestamp: Option<String>,
}

/// Per-thread working memory, reused across events so matching does not allocate per atom.
#[derive(Debug, Default)]
pub struct Scratch {
    generation: u32,
    /// Per atom, `generation << 1 | value` once decided in this event: one load answers
    /// both "decided?" and "value" (generations stay below 2^31).
    atom_state: Vec<u32>,
    /// Generation in which a gated regex's literal was found.
    gate_gen: Vec<u32>,
    rule_gen: Vec<u32>,
    folded: Vec<String>,
    folded_gen: Vec<u32>,
    hit_atoms: Vec<AtomId>,
    candidates: Vec<u32>,
    /// This thread's copy of the per-source rule lists: no lock or shared refcount per event.
    /// Allocations of the event view, kept between events (emptied, see [`recycle`]).
    bindings: Vec<(FieldId, Val<'static>)>,
    leaves: Vec<Val<'static>>,
    /// The raw line in ASCII lowercase, for the keyword prefilter.
    lowered_line: Vec<u8>,
    /// One case-folded scalar at a time, for the keyword automaton.
    keyword_buf: String,
    /// The scanned line of [`Engine::match_json_line`], kept between events.
    tape: crate::json::Tape,
    windows_sources: rustc_hash::FxHashMap<String, rustc_hash::FxHashMap<i64, Arc<SourceRules>>>,
    unknown_source: Option<Arc<SourceRules>>,
}

impl Scratch {
    fn begin(&mut self, atoms: usize, rules: usize, bindings: usize) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 || self.generation > u32::MAX >> 1 {
            // Wrapped: old marks could collide with the new generation, so clear them.
            self.atom_state.iter_mut().for_each(|g| *g = 0);
            self.gate_gen.iter_mut().for_each(|g| *g = 0);
            self.rule_gen.iter_mut().for_each(|g| *g = 0);
            self.folded_gen.iter_mut().for_each(|g| *g = 0);
            self.generation = 1;
        }
        self.atom_state.resize(atoms, 0);
        self.gate_gen.resize(atoms, 0);
        self.rule_gen.resize(rules, 0);
        if self.folded.len() < bindings {
            self.folded.resize_with(bindings, String::new);
            self.folded_gen.resize(bindings, 0);
        }
        self.hit_atoms.clear();
        self.candidates.clear();
    }
}

/// Text of a scalar event value (numbers and booleans as JSON writes them).
pub fn value_text(v: &Value) -> Option<Cow<'_, str>> {
    Val::from(v).text()
}

/// Extracts a time part from a timestamp value (time modifiers).
pub fn time_part(v: &Value, part: TimePart) -> Option<f64> {
    val_time_part(Val::from(v), part)
}

fn val_time_part(v: Val<'_>, part: TimePart) -> Option<f64> {
    let text = v.text()?;
    let ts = parse_timestamp(&text)?;
    let dt = ts.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    Some(f64::from(match part {
        TimePart::Minute => i32::from(dt.minute()),
        TimePart::Hour => i32::from(dt.hour()),
        TimePart::Day => i32::from(dt.day()),
        TimePart::Week => i32::from(dt.iso_week_date().week()),
        TimePart::Month => i32::from(dt.month()),
        TimePart::Year => i32::from(dt.year()),
    }))
}

/// Does one event value satisfy a single-value matcher? (Not for `Exists`, `Null`, `FieldRef`,
/// which look at the field as a whole.) `folded` is the case-folded text when available.
pub fn value_matches(matcher: &ValueMatcher, v: &Value, folded: Option<&str>) -> bool {
    val_matches(matcher, Val::from(v), folded)
}

fn val_matches(matcher: &ValueMatcher, v: Val<'_>, folded: Option<&str>) -> bool {
    match matcher {
        ValueMatcher::Pattern { pattern, cased } => match v.text() {
            Some(text) => {
                if *cased {
                    pattern.matches(&text)
                } else {
                    match folded {
                        Some(f) => pattern.matches(f),
                        None => pattern.matches(&fold_case(&text)),
                    }
                }
            }
            None => false,
        },
        ValueMatcher::Regex(re) => v.text().is_some_and(|t| re.is_match(&t)),
        ValueMatcher::Compare {
            op,
            value,
            time_part: part,
        } => {
            let left = match part {
                Some(p) => val_time_part(v, *p),
                None => v.number(),
            };
            left.is_some_and(|l| op.holds(l, *value))
        }
        ValueMatcher::Cidr(c) => v
            .text()
            .and_then(|t| t.trim().parse().ok())
            .is_some_and(|ip| c.contains(ip)),
        ValueMatcher::Exists(_) | ValueMatcher::Null | ValueMatcher::FieldRef { .. } => false,
    }
}

/// Compares two field values for `fieldref`.
pub fn fieldref_matches(mode: RefMode, cased: bool, left: &Value, right: &Value) -> bool {
    val_fieldref_matches(mode, cased, Val::from(left), Val::from(right))
}

fn val_fieldref_matches(mode: RefMode, cased: bool, left: Val<'_>, right: Val<'_>) -> bool {
    let (Some(l), Some(r)) = (left.text(), right.text()) else {
        return false;
    };
    let (l, r) = if cased {
        (l.into_owned(), r.into_owned())
    } else {
        (fold_case(&l), fold_case(&r))
    };
    match mode {
        RefMode::Equals => l == r,
        RefMode::Contains => l.contains(&r),
        RefMode::StartsWith => l.starts_with(&r),
        RefMode::EndsWith => l.ends_with(&r),
    }
}

/// The raw JSON text of an event, for the keyword prefilter.
#[derive(Clone, Copy)]
struct RawLine<'a> {
    bytes: &'a [u8],
    /// Whether a string has a `\u` or `\/` escape, when the scanner already knows;
    /// `None`: search the text.
    hiding_escapes: Option<bool>,
}

/// Correlation rules resolved against the engine's rules.
#[derive(Debug, Clone)]
pub struct ResolvedCorrelation {
    pub rule: CorrelationRule,
    /// Referenced detection rules (engine indices) or correlations (indices here).
    pub refs: Vec<CorrelationRef>,
    /// False when another correlation uses this one as a step without `generate: true`: only
    /// the outermost correlation of a chain is reported.
    pub standalone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationRef {
    Rule(usize),
    Correlation(usize),
}

/// The compiled rule set.
#[derive(Debug)]
pub struct Engine {
    fields: FieldIndex,
    atoms: Vec<Atom>,
    /// [`AtomKind`] of each atom, dense.
    atom_kinds: Vec<AtomKind>,
    automata: Vec<FieldAutomata>,
    rules: Vec<CompiledRule>,
    atom_triggers: Vec<Vec<u32>>,
    has_keywords: bool,
    /// Case-folded keyword needles of all rules, run over every scalar of an event whose
    /// source has applicable keyword rules.
    keywords: Vec<AcSet>,
    /// The keyword needles as they appear inside a JSON text (escaped), to rule out keyword
    /// matches from the raw input line before extracting and scanning every value.
    keyword_prefilter: Option<AhoCorasick>,
    sources: Mutex<HashMap<EventSource, Arc<SourceRules>>>,
    /// Per-source keyword prefilters by needle set: most sources share one set (building
    /// one per source took longer than matching a small file).
    keyword_prefilters: Mutex<HashMap<Vec<String>, Option<AhoCorasick>>>,
    correlations: Vec<ResolvedCorrelation>,
    /// Declared event sources (field mappings, logsource narrowing): see [`crate::mapping`].
    pub(crate) source_map: Option<Arc<crate::mapping::SourceMap>>,
}

struct Builder {
    fields: FieldIndex,
    atoms: Vec<Atom>,
    atom_keys: HashMap<(Option<FieldId>, String), AtomId>,
}

impl Builder {
    fn atom(&mut self, field: Option<FieldId>, matcher: &ValueMatcher) -> AtomId {
        if let ValueMatcher::FieldRef { field: other, .. } = matcher {
            // The referenced field must be bound in event views too.
            self.fields.intern(other);
        }
        let key = (field, matcher.key());
        if let Some(id) = self.atom_keys.get(&key) {
            return *id;
        }
        let (by_automaton, needle_len) = match (field, matcher) {
            (Some(_), ValueMatcher::Pattern { pattern, .. })
            | (
                None,
                ValueMatcher::Pattern {
                    pattern,
                    cased: false,
                },
            ) => match pattern.shape() {
                Shape::Exact(l) | Shape::Prefix(l) | Shape::Suffix(l) | Shape::Contains(l)
                    if !l.is_empty() =>
                {
                    (true, l.len())
                }
                Shape::Glob { required: Some(l) } if !l.is_empty() => (true, l.len()),
                _ => (false, 0),
            },
            _ => (false, 0),
        };
        let gate = match (field, matcher) {
            (Some(_), ValueMatcher::Regex(re)) => regex_literal(re.as_str()),
            _ => None,
        };
        let needle_len = gate.as_ref().map_or(needle_len, String::len);
        let id = AtomId::try_from(self.atoms.len()).unwrap_or(AtomId::MAX);
        self.atoms.push(Atom {
            field,
            matcher: matcher.clone(),
            by_automaton,
            needle_len,
            gate,
        });
        self.atom_keys.insert(key, id);
        id
    }

    fn field_test(&mut self, test: &FieldTest) -> Expr {
        let field = test.field.as_deref().map(|f| self.fields.intern(f));
        let per_value: Vec<Expr> = test
            .alternatives
            .iter()
            .map(|alts| {
                let atoms: Vec<Expr> = alts
                    .iter()
                    .map(|m| Expr::Atom(self.atom(field, m)))
                    .collect();
                if atoms.len() == 1 {
                    atoms.into_iter().next().unwrap_or(Expr::Const(false))
                } else {
                    Expr::Or(atoms)
                }
            })
            .collect();
        let combined = if per_value.len() == 1 {
            per_value.into_iter().next().unwrap_or(Expr::Const(false))
        } else if test.all {
            Expr::And(per_value)
        } else {
            Expr::Or(per_value)
        };
        if test.negate {
            Expr::Not(Box::new(combined))
        } else {
            combined
        }
    }

    fn selection(&mut self, s: &Selection) -> Expr {
        match s {
            Selection::AllOf(tests) => {
                let parts: Vec<Expr> = tests.iter().map(|t| self.field_test(t)).collect();
                if parts.len() == 1 {
                    parts.into_iter().next().unwrap_or(Expr::Const(true))
                } else {
                    Expr::And(parts)
                }
            }
            Selection::AnyOf(items) => Expr::Or(items.iter().map(|i| self.selection(i)).collect()),
        }
    }

    fn condition(&mut self, c: &Condition, ids: &[Expr]) -> Expr {
        match c {
            Condition::Ident(i) => ids.get(*i).cloned().unwrap_or(Expr::Const(false)),
            Condition::Not(inner) => Expr::Not(Box::new(self.condition(inner, ids))),
            Condition::And(parts) => {
                Expr::And(parts.iter().map(|p| self.condition(p, ids)).collect())
            }
            Condition::Or(parts) => {
                Expr::Or(parts.iter().map(|p| self.condition(p, ids)).collect())
            }
            Condition::AtLeast { min, of } => Expr::AtLeast(
                *min,
                of.iter()
                    .map(|i| ids.get(*i).cloned().unwrap_or(Expr::Const(false)))
                    .collect(),
            ),
        }
    }

    fn detection(&mut self, identifiers: &[SearchIdentifier], condition: &Condition) -> Expr {
        let ids: Vec<Expr> = identifiers
            .iter()
            .map(|i| self.selection(&i.selection))
            .collect();
        self.condition(condition, &ids)
    }

    /// A set of automaton atoms of which at least one must fire for `e` to hold, or `None`
    /// when no such set exists (then the rule is always evaluated).
    fn trigger(&self, e: &Expr) -> Option<Vec<AtomId>> {
        match e {
            Expr::Const(false) => Some(Vec::new()),
            Expr::Const(true) | Expr::Not(_) => None,
            Expr::Atom(a) => self
                .atoms
                .get(*a as usize)
                .filter(|x| x.by_automaton || x.gate.is_some())
                .map(|_| vec![*a]),
            Expr::Or(parts) => union(parts.iter().map(|p| self.trigger(p))),
            Expr::AtLeast(min, parts) if *min >= parts.len() => {
                self.best(parts.iter().filter_map(|p| self.trigger(p)))
            }
            Expr::AtLeast(_, parts) => union(parts.iter().map(|p| self.trigger(p))),
            Expr::And(parts) => self.best(parts.iter().filter_map(|p| self.trigger(p))),
        }
    }

    /// Of several sufficient trigger sets, the most selective: the one whose shortest needle
    /// is longest (short needles such as event ids fire on many events), then the smallest.
    fn best(&self, sets: impl Iterator<Item = Vec<AtomId>>) -> Option<Vec<AtomId>> {
        sets.max_by_key(|s| {
            let shortest = s
                .iter()
                .map(|a| self.atoms.get(*a as usize).map_or(0, |x| x.needle_len))
                .min()
                .unwrap_or(usize::MAX);
            (shortest.min(12), usize::MAX - s.len())
        })
    }
}

fn union(sets: impl Iterator<Item = Option<Vec<AtomId>>>) -> Option<Vec<AtomId>> {
    let mut out = Vec::new();
    for s in sets {
        out.extend(s?);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

fn build_acset(needles: Vec<Needle>, mode: SearchMode) -> Option<AcSet> {
    if needles.is_empty() {
        return None;
    }
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    let mut uses: Vec<Vec<(AtomId, UseKind)>> = Vec::new();
    for (needle, atom, kind) in needles {
        let mut bytes = needle.into_bytes();
        if mode == SearchMode::AnchoredEndReversed {
            bytes.reverse();
        }
        let slot = *index.entry(bytes.clone()).or_insert_with(|| {
            patterns.push(bytes);
            uses.push(Vec::new());
            patterns.len() - 1
        });
        uses[slot].push((atom, kind));
    }
    let automaton = if mode == SearchMode::Unanchored {
        Searcher::Full(
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(if patterns.len() <= SMALL_SET {
                    AhoCorasickKind::DFA
                } else {
                    AhoCorasickKind::ContiguousNFA
                }))
                .build(&patterns)
                .ok()?,
        )
    } else {
        Searcher::Anchored(Box::new(
            NFA::builder()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .ok()?,
        ))
    };
    Some(AcSet {
        automaton,
        mode,
        uses,
    })
}

/// Splits needles by how they are searched and builds one automaton per search mode.
fn build_searchers(needles: Vec<Needle>) -> Vec<AcSet> {
    let (mut start, mut end, mut anywhere) = (Vec::new(), Vec::new(), Vec::new());
    for n in needles {
        match n.2 {
            UseKind::Exact | UseKind::Prefix => start.push(n),
            UseKind::Suffix => end.push(n),
            UseKind::Contains | UseKind::Glob | UseKind::Regex => anywhere.push(n),
        }
    }
    [
        build_acset(start, SearchMode::AnchoredStart),
        build_acset(end, SearchMode::AnchoredEndReversed),
        build_acset(anywhere, SearchMode::Unanchored),
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl Engine {
    /// Compiles a loaded rule set. Filters are applied to the rules they name; correlations
    /// are resolved (rules referenced only by correlations without `generate: true` are not
    /// reported on their own).
    pub fn compile(set: &RuleSet) -> Engine {
        let mut b = Builder {
            fields: FieldIndex::default(),
            atoms: Vec::new(),
            atom_keys: HashMap::new(),
        };
        let mut exprs: Vec<Expr> = set
            .rules
            .iter()
            .map(|r| b.detection(&r.identifiers, &r.condition))
            .collect();
        for filter in &set.filters {
            let fexpr = b.detection(&filter.identifiers, &filter.condition);
            for (i, r) in set.rules.iter().enumerate() {
                let named = filter
                    .rules
                    .iter()
                    .any(|x| Some(x) == r.id.as_ref() || Some(x) == r.name.as_ref());
                if named {
                    let orig = std::mem::replace(&mut exprs[i], Expr::Const(false));
                    exprs[i] = Expr::And(vec![orig, Expr::Not(Box::new(fexpr.clone()))]);
                }
            }
        }
        let correlations = resolve_correlations(&set.rules, &set.correlations);
        let mut referenced_quietly: HashSet<usize> = HashSet::new();
        let mut referenced_loudly: HashSet<usize> = HashSet::new();
        let mut captures: Vec<Vec<String>> = vec![Vec::new(); set.rules.len()];
        for c in &correlations {
            for r in &c.refs {
                if let CorrelationRef::Rule(i) = r {
                    if c.rule.generate {
                        referenced_loudly.insert(*i);
                    } else {
                        referenced_quietly.insert(*i);
                    }
                    for f in correlation_fields(&c.rule, &set.rules[*i]) {
                        if !captures[*i].contains(&f) {
                            captures[*i].push(f);
                        }
                    }
                }
            }
        }
        let mut rules = Vec::new();
        for (i, (r, expr)) in set.rules.iter().zip(exprs).enumerate() {
            let trigger = b.trigger(&expr);
            let atom_ids = expr_atoms(&expr);
            let uses_keywords = atom_ids
                .iter()
                .any(|a| b.atoms[*a as usize].field.is_none());
            let mut fields: Vec<FieldId> = atom_ids
                .iter()
                .filter_map(|a| b.atoms[*a as usize].field)
                .collect();
            fields.sort_unstable();
            fields.dedup();
            let caps = captures[i]
                .iter()
                .map(|f| (f.clone(), b.fields.intern(f)))
                .collect();
            rules.push(CompiledRule {
                info: rule_info(
                    r,
                    !referenced_quietly.contains(&i) || referenced_loudly.contains(&i),
                ),
                expr,
                trigger,
                captures: caps,
                uses_keywords,
                fields,
            });
        }
        let mut atom_triggers = vec![Vec::new(); b.atoms.len()];
        for (i, r) in rules.iter().enumerate() {
            for a in r.trigger.iter().flatten() {
                atom_triggers[*a as usize].push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
        // Per field: needles for the folded and the cased automaton.
        let mut per_field: Vec<(Vec<Needle>, Vec<Needle>)> = (0..b.fields.len())
            .map(|_| (Vec::new(), Vec::new()))
            .collect();
        let mut keyword_needles = Vec::new();
        for (id, atom) in b.atoms.iter().enumerate() {
            if let (Some(field), Some(literal)) = (atom.field, &atom.gate) {
                let atom_id = AtomId::try_from(id).unwrap_or(AtomId::MAX);
                per_field[field as usize]
                    .0
                    .push((literal.clone(), atom_id, UseKind::Regex));
                continue;
            }
            let (ValueMatcher::Pattern { pattern, cased }, true) =
                (&atom.matcher, atom.by_automaton)
            else {
                continue;
            };
            let (needle, kind) = match pattern.shape() {
                Shape::Exact(l) => (l, UseKind::Exact),
                Shape::Prefix(l) => (l, UseKind::Prefix),
                Shape::Suffix(l) => (l, UseKind::Suffix),
                Shape::Contains(l) => (l, UseKind::Contains),
                Shape::Glob { required: Some(l) } => (l, UseKind::Glob),
                _ => continue,
            };
            let entry = (
                needle.to_owned(),
                AtomId::try_from(id).unwrap_or(AtomId::MAX),
                kind,
            );
            match atom.field {
                None => keyword_needles.push(entry),
                Some(field) => {
                    let slot = &mut per_field[field as usize];
                    if *cased {
                        slot.1.push(entry);
                    } else {
                        slot.0.push(entry);
                    }
                }
            }
        }
        let automata = build_all_automata(per_field);
        let lazy_keywords = b.atoms.iter().any(|a| a.field.is_none() && !a.by_automaton);
        let keyword_prefilter = raw_keyword_prefilter(&keyword_needles, lazy_keywords);
        let has_keywords = b.atoms.iter().any(|a| a.field.is_none());
        let atom_kinds = b
            .atoms
            .iter()
            .map(|a| {
                if a.by_automaton {
                    AtomKind::Automaton
                } else if a.gate.is_some() {
                    AtomKind::Gated
                } else {
                    AtomKind::Lazy
                }
            })
            .collect();
        Engine {
            fields: b.fields,
            atoms: b.atoms,
            atom_kinds,
            automata,
            rules,
            atom_triggers,
            has_keywords,
            keyword_prefilter,
            keywords: build_searchers(keyword_needles),
            sources: Mutex::new(HashMap::new()),
            keyword_prefilters: Mutex::new(HashMap::new()),
            correlations,
            source_map: None,
        }
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
    pub fn rule(&self, index: usize) -> Option<&RuleInfo> {
        self.rules.get(index).map(|r| &r.info)
    }
    pub fn correlations(&self) -> &[ResolvedCorrelation] {
        &self.correlations
    }

    /// Shape of the compiled plan, for reports and tuning.
    pub fn plan_stats(&self) -> PlanStats {
        PlanStats {
            rules: self.rules.len(),
            atoms: self.atoms.len(),
            automaton_atoms: self.atoms.iter().filter(|a| a.by_automaton).count(),
            keyword_atoms: self.atoms.iter().filter(|a| a.field.is_none()).count(),
            untriggered_rules: self.rules.iter().filter(|r| r.trigger.is_none()).count(),
            keyword_prefilter: self.keyword_prefilter.is_some(),
            fields_with_automata: self
                .automata
                .iter()
                .filter(|a| !a.folded.is_empty() || !a.cased.is_empty())
                .count(),
        }
    }

    fn source_rules(&self, source: &EventSource) -> Arc<SourceRules> {
        if let Ok(cache) = self.sources.lock()
            && let Some(s) = cache.get(source)
        {
            return Arc::clone(s);
        }
        let applicable: Vec<bool> = self
            .rules
            .iter()
            .map(|r| logsource_applies(&r.info.logsource, source))
            .collect();
        let untriggered = (0..self.rules.len())
            .filter(|&i| applicable[i] && self.rules[i].trigger.is_none())
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        let needs_keywords = self
            .rules
            .iter()
            .zip(&applicable)
            .any(|(r, a)| *a && r.uses_keywords);
        let mut fields = vec![false; self.fields.len()];
        for (r, a) in self.rules.iter().zip(&applicable) {
            if *a {
                for f in &r.fields {
                    fields[*f as usize] = true;
                }
            }
        }
        // Same validity conditions as the plan-wide prefilter: only when that one exists (all
        // keyword atoms are automaton needles the raw scan cannot miss).
        let keyword_prefilter = if needs_keywords && self.keyword_prefilter.is_some() {
            let mut needles: Vec<Needle> = Vec::new();
            for (r, a) in self.rules.iter().zip(&applicable) {
                if !*a || !r.uses_keywords {
                    continue;
                }
                for atom in expr_atoms(&r.expr) {
                    if let Some(Atom {
                        field: None,
                        matcher: ValueMatcher::Pattern { pattern, .. },
                        ..
                    }) = self.atoms.get(atom as usize)
                        && let Shape::Exact(l)
                        | Shape::Prefix(l)
                        | Shape::Suffix(l)
                        | Shape::Contains(l)
                        | Shape::Glob { required: Some(l) } = pattern.shape()
                    {
                        needles.push((l.to_owned(), atom, UseKind::Contains));
                    }
                }
            }
            needles.sort_by(|x, y| x.0.cmp(&y.0));
            needles.dedup_by(|x, y| x.0 == y.0);
            let key: Vec<String> = needles.iter().map(|n| n.0.clone()).collect();
            let cached = self
                .keyword_prefilters
                .lock()
                .ok()
                .and_then(|c| c.get(&key).cloned());
            match cached {
                Some(prefilter) => prefilter,
                None => {
                    let built = lowered_keyword_prefilter(&needles);
                    if let Ok(mut c) = self.keyword_prefilters.lock() {
                        c.insert(key, built.clone());
                    }
                    built
                }
            }
        } else {
            None
        };
        let s = Arc::new(SourceRules {
            applicable,
            untriggered,
            needs_keywords,
            keyword_prefilter,
            fields,
        });
        if let Ok(mut cache) = self.sources.lock() {
            cache.insert(source.clone(), Arc::clone(&s));
        }
        s
    }

    /// Matches one parsed event against every rule.
    pub fn match_event(&self, doc: &Value, scratch: &mut Scratch) -> Vec<RuleMatch> {
        self.match_event_raw(doc, None, scratch)
    }

    /// Matches one JSON text (a line of a JSON-lines file) against every rule: the same result
    /// as parsing it with serde_json and calling [`Engine::match_event_raw`], without building
    /// a DOM. The line is scanned by [`crate::json`] into a reused tape whose strings borrow
    /// from the line; what the scanner declines (see there) and events of declared event
    /// sources go through serde_json. Errors are serde_json's, for reporting.
    pub fn match_json_line(
        &self,
        line: &[u8],
        scratch: &mut Scratch,
    ) -> Result<LineMatches, serde_json::Error> {
        let mapped = self.source_map.as_deref().is_some_and(|m| m.is_active());
        if !mapped && let Ok(text) = std::str::from_utf8(line) {
            let mut tape = std::mem::take(&mut scratch.tape);
            if tape.parse(text) {
                let root = tape.root(text);
                let raw = RawLine {
                    bytes: line,
                    hiding_escapes: Some(tape.hiding_escapes),
                };
                let matches = self.match_node(root, Some(raw), scratch);
                let timestamp = if matches.is_empty() {
                    None
                } else {
                    timestamp_of(root)
                };
                scratch.tape = tape;
                return Ok(LineMatches { matches, timestamp });
            }
            scratch.tape = tape;
        }
        let doc: Value = serde_json::from_slice(line)?;
        let matches = self.match_event_raw(&doc, Some(line), scratch);
        let timestamp = if matches.is_empty() {
            None
        } else {
            timestamp_of(&doc)
        };
        Ok(LineMatches { matches, timestamp })
    }

    /// Matches with the built-in mappings only; [`Engine::match_event_raw`] (in
    /// [`crate::mapping`]) applies the declared event sources around it.
    pub(crate) fn match_event_unmapped(
        &self,
        doc: &Value,
        raw: Option<&[u8]>,
        scratch: &mut Scratch,
    ) -> Vec<RuleMatch> {
        let raw = raw.map(|bytes| RawLine {
            bytes,
            hiding_escapes: None,
        });
        self.match_node(doc, raw, scratch)
    }

    /// Matching over any document node: a parsed `Value` or a scanned line.
    fn match_node<'d, J: JsonNode<'d>>(
        &self,
        doc: J,
        raw: Option<RawLine<'_>>,
        scratch: &mut Scratch,
    ) -> Vec<RuleMatch> {
        let key = source_key_of(doc);
        let cached = match &key {
            Some((channel, id)) => scratch
                .windows_sources
                .get(channel.as_ref())
                .and_then(|m| m.get(id)),
            None => scratch.unknown_source.as_ref(),
        };
        let sources = match cached {
            Some(s) => Arc::clone(s),
            None => {
                let source = match &key {
                    Some((channel, id)) => EventSource::Windows {
                        channel: channel.to_string(),
                        event_id: *id,
                    },
                    None => EventSource::Unknown,
                };
                // A private copy: sharing one Arc between threads would bounce its reference
                // count between cores on every event.
                let s = Arc::new(SourceRules::clone(&self.source_rules(&source)));
                match key {
                    Some((channel, id)) => {
                        scratch
                            .windows_sources
                            .entry(channel.into_owned())
                            .or_default()
                            .insert(id, Arc::clone(&s));
                    }
                    None => scratch.unknown_source = Some(Arc::clone(&s)),
                }
                s
            }
        };
        let mut view = EventView {
            bindings: recycle(std::mem::take(&mut scratch.bindings)),
            leaves: recycle_leaves(std::mem::take(&mut scratch.leaves)),
            source: None,
        };
        // Keyword rules need every scalar of the event, unless the raw text rules them out.
        let keywords_possible = sources.needs_keywords
            && !self.keywords.is_empty()
            && match (raw, &sources.keyword_prefilter) {
                (
                    Some(RawLine {
                        bytes: raw,
                        hiding_escapes,
                    }),
                    Some(prefilter),
                ) => {
                    // `\u` and `\/` escapes could hide a needle from the raw scan: scan values
                    // then (the scanner already knows whether there are any). The only
                    // characters whose lowercase contains ASCII letters are the Kelvin sign (to
                    // `k`) and the capital I with dot (to `i` + U+0307).
                    hiding_escapes.unwrap_or_else(|| {
                        memchr::memmem::find(raw, b"\\u").is_some()
                            || memchr::memmem::find(raw, b"\\/").is_some()
                    }) || (!raw.is_ascii()
                        && (memchr::memmem::find(raw, "\u{212A}".as_bytes()).is_some()
                            || memchr::memmem::find(raw, "\u{130}".as_bytes()).is_some()))
                        || {
                            let lower = &mut scratch.lowered_line;
                            lower.clear();
                            lower.extend(raw.iter().map(u8::to_ascii_lowercase));
                            prefilter.is_match(lower.as_slice())
                        }
                }
                _ => true,
            };
        build_view_for(doc, &self.fields, &mut view, keywords_possible);
        scratch.begin(self.atoms.len(), self.rules.len(), view.bindings.len());
        let generation = scratch.generation;

        // Aho-Corasick pass over each bound field that has an automaton.
        let mut i = 0;
        while i < view.bindings.len() {
            let field = view.bindings[i].0;
            let end = i + view.bindings[i..].partition_point(|(f, _)| *f == field);
            if sources.fields.get(field as usize).copied().unwrap_or(false)
                && let Some(auto) = self.automata.get(field as usize)
            {
                for bi in i..end {
                    let v = view.bindings[bi].1;
                    if !auto.folded.is_empty() && v.has_text() {
                        ensure_folded(scratch, bi, v);
                        let text = std::mem::take(&mut scratch.folded[bi]);
                        for set in &auto.folded {
                            self.run_acset(set, &text, scratch);
                        }
                        scratch.folded[bi] = text;
                    }
                    if !auto.cased.is_empty()
                        && let Some(text) = v.text()
                    {
                        for set in &auto.cased {
                            self.run_acset(set, &text, scratch);
                        }
                    }
                }
            }
            i = end;
        }

        if keywords_possible {
            let mut buf = std::mem::take(&mut scratch.keyword_buf);
            for leaf in &view.leaves {
                if let Some(text) = leaf.text() {
                    buf.clear();
                    fold_case_into(&text, &mut buf);
                    for set in &self.keywords {
                        self.run_acset(set, &buf, scratch);
                    }
                }
            }
            scratch.keyword_buf = buf;
        }

        // Candidate rules: triggered ones that apply to this source, plus untriggered ones.
        for hit in 0..scratch.hit_atoms.len() {
            let atom = scratch.hit_atoms[hit];
            for &r in &self.atom_triggers[atom as usize] {
                if sources.applicable[r as usize] && scratch.rule_gen[r as usize] != generation {
                    scratch.rule_gen[r as usize] = generation;
                    scratch.candidates.push(r);
                }
            }
        }
        for &r in &sources.untriggered {
            scratch.candidates.push(r);
        }
        scratch.candidates.sort_unstable();
        let candidates = std::mem::take(&mut scratch.candidates);
        let mut matches = Vec::new();
        for &r in &candidates {
            let rule = &self.rules[r as usize];
            if self.eval(&rule.expr, &view, scratch) {
                let mut fields = Vec::new();
                self.explain(&rule.expr, &view, scratch, &mut fields);
                let captures = rule
                    .captures
                    .iter()
                    .map(|(name, id)| {
                        (
                            name.clone(),
                            view.values(*id)
                                .iter()
                                .find_map(|(_, v)| v.text().map(Cow::into_owned)),
                        )
                    })
                    .collect();
                matches.push(RuleMatch {
                    rule: r as usize,
                    fields,
                    captures,
                });
            }
        }
        scratch.candidates = candidates;
        scratch.bindings = recycle(view.bindings);
        scratch.leaves = recycle_leaves(view.leaves);
        matches
    }

    fn run_acset(&self, set: &AcSet, text: &str, scratch: &mut Scratch) {
        match &set.automaton {
            Searcher::Full(ac) => {
                for m in ac.find_overlapping_iter(text) {
                    self.hit(
                        set,
                        m.pattern().as_usize(),
                        m.end() - m.start() == text.len(),
                        text,
                        scratch,
                    );
                }
            }
            Searcher::Anchored(dfa) => {
                let Ok(mut state) = dfa.start_state(Anchored::Yes) else {
                    return;
                };
                let bytes = text.as_bytes();
                let len = bytes.len();
                for i in 0..len {
                    let byte = if set.mode == SearchMode::AnchoredEndReversed {
                        bytes[len - 1 - i]
                    } else {
                        bytes[i]
                    };
                    state = dfa.next_state(Anchored::Yes, state, byte);
                    if dfa.is_dead(state) {
                        break;
                    }
                    if dfa.is_match(state) {
                        for k in 0..dfa.match_len(state) {
                            let pattern = dfa.match_pattern(state, k);
                            // Match states also carry needles that are suffixes of this
                            // prefix; only needles starting at the anchor count.
                            if dfa.pattern_len(pattern) == i + 1 {
                                self.hit(set, pattern.as_usize(), i + 1 == len, text, scratch);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Records a needle hit: `whole` is true when the needle spans the entire value.
    fn hit(&self, set: &AcSet, pattern: usize, whole: bool, text: &str, scratch: &mut Scratch) {
        let generation = scratch.generation;
        for &(atom, kind) in &set.uses[pattern] {
            let a = atom as usize;
            if let UseKind::Regex = kind {
                // The literal is there: the regex may match (evaluated lazily, if a candidate
                // rule reaches it); the atom also counts as a trigger.
                if scratch.gate_gen[a] != generation {
                    scratch.gate_gen[a] = generation;
                    scratch.hit_atoms.push(atom);
                }
                continue;
            }
            if scratch.atom_state[a] == generation << 1 | 1 {
                continue;
            }
            let ok = match kind {
                UseKind::Regex => false,
                UseKind::Contains | UseKind::Prefix | UseKind::Suffix => true,
                UseKind::Exact => whole,
                UseKind::Glob => match &self.atoms[a].matcher {
                    ValueMatcher::Pattern { pattern, .. } => pattern.matches(text),
                    _ => false,
                },
            };
            if ok {
                scratch.atom_state[a] = generation << 1 | 1;
                scratch.hit_atoms.push(atom);
            }
        }
    }

    fn eval(&self, e: &Expr, view: &EventView<'_>, scratch: &mut Scratch) -> bool {
        match e {
            Expr::Const(b) => *b,
            Expr::Atom(a) => self.atom_value(*a, view, scratch),
            Expr::Not(inner) => !self.eval(inner, view, scratch),
            Expr::And(parts) => parts.iter().all(|p| self.eval(p, view, scratch)),
            Expr::Or(parts) => parts.iter().any(|p| self.eval(p, view, scratch)),
            Expr::AtLeast(min, parts) => {
                let mut n = 0;
                for p in parts {
                    if self.eval(p, view, scratch) {
                        n += 1;
                        if n >= *min {
                            return true;
                        }
                    }
                }
                false
            }
        }
    }

    #[inline]
    fn atom_value(&self, a: AtomId, view: &EventView<'_>, scratch: &mut Scratch) -> bool {
        let ai = a as usize;
        let generation = scratch.generation;
        let state = scratch.atom_state[ai];
        if state >> 1 == generation {
            return state & 1 == 1;
        }
        // The compact kind table, not the atom: most atoms asked about are automaton atoms
        // that did not fire, and the atoms themselves are large and spread out in memory.
        let value = match self.atom_kinds[ai] {
            AtomKind::Automaton => false,
            AtomKind::Gated if scratch.gate_gen[ai] != generation => false,
            AtomKind::Gated | AtomKind::Lazy => self.evaluate_atom(&self.atoms[ai], view, scratch),
        };
        scratch.atom_state[ai] = generation << 1 | u32::from(value);
        value
    }

    fn evaluate_atom(&self, atom: &Atom, view: &EventView<'_>, scratch: &mut Scratch) -> bool {
        let Some(field) = atom.field else {
            return self.has_keywords
                && view
                    .leaves
                    .iter()
                    .any(|v| val_matches(&atom.matcher, *v, None));
        };
        let range = view.range(field);
        match &atom.matcher {
            ValueMatcher::Exists(want) => range.is_empty() != *want,
            ValueMatcher::Null => {
                range.is_empty() || view.bindings[range].iter().any(|(_, v)| v.is_null())
            }
            ValueMatcher::FieldRef {
                field: other,
                mode,
                cased,
            } => {
                let Some(other_id) = self.fields.get(other) else {
                    return false;
                };
                let others = view.values(other_id);
                view.bindings[range].iter().any(|(_, l)| {
                    others
                        .iter()
                        .any(|(_, r)| val_fieldref_matches(*mode, *cased, *l, *r))
                })
            }
            ValueMatcher::Pattern { cased: false, .. } => {
                for bi in range {
                    let v = view.bindings[bi].1;
                    if !v.has_text() {
                        continue;
                    }
                    ensure_folded(scratch, bi, v);
                    if val_matches(&atom.matcher, v, Some(&scratch.folded[bi])) {
                        return true;
                    }
                }
                false
            }
            m => view.bindings[range]
                .iter()
                .any(|(_, v)| val_matches(m, *v, None)),
        }
    }

    /// Collects the positive atoms that hold, as (field, value) pairs, for reporting.
    fn explain(
        &self,
        e: &Expr,
        view: &EventView<'_>,
        scratch: &mut Scratch,
        out: &mut Vec<MatchedField>,
    ) {
        match e {
            Expr::Const(_) | Expr::Not(_) => {}
            Expr::Atom(a) => {
                if self.atom_value(*a, view, scratch)
                    && let Some(field) = self.atoms[*a as usize].field
                {
                    let name = self.fields.name(field);
                    if out.iter().any(|m| m.field == name) {
                        return;
                    }
                    let value = view
                        .values(field)
                        .iter()
                        .find_map(|(_, v)| v.text())
                        .map(Cow::into_owned)
                        .unwrap_or_default();
                    out.push(MatchedField {
                        field: name.to_owned(),
                        value,
                    });
                }
            }
            Expr::And(parts) | Expr::Or(parts) | Expr::AtLeast(_, parts) => {
                for p in parts {
                    if self.eval(p, view, scratch) {
                        self.explain(p, view, scratch, out);
                    }
                }
            }
        }
    }
}

/// Builds every field's automata on all cores, biggest first (a few fields such as
/// `CommandLine` hold most needles, so largest-first balances the workers).
/// Folded and cased needles of one field.
type FieldNeedles = (Vec<Needle>, Vec<Needle>);

fn build_all_automata(per_field: Vec<FieldNeedles>) -> Vec<FieldAutomata> {
    let n = per_field.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(per_field[i].0.len() + per_field[i].1.len()));
    let inputs: Vec<Mutex<Option<FieldNeedles>>> =
        per_field.into_iter().map(|p| Mutex::new(Some(p))).collect();
    let outputs: Vec<Mutex<Option<FieldAutomata>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |w| w.get())
        .min(n.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&i) = order.get(k) else { return };
                    let input = inputs[i].lock().ok().and_then(|mut g| g.take());
                    if let Some((folded, cased)) = input {
                        let built = FieldAutomata {
                            folded: build_searchers(folded),
                            cased: build_searchers(cased),
                        };
                        if let Ok(mut slot) = outputs[i].lock() {
                            *slot = Some(built);
                        }
                    }
                }
            });
        }
    });
    outputs
        .into_iter()
        .map(|m| m.into_inner().ok().flatten().unwrap_or_default())
        .collect()
}

/// Builds the raw-text prefilter for keyword needles, or `None` when it could miss a match:
/// a needle with non-ASCII or control characters, a purely numeric needle (numbers are
/// matched in their canonical form, which may differ from the input's), or keyword atoms
/// that are not automaton-driven (`cased`).
fn raw_keyword_prefilter(needles: &[Needle], has_lazy_keywords: bool) -> Option<AhoCorasick> {
    if needles.is_empty() || has_lazy_keywords || !needles.iter().all(prefilterable) {
        return None;
    }
    let escaped: Vec<String> = needles
        .iter()
        .map(|(needle, _, _)| needle.replace('\\', "\\\\").replace('"', "\\\""))
        .collect();
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(AhoCorasickKind::DFA))
        .build(&escaped)
        .ok()
}

/// The longest literal (at least 3 characters, ASCII, lowercase) that every match of the
/// regular expression `pattern` contains, in a form the folded field automata can search:
/// if the regex matches a value, the case-folded value contains the literal.
///
/// The pattern is parsed case-insensitively whatever its flags (that language includes the
/// case-sensitive one, so its required literal is required of both). Only top-level
/// concatenations are read: literal bytes, character classes that are one character or an
/// ASCII letter in both cases (and `k` with the Kelvin sign, which folds to `k`), zero-width
/// assertions in between. Anything else ends a run: `s` under case-insensitivity also
/// matches U+017F, whose lowercase is not `s`, so it is never part of a literal.
fn regex_literal(pattern: &str) -> Option<String> {
    use regex_syntax::hir::{Class, HirKind};
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .build()
        .parse(pattern)
        .ok()?;
    let parts = match hir.kind() {
        HirKind::Concat(parts) => parts.as_slice(),
        _ => std::slice::from_ref(&hir),
    };
    let (mut best, mut run) = (String::new(), String::new());
    let end_run = |run: &mut String, best: &mut String| {
        if run.len() > best.len() {
            *best = std::mem::take(run);
        }
        run.clear();
    };
    for part in parts {
        match part.kind() {
            HirKind::Look(_) => {}
            HirKind::Literal(lit) => {
                for &byte in lit.0.iter() {
                    if byte.is_ascii() && !byte.is_ascii_control() {
                        run.push(char::from(byte.to_ascii_lowercase()));
                    } else {
                        end_run(&mut run, &mut best);
                    }
                }
            }
            HirKind::Class(Class::Unicode(class)) => {
                let chars: Vec<char> = class
                    .ranges()
                    .iter()
                    .flat_map(|r| (r.start()..=r.end()).take(4))
                    .take(4)
                    .collect();
                let letter = match chars.as_slice() {
                    [c] if c.is_ascii() && !c.is_ascii_control() => Some(c.to_ascii_lowercase()),
                    [a, b] if a.is_ascii_uppercase() && *b == a.to_ascii_lowercase() => Some(*b),
                    ['K', 'k', '\u{212A}'] => Some('k'),
                    _ => None,
                };
                match letter {
                    Some(c) => run.push(c),
                    None => end_run(&mut run, &mut best),
                }
            }
            _ => end_run(&mut run, &mut best),
        }
    }
    end_run(&mut run, &mut best);
    (best.len() >= 3).then_some(best)
}

/// Whether the raw text of a line cannot hide this keyword needle: ASCII without control
/// characters, and not purely numeric (numbers are matched in their canonical form, which
/// may differ from the input's).
fn prefilterable((needle, _, _): &Needle) -> bool {
    let numeric = needle
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    needle.is_ascii() && !needle.chars().any(|c| c.is_ascii_control()) && !numeric
}

/// The per-source form of [`raw_keyword_prefilter`] (same validity conditions): needles in
/// ASCII lowercase, searched case-sensitively in a lowercased copy of the line, which lets the
/// automaton use its vectorised literal prefilters (a case-insensitive automaton walks every
/// byte).
fn lowered_keyword_prefilter(needles: &[Needle]) -> Option<AhoCorasick> {
    if needles.is_empty() || !needles.iter().all(prefilterable) {
        return None;
    }
    let lowered: Vec<String> = needles
        .iter()
        .map(|(n, _, _)| {
            n.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .to_ascii_lowercase()
        })
        .collect();
    // Leftmost-first: only "is there a match" is asked, and unlike the standard match kind it
    // lets the crate use its SIMD multi-literal (Teddy) prefilter.
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(&lowered)
        .ok()
}

/// Empties a vector of references and returns it typed for another lifetime, keeping its
/// allocation (the standard library collects in place when element layouts match), so the
/// per-event view does not allocate once warmed up.
// `filter` would keep the old lifetime; `filter_map` to `None` is what changes the type.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'b>(v: Vec<(FieldId, Val<'_>)>) -> Vec<(FieldId, Val<'b>)> {
    v.into_iter().filter_map(|_| None).collect()
}

/// [`recycle`] for the keyword leaves.
#[allow(clippy::unnecessary_filter_map)]
fn recycle_leaves<'b>(v: Vec<Val<'_>>) -> Vec<Val<'b>> {
    v.into_iter().filter_map(|_| None).collect()
}

fn expr_atoms(e: &Expr) -> Vec<AtomId> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Const(_) => {}
            Expr::Atom(a) => out.push(*a),
            Expr::Not(inner) => stack.push(inner),
            Expr::And(parts) | Expr::Or(parts) | Expr::AtLeast(_, parts) => {
                stack.extend(parts.iter())
            }
        }
    }
    out
}

fn ensure_folded(scratch: &mut Scratch, bi: usize, v: Val<'_>) {
    if scratch.folded_gen[bi] == scratch.generation {
        return;
    }
    let buf = &mut scratch.folded[bi];
    buf.clear();
    if let Some(text) = v.text() {
        fold_case_into(&text, buf);
    }
    scratch.folded_gen[bi] = scratch.generation;
}

fn rule_info(r: &SigmaRule, standalone: bool) -> RuleInfo {
    RuleInfo {
        id: r.id.clone(),
        name: r.name.clone(),
        title: r.title.clone(),
        level: r.level,
        logsource: r.logsource.clone(),
        source: r.source.clone(),
        standalone,
    }
}

/// The event fields a correlation reads from events of `rule` (group-by through aliases,
/// and value fields).
pub fn correlation_fields(c: &CorrelationRule, rule: &SigmaRule) -> Vec<String> {
    let mut out = Vec::new();
    for g in c.group_by.iter().chain(c.fields.iter()) {
        out.push(resolve_alias(
            c,
            g,
            rule.name.as_deref(),
            rule.id.as_deref(),
        ));
    }
    out
}

/// The field name that `group_field` stands for in events of the rule named/identified so.
pub fn resolve_alias(
    c: &CorrelationRule,
    group_field: &str,
    name: Option<&str>,
    id: Option<&str>,
) -> String {
    if let Some(per_rule) = c.aliases.get(group_field) {
        for key in [name, id].into_iter().flatten() {
            if let Some(f) = per_rule.get(key) {
                return f.clone();
            }
        }
    }
    group_field.to_owned()
}

fn resolve_correlations(
    rules: &[SigmaRule],
    correlations: &[CorrelationRule],
) -> Vec<ResolvedCorrelation> {
    let mut resolved = correlations
        .iter()
        .map(|c| {
            let refs = c
                .rules
                .iter()
                .filter_map(|name| {
                    if let Some(i) = rules.iter().position(|r| {
                        r.id.as_deref() == Some(name) || r.name.as_deref() == Some(name)
                    }) {
                        return Some(CorrelationRef::Rule(i));
                    }
                    correlations
                        .iter()
                        .position(|o| {
                            o.id.as_deref() == Some(name) || o.name.as_deref() == Some(name)
                        })
                        .map(CorrelationRef::Correlation)
                })
                .collect();
            ResolvedCorrelation {
                rule: c.clone(),
                refs,
                standalone: true,
            }
        })
        .collect::<Vec<_>>();
    mark_quiet_steps(&mut resolved);
    resolved
}

/// Marks correlations used as a step of another correlation (without `generate: true`) as
/// not standalone: only the outermost correlation of a chain is reported.
fn mark_quiet_steps(resolved: &mut [ResolvedCorrelation]) {
    let quiet: Vec<usize> = resolved
        .iter()
        .filter(|c| !c.rule.generate)
        .flat_map(|c| c.refs.iter())
        .filter_map(|r| match r {
            CorrelationRef::Correlation(j) => Some(*j),
            CorrelationRef::Rule(_) => None,
        })
        .collect();
    for j in quiet {
        if let Some(c) = resolved.get_mut(j) {
            c.standalone = false;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn regex_literals_are_required_and_foldable() {
        for (pattern, want) in [
            (r"route\s+print", Some("route")),
            (r"net\s+config", Some("config")),
            (
                r"(?i)\$VerbosePreference\.ToString\(",
                Some("epreference.to"),
            ),
            (r"\$env:Public\[\s*\d{1,3}", Some("$env:public[")),
            (r"^C:\\Windows\\", Some("c:\\window")),
            (r"\bipconfig\b", Some("ipconfig")),
            (r"abc", Some("abc")),
            (r"arp\s+-a", Some("arp")),
            (r"nbtstat\s+-n", Some("nbt")),
            (r"ab", None),
            (r"abcd|efgh", None),
            (r"(?:abcd)+", None),
            (r"kkkk", Some("kkkk")),
            (r"ssss", None),
        ] {
            assert_eq!(regex_literal(pattern).as_deref(), want, "{pattern}");
        }
    }

    proptest! {
        /// Whenever a regex matches a text (case-sensitively or not), the folded text
        /// contains the extracted literal: the gate never hides a match.
        #[test]
        fn regex_literal_is_in_every_folded_match(
            pattern in prop::sample::select(vec![
                r"kerb\w+", r"ab\s*cd+ef", r"\bwork[0-9]", r"x.yzzk", r"(?i)KEY\d", r"é+abcd",
                r"arp\s+-a", r"nbtstat\s+-n", r"k\wy",
            ]),
            insensitive in any::<bool>(),
            text in "[a-zA-Z0-9 \u{212A}\u{17F}\u{130}é_]{0,12}",
            middle in prop::sample::select(vec!["kerbX", "abcdef", "ab cddef", "work7", "xQyzzk", "key1", "KEY9", "\u{212A}ey4", "éabcd", "ARP  -a", "nbt\u{17F}tat -n", "NBTSTAT -N", "\u{212A}ey"]),
        ) {
            let re = regex::RegexBuilder::new(pattern).case_insensitive(insensitive).build().unwrap();
            let Some(literal) = regex_literal(pattern) else { return Ok(()) };
            for t in [text.clone(), format!("{text}{middle}{text}")] {
                if re.is_match(&t) {
                    prop_assert!(fold_case(&t).contains(&literal), "{pattern} {t:?} {literal:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod regex_flags {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::rule::LoadOptions;

    /// The same pattern with and without `|i` is two different atoms.
    #[test]
    fn regex_flags_are_part_of_the_atom() {
        let mut set = RuleSet::default();
        set.add_text(
            "r.yml",
            "title: cased\nlogsource: {product: test}\ndetection:\n  s:\n    f|re: 'abcd'\n  condition: s\n---\ntitle: nocase\nlogsource: {product: test}\ndetection:\n  s:\n    f|re|i: 'abcd'\n  condition: s\n",
            &LoadOptions::default(),
        );
        assert!(set.problems.is_empty(), "{:?}", set.problems);
        let engine = Engine::compile(&set);
        let mut scratch = Scratch::default();
        let doc: Value = serde_json::from_str(r#"{"f":"xABCDx"}"#).unwrap();
        let got: Vec<String> = engine
            .match_event(&doc, &mut scratch)
            .iter()
            .map(|m| engine.rule(m.rule).unwrap().title.clone())
            .collect();
        assert_eq!(got, vec!["nocase".to_owned()]);
    }
}
