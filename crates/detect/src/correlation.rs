//! Sigma correlation rules (v2.1) evaluated over a time-ordered stream of rule hits.
//!
//! Each correlation keeps, per group (the values of its `group-by` fields, resolved through
//! `aliases` for the rule that produced the hit), the hits inside its `timespan`:
//!
//! * conditions with only lower bounds (`gt`, `gte`; the default for temporal types) are
//!   checked on a sliding window ending at each new hit, fire as soon as they hold, and then
//!   start the group afresh so one burst produces one match;
//! * conditions with an upper bound or equality (`lt`, `lte`, `eq`, `neq`) can only be decided
//!   once the window is complete: the window opens at a group's first hit, is evaluated when a
//!   later hit falls outside it or at the end of the stream ([`CorrelationEngine::finish`]).
//!
//! A correlation match is itself a hit for correlations that reference it (chaining); its
//! fields are its group-by values.

use std::collections::{HashMap, HashSet, VecDeque};

use jiff::Timestamp;

use crate::engine::{CorrelationRef, Engine, ResolvedCorrelation, resolve_alias};
use crate::rule::{CorrelationRule, CorrelationType};

/// A hit from a detection rule (or a fired correlation) fed to correlations.
#[derive(Debug, Clone)]
pub struct CorrelationHit {
    pub source: CorrelationRef,
    pub time: Timestamp,
    /// Field values of the event (captured by the engine for the fields correlations use).
    pub fields: Vec<(String, Option<String>)>,
}

/// A correlation that fired.
#[derive(Debug, Clone)]
pub struct CorrelationMatch {
    /// Index into [`Engine::correlations`].
    pub correlation: usize,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The group (group-by field → value).
    pub group: Vec<(String, Option<String>)>,
    /// The aggregated value that satisfied the condition (count, sum, average, percentage).
    pub value: f64,
    pub hits: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    time: Timestamp,
    /// Position of the source in the correlation's `rules` list.
    position: usize,
    value: Option<String>,
}

/// Evaluates all correlations of an engine.
#[derive(Debug)]
pub struct CorrelationEngine {
    correlations: Vec<ResolvedCorrelation>,
    /// Name and id of each detection rule, for alias resolution.
    rule_names: Vec<(Option<String>, Option<String>)>,
    windows: Vec<HashMap<Vec<Option<String>>, VecDeque<Entry>>>,
}

fn fire_metric(c: &CorrelationRule, window: &VecDeque<Entry>, current: Option<&str>) -> f64 {
    match c.kind {
        CorrelationType::EventCount => window.len() as f64,
        CorrelationType::ValueCount => window
            .iter()
            .filter_map(|e| e.value.as_deref())
            .collect::<HashSet<_>>()
            .len() as f64,
        CorrelationType::ValueSum => window
            .iter()
            .filter_map(|e| e.value.as_deref()?.trim().parse::<f64>().ok())
            .sum(),
        CorrelationType::ValueAvg => {
            let nums: Vec<f64> = window
                .iter()
                .filter_map(|e| e.value.as_deref()?.trim().parse::<f64>().ok())
                .collect();
            if nums.is_empty() {
                f64::NAN
            } else {
                nums.iter().sum::<f64>() / nums.len() as f64
            }
        }
        CorrelationType::ValuePercentile => {
            // Share (in percent) of the window's hits that carry the current hit's value.
            let Some(cur) = current else { return f64::NAN };
            let same = window
                .iter()
                .filter(|e| e.value.as_deref() == Some(cur))
                .count();
            if window.is_empty() {
                f64::NAN
            } else {
                same as f64 * 100.0 / window.len() as f64
            }
        }
        CorrelationType::Temporal => window
            .iter()
            .map(|e| e.position)
            .collect::<HashSet<_>>()
            .len() as f64,
        CorrelationType::TemporalOrdered => {
            // How many of the referenced rules appear in the given order within the window.
            let mut next = 0usize;
            for e in window {
                if e.position == next {
                    next += 1;
                    if next == c.rules.len() {
                        break;
                    }
                }
            }
            next as f64
        }
    }
}

