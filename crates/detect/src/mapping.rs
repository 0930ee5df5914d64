//! Event sources and their field mappings: which events a rule applies to, and under which
//! names the rule finds their fields.
//!
//! Sigma rules name fields the way their log source names them (`CommandLine`, `Image`), and
//! say which log source they are for (`product`/`category`/`service`). Events arrive in
//! whatever shape their sender writes. Sigma leaves the bridge to *processing pipelines*
//! (`field_name_mapping`, logsource conditions), Hayabusa to field-mapping files; here it is a
//! [`SourceMap`] built from configuration (the pack's `EventSource` documents, see
//! `docs/events.md`):
//!
//! * each source has an id (the ingestion source name), the log source it provides, an
//!   optional content test that recognises its events whatever name they were sent under,
//!   and field mappings (path in the event → field name);
//! * an event is attributed to a source ([`SourceMap::identify`]): by ingestion name first,
//!   then by content, then — the built-in `windows` source — by the shape of a Windows event
//!   log record (`Event.System`, or flattened `Channel` + `EventID`);
//! * the event the rules see is the event plus its mapped fields ([`SourceMap::map_event`]);
//! * a rule applies only when its `logsource` agrees with the source's
//!   ([`SourceMap::rule_applies`]).
//!
//! The built-in `windows` source needs no field mappings: the event view binds
//! `Event.System.*` / `Event.EventData.*` (both XML attribute renderings) under their short
//! Sigma names for every event ([`crate::event`]), and the engine narrows Windows rules by
//! channel and event id ([`crate::windows`]). A pack may still declare a source named
//! `windows` to add mappings or change its retention.
//!
//! An [`Engine`] carries its source map ([`Engine::with_source_map`]); without one (or with
//! one that declares nothing beyond the built-in source) matching is exactly as before, with
//! no per-event cost.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::engine::{Engine, RuleMatch, Scratch};
use crate::event::event_source_key;
use crate::rule::LogSource;

/// Id of the built-in source of Windows event-log records.
pub const WINDOWS_SOURCE: &str = "windows";

/// How a source recognises its events by content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognition {
    /// Dotted path in the event as received.
    pub field: String,
    /// The value at that path, compared as text.
    pub equals: String,
}

/// One field mapping: the value at `from` (dotted path in the event as received) is also
/// visible to rules as `to` (a field name; dotted names are nested paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    pub from: String,
    pub to: String,
}

/// Configuration of one event source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceConfig {
    /// Ingestion source name (unique).
    pub id: String,
    /// The log source its events provide. All empty: rules of any log source apply.
    pub logsource: LogSource,
    pub recognize: Option<Recognition>,
    pub fields: Vec<FieldMapping>,
}

/// Why a source configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("event source id is empty")]
    EmptyId,
    #[error("event source `{0}` is declared twice")]
    DuplicateSource(String),
    #[error("event source `{source_id}`: field mapping from `{from}` has an empty field name")]
    EmptyName { source_id: String, from: String },
    #[error("event source `{source_id}`: a field mapping has an empty source path")]
    EmptyPath { source_id: String },
    #[error("event source `{source_id}`: `recognize` has an empty field path")]
    EmptyRecognition { source_id: String },
}

#[derive(Debug, Clone)]
struct Source {
    config: SourceConfig,
    /// Recognises Windows event-log records (the `windows` source).
    windows_shape: bool,
    from_paths: Vec<Vec<String>>,
    recognize_path: Option<Vec<String>>,
}

/// Index of a source in its [`SourceMap`].
pub type SourceIndex = usize;

/// The configured event sources, compiled for per-event use.
#[derive(Debug, Clone)]
pub struct SourceMap {
    sources: Vec<Source>,
    /// Whether any source does more than the built-in Windows handling (mappings, logsource
    /// narrowing or recognition of non-Windows events): when none does, matching skips the
    /// source map entirely.
    active: bool,
}

impl Default for SourceMap {
    fn default() -> Self {
        SourceMap {
            sources: vec![windows_source(SourceConfig::default())],
            active: false,
        }
    }
}

