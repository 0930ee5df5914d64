//! Online detection: events in, signals out.
//!
//! The server matches ingested events with the same compiled [`Engine`] that `hunt` uses.
//! A [`Detector`] adds what a live stream needs on top of single-event matching: it turns
//! matches into [`Signal`]s (rule, severity, a stable deduplication key, the fields that
//! matched, the event's reference) and keeps correlation state across events. It does no I/O;
//! storing signals is the caller's job.
//!
//! Correlation windows assume events arrive roughly in time order, as they do from a live
//! source; an event older than the newest one seen is still matched but may fall outside a
//! window it would have belonged to.

use std::sync::Arc;

use serde_json::Value;

use crate::correlation::{CorrelationEngine, CorrelationHit, CorrelationMatch};
use crate::engine::{CorrelationRef, Engine, MatchedField, Scratch};
use crate::event::{event_timestamp, parse_timestamp};
use crate::rule::Level;

/// Why a signal was raised.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalKind {
    /// A detection rule matched one event.
    Detection,
    /// A correlation rule fired over several events.
    Correlation {
        hits: usize,
        value: f64,
        first: jiff::Timestamp,
        last: jiff::Timestamp,
    },
}

/// A rule match ready to be stored and alerted on.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// The rule's id (or name, or title when it has neither).
    pub rule_id: String,
    pub title: String,
    pub level: Option<Level>,
    /// Equal for signals that report the same thing (same rule, same matched values, or for
    /// correlations the same group and window start): a store can drop or count repeats.
    pub dedup_key: String,
    pub fields: Vec<MatchedField>,
    /// The caller's reference to the event (e.g. a stored event id); empty for correlations.
    pub event_ref: String,
    pub time: Option<jiff::Timestamp>,
    pub kind: SignalKind,
}