impl CorrelationEngine {
    pub fn new(engine: &Engine) -> CorrelationEngine {
        let correlations = engine.correlations().to_vec();
        let rule_names = (0..engine.rule_count())
            .map(|i| {
                engine
                    .rule(i)
                    .map_or((None, None), |r| (r.name.clone(), r.id.clone()))
            })
            .collect();
        let windows = correlations.iter().map(|_| HashMap::new()).collect();
        CorrelationEngine {
            correlations,
            rule_names,
            windows,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.correlations.is_empty()
    }

    fn names_of(&self, source: CorrelationRef) -> (Option<&str>, Option<&str>) {
        match source {
            CorrelationRef::Rule(i) => self
                .rule_names
                .get(i)
                .map_or((None, None), |(n, id)| (n.as_deref(), id.as_deref())),
            CorrelationRef::Correlation(j) => self.correlations.get(j).map_or((None, None), |c| {
                (c.rule.name.as_deref(), c.rule.id.as_deref())
            }),
        }
    }

    /// Feeds one hit (hits must arrive in time order); returns the correlations that fired,
    /// including chained ones.
    pub fn push(&mut self, hit: CorrelationHit) -> Vec<CorrelationMatch> {
        let mut fired = Vec::new();
        let mut queue = vec![hit];
        while let Some(h) = queue.pop() {
            for ci in 0..self.correlations.len() {
                let Some(position) = self.correlations[ci]
                    .refs
                    .iter()
                    .position(|r| *r == h.source)
                else {
                    continue;
                };
                if let Some(m) = self.push_into(ci, position, &h) {
                    queue.extend(m.iter().map(|m| self.as_hit(m)));
                    fired.extend(m);
                }
            }
        }
        fired
    }

    fn as_hit(&self, m: &CorrelationMatch) -> CorrelationHit {
        CorrelationHit {
            source: CorrelationRef::Correlation(m.correlation),
            time: m.last,
            fields: m.group.clone(),
        }
    }

    fn push_into(
        &mut self,
        ci: usize,
        position: usize,
        h: &CorrelationHit,
    ) -> Option<Vec<CorrelationMatch>> {
        let (name, id) = self.names_of(h.source);
        let (name, id) = (name.map(str::to_owned), id.map(str::to_owned));
        let c = &self.correlations[ci].rule;
        let lookup = |field: &str| -> Option<String> {
            let actual = resolve_alias(c, field, name.as_deref(), id.as_deref());
            h.fields
                .iter()
                .find(|(f, _)| *f == actual || f == field)
                .and_then(|(_, v)| v.clone())
        };
        let key: Vec<Option<String>> = c.group_by.iter().map(|g| lookup(g)).collect();
        let value = c.fields.first().and_then(|f| lookup(f));
        let span = jiff::SignedDuration::from_secs(c.timespan_seconds);
        let lower_only = c.condition.is_lower_bound_only();
        let c = c.clone();
        let window = self.windows[ci].entry(key.clone()).or_default();
        let mut out = Vec::new();
        if lower_only {
            window.push_back(Entry {
                time: h.time,
                position,
                value: value.clone(),
            });
            while window.front().is_some_and(|e| e.time < h.time - span) {
                window.pop_front();
            }
            let metric = fire_metric(&c, window, value.as_deref());
            if c.condition.holds(metric) {
                out.push(make_match(ci, &c, &key, window, metric));
                window.clear();
            }
        } else {
            if window.front().is_some_and(|e| h.time > e.time + span) {
                let metric = fire_metric(&c, window, None);
                if c.condition.holds(metric) {
                    out.push(make_match(ci, &c, &key, window, metric));
                }
                window.clear();
            }
            window.push_back(Entry {
                time: h.time,
                position,
                value,
            });
        }
        (!out.is_empty()).then_some(out)
    }

    /// Closes every open window (end of input) and returns what fires then.
    pub fn finish(&mut self) -> Vec<CorrelationMatch> {
        let mut out = Vec::new();
        for ci in 0..self.correlations.len() {
            let c = self.correlations[ci].rule.clone();
            if c.condition.is_lower_bound_only() {
                continue;
            }
            let mut groups: Vec<_> = self.windows[ci].drain().collect();
            groups.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, window) in groups {
                if window.is_empty() {
                    continue;
                }
                let metric = fire_metric(&c, &window, None);
                if c.condition.holds(metric) {
                    out.push(make_match(ci, &c, &key, &window, metric));
                }
            }
        }
        out
    }
}

fn make_match(
    ci: usize,
    c: &CorrelationRule,
    key: &[Option<String>],
    window: &VecDeque<Entry>,
    value: f64,
) -> CorrelationMatch {
    let first = window.front().map_or(Timestamp::UNIX_EPOCH, |e| e.time);
    let last = window.back().map_or(Timestamp::UNIX_EPOCH, |e| e.time);
    CorrelationMatch {
        correlation: ci,
        first,
        last,
        group: c
            .group_by
            .iter()
            .cloned()
            .zip(key.iter().cloned())
            .collect(),
        value,
        hits: window.len(),
    }
}