fn windows_source(mut config: SourceConfig) -> Source {
    config.id = WINDOWS_SOURCE.to_owned();
    if config.logsource == LogSource::default() {
        config.logsource.product = Some("windows".to_owned());
    }
    let from_paths = config.fields.iter().map(|f| split_path(&f.from)).collect();
    let recognize_path = config.recognize.as_ref().map(|r| split_path(&r.field));
    Source {
        config,
        windows_shape: true,
        from_paths,
        recognize_path,
    }
}

fn split_path(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

impl SourceMap {
    /// Compiles source configurations. The built-in `windows` source is always present; a
    /// configuration with id `windows` extends it (mappings, logsource, retention).
    pub fn new(configs: Vec<SourceConfig>) -> Result<SourceMap, MappingError> {
        let mut seen = std::collections::HashSet::new();
        let mut sources = Vec::new();
        let mut windows = None;
        for config in configs {
            if config.id.is_empty() {
                return Err(MappingError::EmptyId);
            }
            if !seen.insert(config.id.clone()) {
                return Err(MappingError::DuplicateSource(config.id));
            }
            for f in &config.fields {
                if f.from.is_empty() {
                    return Err(MappingError::EmptyPath {
                        source_id: config.id.clone(),
                    });
                }
                if f.to.trim().is_empty() {
                    return Err(MappingError::EmptyName {
                        source_id: config.id.clone(),
                        from: f.from.clone(),
                    });
                }
            }
            if config
                .recognize
                .as_ref()
                .is_some_and(|r| r.field.is_empty())
            {
                return Err(MappingError::EmptyRecognition {
                    source_id: config.id.clone(),
                });
            }
            if config.id == WINDOWS_SOURCE {
                windows = Some(windows_source(config));
                continue;
            }
            let from_paths = config.fields.iter().map(|f| split_path(&f.from)).collect();
            let recognize_path = config.recognize.as_ref().map(|r| split_path(&r.field));
            sources.push(Source {
                config,
                windows_shape: false,
                from_paths,
                recognize_path,
            });
        }
        let windows = windows.unwrap_or_else(|| windows_source(SourceConfig::default()));
        let active = !sources.is_empty()
            || !windows.config.fields.is_empty()
            || windows.config.recognize.is_some()
            || windows.config.logsource.category.is_some()
            || windows.config.logsource.service.is_some()
            || windows.config.logsource.product.as_deref() != Some("windows");
        // The built-in source comes last: a declared source claims its events first.
        sources.push(windows);
        Ok(SourceMap { sources, active })
    }

    /// Whether this map changes anything compared with the built-in defaults.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The configuration of a source.
    pub fn config(&self, index: SourceIndex) -> Option<&SourceConfig> {
        self.sources.get(index).map(|s| &s.config)
    }

    /// Source ids, in the order they are tried.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(|s| s.config.id.as_str())
    }

    /// The source an event belongs to: the one named by `ingest_source`, else the first whose
    /// `recognize` test holds, else `windows` for a Windows event-log record; `None` when no
    /// source claims it (then every rule applies and its detection alone decides).
    pub fn identify(&self, doc: &Value, ingest_source: Option<&str>) -> Option<SourceIndex> {
        if let Some(name) = ingest_source
            && let Some(i) = self.sources.iter().position(|s| s.config.id == name)
        {
            return Some(i);
        }
        if let Some(i) =
            self.sources
                .iter()
                .position(|s| match (&s.recognize_path, &s.config.recognize) {
                    (Some(path), Some(r)) => {
                        lookup(doc, path).and_then(text_of).as_deref() == Some(r.equals.as_str())
                    }
                    _ => false,
                })
        {
            return Some(i);
        }
        if event_source_key(doc).is_some() {
            return self.sources.iter().position(|s| s.windows_shape);
        }
        None
    }

    /// The event as rules see it for `source`: the event plus every mapped field whose
    /// source path has a value (a mapped name the event already has is left alone). `None`
    /// when nothing was added (use the event as it is).
    pub fn map_event(&self, source: SourceIndex, doc: &Value) -> Option<Value> {
        let s = self.sources.get(source)?;
        if s.config.fields.is_empty() {
            return None;
        }
        let Value::Object(_) = doc else {
            return None;
        };
        let mut mapped = doc.clone();
        let mut added = false;
        for (f, path) in s.config.fields.iter().zip(&s.from_paths) {
            if let Some(v) = lookup(doc, path) {
                added |= set_path(&mut mapped, &f.to, v.clone());
            }
        }
        added.then_some(mapped)
    }

    /// Whether a rule with `logsource` applies to events of `source`. Each of `product`,
    /// `category` and `service` the rule names must equal the source's (case-insensitively);
    /// a source that declares no log source at all accepts every rule. For the `windows`
    /// source the engine also narrows category and service by channel and event id.
    pub fn rule_applies(&self, source: SourceIndex, logsource: &LogSource) -> bool {
        let Some(s) = self.sources.get(source) else {
            return true;
        };
        let declared = &s.config.logsource;
        if *declared == LogSource::default() {
            return true;
        }
        let agrees = |rule: &Option<String>, mine: &Option<String>| match (rule, mine) {
            (None, _) => true,
            (Some(r), Some(m)) => r.eq_ignore_ascii_case(m),
            (Some(_), None) => false,
        };
        if s.windows_shape {
            // Categories and services of Windows rules are resolved by channel (engine).
            return agrees(&logsource.product, &declared.product)
                && (declared.category.is_none()
                    || agrees(&logsource.category, &declared.category))
                && (declared.service.is_none() || agrees(&logsource.service, &declared.service));
        }
        agrees(&logsource.product, &declared.product)
            && agrees(&logsource.category, &declared.category)
            && agrees(&logsource.service, &declared.service)
    }
}