/// FNV-1a, 64 bits: stable across runs and platforms (std's hasher is randomly seeded), which
/// a persisted deduplication key needs.
fn stable_hash(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Matches a stream of events; one per stream (it holds correlation state and scratch space).
#[derive(Debug)]
pub struct Detector {
    engine: Arc<Engine>,
    scratch: Scratch,
    correlations: CorrelationEngine,
    feeds_correlation: Vec<bool>,
}

impl Detector {
    pub fn new(engine: Arc<Engine>) -> Detector {
        let mut feeds = vec![false; engine.rule_count()];
        for c in engine.correlations() {
            for r in &c.refs {
                if let CorrelationRef::Rule(i) = r
                    && let Some(slot) = feeds.get_mut(*i)
                {
                    *slot = true;
                }
            }
        }
        let correlations = CorrelationEngine::new(&engine);
        Detector {
            engine,
            scratch: Scratch::default(),
            correlations,
            feeds_correlation: feeds,
        }
    }

    /// Matches one event; returns the signals it raises (its own matches and any correlation
    /// it completes).
    pub fn process(&mut self, event: &Value, event_ref: &str) -> Vec<Signal> {
        self.process_from(event, event_ref, None)
    }

    /// Like [`Detector::process`] for an event received under the ingestion source name
    /// `ingest_source` (it selects the event source's field mappings and log source).
    pub fn process_from(
        &mut self,
        event: &Value,
        event_ref: &str,
        ingest_source: Option<&str>,
    ) -> Vec<Signal> {
        let matches = self
            .engine
            .match_event_from(event, None, ingest_source, &mut self.scratch);
        if matches.is_empty() {
            return Vec::new();
        }
        let time = event_timestamp(event).as_deref().and_then(parse_timestamp);
        let mut signals = Vec::new();
        for m in matches {
            let Some(info) = self.engine.rule(m.rule) else {
                continue;
            };
            if self.feeds_correlation.get(m.rule).copied().unwrap_or(false)
                && let Some(t) = time
            {
                let hit = CorrelationHit {
                    source: CorrelationRef::Rule(m.rule),
                    time: t,
                    fields: m.captures.clone(),
                };
                for c in self.correlations.push(hit) {
                    if self
                        .engine
                        .correlations()
                        .get(c.correlation)
                        .is_some_and(|r| r.standalone)
                    {
                        signals.push(self.correlation_signal(&c));
                    }
                }
            }
            if !info.standalone {
                continue;
            }
            let rule_id = info
                .id
                .clone()
                .or_else(|| info.name.clone())
                .unwrap_or_else(|| info.title.clone());
            let mut parts: Vec<&str> = vec![rule_id.as_str()];
            for f in &m.fields {
                parts.push(&f.field);
                parts.push(&f.value);
            }
            let dedup_key = stable_hash(&parts);
            signals.push(Signal {
                rule_id: rule_id.clone(),
                title: info.title.clone(),
                level: info.level,
                dedup_key,
                fields: m.fields,
                event_ref: event_ref.to_owned(),
                time,
                kind: SignalKind::Detection,
            });
        }
        signals
    }

    /// Closes open correlation windows (shutdown, or end of a batch import).
    pub fn finish(&mut self) -> Vec<Signal> {
        let fired = self.correlations.finish();
        fired
            .iter()
            .filter(|c| {
                self.engine
                    .correlations()
                    .get(c.correlation)
                    .is_some_and(|r| r.standalone)
            })
            .map(|c| self.correlation_signal(c))
            .collect()
    }

    fn correlation_signal(&self, c: &CorrelationMatch) -> Signal {
        let (rule_id, title, level) = match self.engine.correlations().get(c.correlation) {
            Some(r) => (
                r.rule
                    .id
                    .clone()
                    .or_else(|| r.rule.name.clone())
                    .unwrap_or_else(|| r.rule.title.clone()),
                r.rule.title.clone(),
                r.rule.level,
            ),
            None => (String::new(), String::new(), None),
        };
        let first = c.first.to_string();
        let mut parts: Vec<&str> = vec![rule_id.as_str(), first.as_str()];
        let fields: Vec<MatchedField> = c
            .group
            .iter()
            .map(|(k, v)| MatchedField {
                field: k.clone(),
                value: v.clone().unwrap_or_default(),
            })
            .collect();
        for f in &fields {
            parts.push(&f.field);
            parts.push(&f.value);
        }
        Signal {
            dedup_key: stable_hash(&parts),
            rule_id,
            title,
            level,
            fields,
            event_ref: String::new(),
            time: Some(c.last),
            kind: SignalKind::Correlation {
                hits: c.hits,
                value: c.value,
                first: c.first,
                last: c.last,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{LoadOptions, RuleSet};
    use serde_json::json;

    fn detector(yaml: &str) -> Detector {
        let mut set = RuleSet::default();
        set.add_text("t.yml", yaml, &LoadOptions::default());
        set.resolve();
        assert!(set.problems.is_empty(), "{:?}", set.problems);
        Detector::new(Arc::new(Engine::compile(&set)))
    }

    #[test]
    fn signals_carry_rule_fields_reference_and_stable_dedup_keys() {
        let mut d = detector(
            "title: t\nid: r-1\nlogsource:\n    product: x\ndetection:\n    s:\n        Image|endswith: '\\evil.exe'\n    condition: s\nlevel: high\n",
        );
        let e1 = json!({"Image": "C:\\evil.exe", "timestamp": "2024-01-01T00:00:00Z"});
        let e2 = json!({"Image": "C:\\evil.exe", "timestamp": "2024-01-01T00:05:00Z"});
        let e3 = json!({"Image": "D:\\evil.exe", "timestamp": "2024-01-01T00:06:00Z"});
        let s1 = d.process(&e1, "ev-1");
        let s2 = d.process(&e2, "ev-2");
        let s3 = d.process(&e3, "ev-3");
        assert_eq!(s1.len(), 1);
        assert_eq!(s1[0].rule_id, "r-1");
        assert_eq!(s1[0].level, Some(Level::High));
        assert_eq!(s1[0].event_ref, "ev-1");
        assert_eq!(
            s1[0].fields,
            vec![MatchedField {
                field: "Image".into(),
                value: "C:\\evil.exe".into()
            }]
        );
        assert_eq!(s1[0].dedup_key, s2[0].dedup_key, "same rule and values");
        assert_ne!(s1[0].dedup_key, s3[0].dedup_key, "different value");
        // Stable across runs: a fixed input gives a fixed key.
        assert_eq!(stable_hash(&["a", "b"]), stable_hash(&["a", "b"]));
        assert_ne!(stable_hash(&["ab", ""]), stable_hash(&["a", "b"]));
        assert!(d.process(&json!({"Image": "calc.exe"}), "ev-4").is_empty());
    }

    #[test]
    fn correlations_fire_across_processed_events() {
        let mut d = detector(
            "title: fail\nid: f\nlogsource:\n    product: x\ndetection:\n    s:\n        action: fail\n    condition: s\n---\ntitle: brute force\nid: bf\ncorrelation:\n    type: event_count\n    rules: [f]\n    group-by: [user]\n    timespan: 1m\n    condition:\n        gte: 2\nlevel: high\n",
        );
        let ev = |t: &str| json!({"action": "fail", "user": "u", "timestamp": t});
        assert!(
            d.process(&ev("2024-01-01T00:00:00Z"), "1").is_empty(),
            "referenced rule is not standalone"
        );
        let s = d.process(&ev("2024-01-01T00:00:30Z"), "2");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].rule_id, "bf");
        assert!(matches!(s[0].kind, SignalKind::Correlation { hits: 2, .. }));
        assert_eq!(
            s[0].fields,
            vec![MatchedField {
                field: "user".into(),
                value: "u".into()
            }]
        );
    }
}