/// The value at a dotted path: a key holding the whole dotted name is tried first at each
/// level (flattened exports), then nested objects.
fn lookup<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    let Value::Object(map) = doc else {
        return None;
    };
    let (first, rest) = path.split_first()?;
    if !rest.is_empty() {
        let joined = path.join(".");
        if let Some(v) = map.get(&joined) {
            return Some(v);
        }
    }
    let v = map.get(first)?;
    if rest.is_empty() {
        Some(v)
    } else {
        lookup(v, rest)
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Sets a dotted name, creating objects on the way. Returns false (and changes nothing) when
/// the name is already set or a non-object is in the way.
fn set_path(doc: &mut Value, name: &str, value: Value) -> bool {
    let mut current = doc;
    let mut parts = name.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = current else {
            return false;
        };
        if parts.peek().is_none() {
            if map.contains_key(part) {
                return false;
            }
            map.insert(part.to_owned(), value);
            return true;
        }
        current = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    false
}

impl Engine {
    /// Attaches event sources: matching then maps each event's fields and applies only the
    /// rules whose log source agrees with the event's source.
    #[must_use]
    pub fn with_source_map(mut self, map: SourceMap) -> Engine {
        self.source_map = Some(Arc::new(map));
        self
    }

    /// The event sources this engine matches with, if any were attached.
    pub fn source_map(&self) -> Option<&SourceMap> {
        self.source_map.as_deref()
    }

    /// Like [`Engine::match_event`], given also the JSON text `doc` was parsed from: keyword
    /// rules are then prefiltered on the raw text (one fast scan) instead of scanning every
    /// value of every event.
    pub fn match_event_raw(
        &self,
        doc: &Value,
        raw: Option<&[u8]>,
        scratch: &mut Scratch,
    ) -> Vec<RuleMatch> {
        self.match_event_from(doc, raw, None, scratch)
    }

    /// Matches one event received under the ingestion source name `ingest_source` (which
    /// attributes it to the event source of that id, see [`SourceMap::identify`]).
    pub fn match_event_from(
        &self,
        doc: &Value,
        raw: Option<&[u8]>,
        ingest_source: Option<&str>,
        scratch: &mut Scratch,
    ) -> Vec<RuleMatch> {
        let Some(map) = self.source_map.as_deref().filter(|m| m.is_active()) else {
            return self.match_event_unmapped(doc, raw, scratch);
        };
        let Some(source) = map.identify(doc, ingest_source) else {
            return self.match_event_unmapped(doc, raw, scratch);
        };
        // Mapped fields are copies of values already in the text, so the raw keyword
        // prefilter stays valid for the mapped event.
        let mut matches = match map.map_event(source, doc) {
            Some(mapped) => self.match_event_unmapped(&mapped, raw, scratch),
            None => self.match_event_unmapped(doc, raw, scratch),
        };
        matches.retain(|m| {
            self.rule(m.rule)
                .is_none_or(|info| map.rule_applies(source, &info.logsource))
        });
        matches
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn auditd() -> SourceConfig {
        SourceConfig {
            id: "auditd".into(),
            logsource: LogSource {
                product: Some("linux".into()),
                category: Some("process_creation".into()),
                service: None,
            },
            recognize: Some(Recognition {
                field: "event.module".into(),
                equals: "auditd".into(),
            }),
            fields: vec![FieldMapping {
                from: "proc.cmd".into(),
                to: "CommandLine".into(),
            }],
        }
    }

    #[test]
    fn identify_by_name_then_content_then_windows_shape() {
        let map = SourceMap::new(vec![auditd()]).unwrap();
        assert!(map.is_active());
        let plain = json!({"x": 1});
        assert_eq!(map.identify(&plain, Some("auditd")), Some(0));
        assert_eq!(map.identify(&plain, Some("other")), None);
        let by_content = json!({"event": {"module": "auditd"}});
        assert_eq!(map.identify(&by_content, None), Some(0));
        let win = json!({"Event": {"System": {"Channel": "Security", "EventID": 4624}}});
        let w = map.identify(&win, None).unwrap();
        assert_eq!(map.config(w).unwrap().id, WINDOWS_SOURCE);
    }

    #[test]
    fn mapping_adds_names_without_overwriting() {
        let mut cfg = auditd();
        cfg.fields.push(FieldMapping {
            from: "user".into(),
            to: "user.name".into(),
        });
        let map = SourceMap::new(vec![cfg]).unwrap();
        let doc = json!({"proc": {"cmd": "id"}, "user": "root", "CommandLine": "kept"});
        // `CommandLine` is already there and `user` is a string (no nested name fits): the
        // event is used as it is.
        assert!(map.map_event(0, &doc).is_none());
        let doc = json!({"proc": {"cmd": "id"}, "user": {"id": 0}});
        let mapped = map.map_event(0, &doc).unwrap();
        assert_eq!(mapped["CommandLine"], "id");
        let doc = json!({"proc.cmd": "flat"});
        assert_eq!(map.map_event(0, &doc).unwrap()["CommandLine"], "flat");
        assert!(map.map_event(0, &json!({"other": 1})).is_none());
    }

    #[test]
    fn logsource_must_agree() {
        let map = SourceMap::new(vec![auditd()]).unwrap();
        let ls = |p: Option<&str>, c: Option<&str>, s: Option<&str>| LogSource {
            product: p.map(Into::into),
            category: c.map(Into::into),
            service: s.map(Into::into),
        };
        assert!(map.rule_applies(0, &ls(Some("linux"), Some("process_creation"), None)));
        assert!(map.rule_applies(0, &ls(Some("Linux"), None, None)));
        assert!(!map.rule_applies(0, &ls(Some("windows"), Some("process_creation"), None)));
        assert!(!map.rule_applies(0, &ls(Some("linux"), None, Some("auditd"))));
        let w = map.sources.len() - 1;
        assert!(map.rule_applies(w, &ls(Some("windows"), Some("process_creation"), None)));
        assert!(!map.rule_applies(w, &ls(Some("linux"), None, None)));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let mut empty_name = auditd();
        empty_name.fields[0].to = " ".into();
        assert!(matches!(
            SourceMap::new(vec![empty_name]),
            Err(MappingError::EmptyName { .. })
        ));
        assert_eq!(
            SourceMap::new(vec![auditd(), auditd()]).unwrap_err(),
            MappingError::DuplicateSource("auditd".into())
        );
        assert!(!SourceMap::new(vec![]).unwrap().is_active());
    }
}
