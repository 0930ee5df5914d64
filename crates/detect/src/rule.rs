//! Sigma documents (detection rules, correlation rules, filters) read from YAML.
//!
//! Loading never drops a document silently: every document either becomes a rule or a
//! [`LoadProblem`] that names the file, the line and either the unsupported feature or the
//! reason it is invalid. `gatehouse rules check` prints exactly these.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::condition::{Condition, ConditionError, parse_condition};
use crate::value::{
    FieldTest, Placeholders, RawValue, ValueError, compile_field_test, compile_keyword, raw_values,
};
use crate::yaml::{Node, Yaml, parse_documents};

/// Rule severity (`level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text {
            "informational" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
    pub const ALL: [Level; 5] = [
        Level::Informational,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `logsource`: which events a rule is meant for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LogSource {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
}

/// Where a document was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    pub file: String,
    pub line: u32,
}

/// A search identifier's body.
#[derive(Debug, Clone)]
pub enum Selection {
    /// A map: every field test must hold.
    AllOf(Vec<FieldTest>),
    /// A list (of maps or keywords): one element must hold.
    AnyOf(Vec<Selection>),
}

/// A named search identifier of the `detection` section.
#[derive(Debug, Clone)]
pub struct SearchIdentifier {
    pub name: String,
    pub line: u32,
    pub selection: Selection,
}

/// A detection rule.
#[derive(Debug, Clone)]
pub struct SigmaRule {
    pub id: Option<String>,
    pub name: Option<String>,
    pub title: String,
    pub level: Option<Level>,
    pub status: Option<String>,
    pub logsource: LogSource,
    pub identifiers: Vec<SearchIdentifier>,
    /// The condition (a YAML list of conditions is already or-ed).
    pub condition: Condition,
    pub tags: Vec<String>,
    pub source: SourceRef,
}

/// Correlation types of Sigma v2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorrelationType {
    EventCount,
    ValueCount,
    ValueSum,
    ValueAvg,
    ValuePercentile,
    Temporal,
    TemporalOrdered,
}

impl CorrelationType {
    fn parse(t: &str) -> Option<CorrelationType> {
        Some(match t {
            "event_count" => CorrelationType::EventCount,
            "value_count" => CorrelationType::ValueCount,
            "value_sum" => CorrelationType::ValueSum,
            "value_avg" => CorrelationType::ValueAvg,
            "value_percentile" => CorrelationType::ValuePercentile,
            "temporal" => CorrelationType::Temporal,
            "temporal_ordered" => CorrelationType::TemporalOrdered,
            _ => return None,
        })
    }
    /// The name used in rules (`event_count`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::ValueSum => "value_sum",
            CorrelationType::ValueAvg => "value_avg",
            CorrelationType::ValuePercentile => "value_percentile",
            CorrelationType::Temporal => "temporal",
            CorrelationType::TemporalOrdered => "temporal_ordered",
        }
    }

    fn needs_field(self) -> bool {
        matches!(
            self,
            CorrelationType::ValueCount
                | CorrelationType::ValueSum
                | CorrelationType::ValueAvg
                | CorrelationType::ValuePercentile
        )
    }
}

/// A range condition of a correlation: all given bounds must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RangeCondition {
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
    pub eq: Option<f64>,
    pub neq: Option<f64>,
}

impl RangeCondition {
    pub fn holds(&self, x: f64) -> bool {
        self.gt.is_none_or(|v| x > v)
            && self.gte.is_none_or(|v| x >= v)
            && self.lt.is_none_or(|v| x < v)
            && self.lte.is_none_or(|v| x <= v)
            && self.eq.is_none_or(|v| x == v)
            && self.neq.is_none_or(|v| x != v)
    }
    /// True when only lower bounds are set: once it holds it keeps holding as the window
    /// grows, so it can fire as soon as it becomes true.
    pub fn is_lower_bound_only(&self) -> bool {
        self.lt.is_none() && self.lte.is_none() && self.eq.is_none() && self.neq.is_none()
    }
}

/// A correlation rule.
#[derive(Debug, Clone)]
pub struct CorrelationRule {
    pub id: Option<String>,
    pub name: Option<String>,
    pub title: String,
    pub level: Option<Level>,
    pub kind: CorrelationType,
    /// Referenced rules by id or name, as written.
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    pub timespan_seconds: i64,
    pub condition: RangeCondition,
    /// The value field(s) of value_* correlations.
    pub fields: Vec<String>,
    /// alias → (rule name or id → field)
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
    pub generate: bool,
    pub source: SourceRef,
}

/// A meta-filter (Sigma filters specification).
#[derive(Debug, Clone)]
pub struct FilterRule {
    pub id: Option<String>,
    pub title: String,
    pub logsource: LogSource,
    pub rules: Vec<String>,
    pub identifiers: Vec<SearchIdentifier>,
    pub condition: Condition,
    pub source: SourceRef,
}

/// Why a document did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    Unsupported { feature: String },
    Invalid { reason: String },
}

/// A document that did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    pub file: String,
    pub line: u32,
    /// The rule's id or title when it could be read.
    pub rule: Option<String>,
    pub kind: ProblemKind,
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = self
            .rule
            .as_deref()
            .map(|r| format!(" (rule {r})"))
            .unwrap_or_default();
        match &self.kind {
            ProblemKind::Unsupported { feature } => write!(
                f,
                "{}:{}{rule}: unsupported: {feature}",
                self.file, self.line
            ),
            ProblemKind::Invalid { reason } => {
                write!(f, "{}:{}{rule}: invalid: {reason}", self.file, self.line)
            }
        }
    }
}

/// Everything loaded from a set of files.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<SigmaRule>,
    pub correlations: Vec<CorrelationRule>,
    pub filters: Vec<FilterRule>,
    pub problems: Vec<LoadProblem>,
    /// Number of documents seen (loaded + problems).
    pub total: usize,
}

/// Options for loading.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Values for `expand` placeholders; without one, a rule using the placeholder is
    /// reported as unsupported (as the specification requires).
    pub placeholders: Placeholders,
}

impl LoadOptions {
    /// Adds placeholder values from a command-line argument `NAME=value1,value2`
    /// (`%NAME%` in rules using `expand`).
    pub fn add_placeholder_arg(&mut self, arg: &str) -> Result<(), String> {
        let (name, values) = arg
            .split_once('=')
            .ok_or_else(|| format!("placeholder '{arg}' must look like NAME=value1,value2"))?;
        let name = name.trim().trim_matches('%');
        if name.is_empty() {
            return Err(format!("placeholder '{arg}' has no name"));
        }
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(format!("placeholder '{name}' has no values"));
        }
        self.placeholders
            .entry(name.to_owned())
            .or_default()
            .extend(values);
        Ok(())
    }
}

struct DocError {
    line: u32,
    kind: ProblemKind,
}

fn invalid(line: u32, reason: impl Into<String>) -> DocError {
    DocError {
        line,
        kind: ProblemKind::Invalid {
            reason: reason.into(),
        },
    }
}

impl From<(u32, ValueError)> for DocError {
    fn from((line, e): (u32, ValueError)) -> DocError {
        match e {
            ValueError::Unsupported(feature) => DocError {
                line,
                kind: ProblemKind::Unsupported { feature },
            },
            ValueError::Invalid(reason) => invalid(line, reason),
        }
    }
}

fn opt_string(doc: &Node, key: &str) -> Result<Option<String>, DocError> {
    match doc.get(key) {
        None => Ok(None),
        Some(n) if n.value == Yaml::Null => Ok(None),
        Some(n) => n.scalar_text().map(Some).ok_or_else(|| {
            invalid(
                n.line,
                format!("'{key}' must be a scalar, found a {}", n.kind()),
            )
        }),
    }
}

fn string_list(node: &Node, what: &str) -> Result<Vec<String>, DocError> {
    match &node.value {
        Yaml::Seq(items) => items
            .iter()
            .map(|i| {
                i.scalar_text()
                    .ok_or_else(|| invalid(i.line, format!("'{what}' entries must be scalars")))
            })
            .collect(),
        _ => node
            .scalar_text()
            .map(|s| vec![s])
            .ok_or_else(|| invalid(node.line, format!("'{what}' must be a list"))),
    }
}

fn read_logsource(doc: &Node) -> Result<LogSource, DocError> {
    let Some(ls) = doc.get("logsource") else {
        return Err(invalid(doc.line, "missing 'logsource'"));
    };
    if !matches!(ls.value, Yaml::Map(_)) {
        return Err(invalid(ls.line, "'logsource' must be a map"));
    }
    let lower = |v: Option<String>| v.map(|s| s.to_ascii_lowercase());
    Ok(LogSource {
        product: lower(opt_string(ls, "product")?),
        category: lower(opt_string(ls, "category")?),
        service: lower(opt_string(ls, "service")?),
    })
}

fn read_level(doc: &Node) -> Result<Option<Level>, DocError> {
    match opt_string(doc, "level")? {
        None => Ok(None),
        Some(l) => Level::parse(&l).map(Some).ok_or_else(|| {
            invalid(
                doc.get("level").map_or(doc.line, |n| n.line),
                format!("unknown level '{l}'"),
            )
        }),
    }
}

fn read_selection(node: &Node, placeholders: &Placeholders) -> Result<Selection, DocError> {
    match &node.value {
        Yaml::Map(entries) => {
            let mut tests = Vec::new();
            let mut seen = HashSet::new();
            for (k, v) in entries {
                let key = k
                    .scalar_text()
                    .ok_or_else(|| invalid(k.line, "a selection key must be a field name"))?;
                if !seen.insert(key.clone()) {
                    return Err(invalid(
                        k.line,
                        format!("duplicate key '{key}' in selection"),
                    ));
                }
                tests.push(
                    compile_field_test(&key, v, k.line, placeholders)
                        .map_err(|e| DocError::from((k.line, e)))?,
                );
            }
            if tests.is_empty() {
                return Err(invalid(node.line, "empty selection"));
            }
            Ok(Selection::AllOf(tests))
        }
        Yaml::Seq(items) => {
            if items.is_empty() {
                return Err(invalid(node.line, "empty selection list"));
            }
            let mut alternatives = Vec::new();
            for item in items {
                match &item.value {
                    Yaml::Map(_) => alternatives.push(read_selection(item, placeholders)?),
                    Yaml::Seq(_) => return Err(invalid(item.line, "nested list in a selection")),
                    _ => {
                        let (raw, line) = raw_values(item)
                            .map_err(|e| DocError::from((item.line, e)))?
                            .remove(0);
                        if raw == RawValue::Null {
                            return Err(invalid(line, "null keyword"));
                        }
                        let test =
                            compile_keyword(&raw, line).map_err(|e| DocError::from((line, e)))?;
                        alternatives.push(Selection::AllOf(vec![test]));
                    }
                }
            }
            Ok(Selection::AnyOf(alternatives))
        }
        Yaml::Null => Err(invalid(node.line, "empty search identifier")),
        _ => {
            // A single keyword written as a scalar.
            let (raw, line) = raw_values(node)
                .map_err(|e| DocError::from((node.line, e)))?
                .remove(0);
            let test = compile_keyword(&raw, line).map_err(|e| DocError::from((line, e)))?;
            Ok(Selection::AllOf(vec![test]))
        }
    }
}

/// Reads search identifiers and the condition from a `detection` (or filter) map, skipping
/// the keys listed in `reserved`.
fn read_detection(
    det: &Node,
    reserved: &[&str],
    placeholders: &Placeholders,
) -> Result<(Vec<SearchIdentifier>, Condition), DocError> {
    let Yaml::Map(entries) = &det.value else {
        return Err(invalid(det.line, "'detection' must be a map"));
    };
    let mut identifiers = Vec::new();
    let mut condition_node = None;
    for (k, v) in entries {
        let key = k
            .scalar_text()
            .ok_or_else(|| invalid(k.line, "search identifiers must be names"))?;
        if key == "condition" {
            condition_node = Some(v);
            continue;
        }
        if reserved.contains(&key.as_str()) {
            continue;
        }
        if key == "timeframe" {
            return Err(DocError {
                line: k.line,
                kind: ProblemKind::Unsupported {
                    feature:
                        "obsolete 'timeframe' in detection (use a correlation rule's timespan)"
                            .to_owned(),
                },
            });
        }
        if identifiers.iter().any(|i: &SearchIdentifier| i.name == key) {
            return Err(invalid(
                k.line,
                format!("duplicate search identifier '{key}'"),
            ));
        }
        let selection = read_selection(v, placeholders)?;
        identifiers.push(SearchIdentifier {
            name: key,
            line: k.line,
            selection,
        });
    }
    let Some(cnode) = condition_node else {
        return Err(invalid(det.line, "missing 'condition'"));
    };
    let names: Vec<String> = identifiers.iter().map(|i| i.name.clone()).collect();
    let texts: Vec<(String, u32)> = match &cnode.value {
        Yaml::Str(s) => vec![(s.clone(), cnode.line)],
        Yaml::Seq(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(|s| (s.to_owned(), i.line))
                    .ok_or_else(|| invalid(i.line, "condition entries must be strings"))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                cnode.line,
                "'condition' must be a string or a list of strings",
            ));
        }
    };
    let mut parsed = Vec::new();
    for (text, line) in texts {
        let c = parse_condition(&text, &names).map_err(|e| match e {
            ConditionError::Obsolete(m) => DocError {
                line,
                kind: ProblemKind::Unsupported { feature: m },
            },
            ConditionError::Invalid(m) => invalid(line, m),
        })?;
        parsed.push(c);
    }
    let condition = if parsed.len() == 1 {
        parsed.remove(0)
    } else {
        Condition::Or(parsed)
    };
    Ok((identifiers, condition))
}

fn parse_timespan(text: &str) -> Option<i64> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    (number > 0).then(|| number.checked_mul(factor)).flatten()
}

fn read_correlation(doc: &Node, source: SourceRef) -> Result<CorrelationRule, DocError> {
    let Some(corr) = doc.get("correlation") else {
        return Err(invalid(doc.line, "missing 'correlation'"));
    };
    let title = opt_string(doc, "title")?.ok_or_else(|| invalid(doc.line, "missing 'title'"))?;
    let type_text = opt_string(corr, "type")?
        .ok_or_else(|| invalid(corr.line, "correlation without 'type'"))?;
    let kind = CorrelationType::parse(&type_text).ok_or_else(|| {
        invalid(
            corr.get("type").map_or(corr.line, |n| n.line),
            format!("unknown correlation type '{type_text}'"),
        )
    })?;
    let rules = match corr.get("rules") {
        Some(n) => string_list(n, "rules")?,
        None => return Err(invalid(corr.line, "correlation without 'rules'")),
    };
    if rules.is_empty() {
        return Err(invalid(corr.line, "correlation with an empty 'rules' list"));
    }
    let group_by = match corr.get("group-by") {
        Some(n) => string_list(n, "group-by")?,
        None => Vec::new(),
    };
    let timespan_text = opt_string(corr, "timespan")?
        .ok_or_else(|| invalid(corr.line, "correlation without 'timespan'"))?;
    let timespan_seconds = parse_timespan(&timespan_text).ok_or_else(|| {
        invalid(
            corr.get("timespan").map_or(corr.line, |n| n.line),
            format!("invalid timespan '{timespan_text}' (expected e.g. 30s, 5m, 1h, 2d)"),
        )
    })?;
    let mut condition = RangeCondition::default();
    let mut fields = Vec::new();
    match corr.get("condition") {
        Some(c) => {
            let Yaml::Map(entries) = &c.value else {
                return Err(invalid(
                    c.line,
                    "correlation 'condition' must be a map such as {gte: 10}",
                ));
            };
            for (k, v) in entries {
                let key = k.scalar_text().unwrap_or_default();
                if key == "field" {
                    fields = string_list(v, "field")?;
                    continue;
                }
                let number = match &v.value {
                    Yaml::Int(i) => *i as f64,
                    Yaml::Float(f) => *f,
                    _ => return Err(invalid(v.line, format!("condition '{key}' needs a number"))),
                };
                let slot = match key.as_str() {
                    "gt" => &mut condition.gt,
                    "gte" => &mut condition.gte,
                    "lt" => &mut condition.lt,
                    "lte" => &mut condition.lte,
                    "eq" => &mut condition.eq,
                    "neq" => &mut condition.neq,
                    other => {
                        return Err(invalid(
                            k.line,
                            format!("unknown correlation condition operator '{other}'"),
                        ));
                    }
                };
                *slot = Some(number);
            }
        }
        None if matches!(
            kind,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered
        ) =>
        {
            // Default: every referenced rule must appear.
            condition.gte = Some(rules.len() as f64);
        }
        None => return Err(invalid(corr.line, "correlation without 'condition'")),
    }
    if kind.needs_field() && fields.is_empty() {
        return Err(invalid(
            corr.line,
            format!("{type_text} correlation needs 'field' in its condition"),
        ));
    }
    let mut aliases = BTreeMap::new();
    if let Some(a) = corr.get("aliases") {
        let Yaml::Map(entries) = &a.value else {
            return Err(invalid(a.line, "'aliases' must be a map"));
        };
        for (alias, mapping) in entries {
            let alias = alias.scalar_text().unwrap_or_default();
            let Yaml::Map(per_rule) = &mapping.value else {
                return Err(invalid(
                    mapping.line,
                    format!("alias '{alias}' must map rule names to fields"),
                ));
            };
            let mut m = BTreeMap::new();
            for (rule, field) in per_rule {
                let r = rule.scalar_text().unwrap_or_default();
                let f = field
                    .scalar_text()
                    .ok_or_else(|| invalid(field.line, "alias field must be a string"))?;
                m.insert(r, f);
            }
            aliases.insert(alias, m);
        }
    }
    let generate = match corr.get("generate").or_else(|| doc.get("generate")) {
        None => false,
        Some(n) => match n.value {
            Yaml::Bool(b) => b,
            _ => return Err(invalid(n.line, "'generate' must be true or false")),
        },
    };
    Ok(CorrelationRule {
        id: opt_string(doc, "id")?,
        name: opt_string(doc, "name")?,
        title,
        level: read_level(doc)?,
        kind,
        rules,
        group_by,
        timespan_seconds,
        condition,
        fields,
        aliases,
        generate,
        source,
    })
}

enum Document {
    Rule(SigmaRule),
    Correlation(CorrelationRule),
    Filter(FilterRule),
}

fn read_document(doc: &Node, file: &str, options: &LoadOptions) -> Result<Document, DocError> {
    if !matches!(doc.value, Yaml::Map(_)) {
        return Err(invalid(
            doc.line,
            format!("a Sigma document must be a map, found a {}", doc.kind()),
        ));
    }
    let source = SourceRef {
        file: file.to_owned(),
        line: doc.line.max(1),
    };
    if doc.get("correlation").is_some() {
        return read_correlation(doc, source).map(Document::Correlation);
    }
    if doc.get("action").and_then(Node::as_str).is_some() {
        return Err(DocError {
            line: doc.line,
            kind: ProblemKind::Unsupported {
                feature: "legacy rule collection ('action: global/reset/repeat')".to_owned(),
            },
        });
    }
    let title = opt_string(doc, "title")?.ok_or_else(|| invalid(doc.line, "missing 'title'"))?;
    if let (Some(filter), None) = (doc.get("filter"), doc.get("detection")) {
        let rules = match filter.get("rules") {
            Some(n) => string_list(n, "rules")?,
            None => return Err(invalid(filter.line, "filter without 'rules'")),
        };
        let (identifiers, condition) = read_detection(filter, &["rules"], &options.placeholders)?;
        return Ok(Document::Filter(FilterRule {
            id: opt_string(doc, "id")?,
            title,
            logsource: read_logsource(doc)?,
            rules,
            identifiers,
            condition,
            source,
        }));
    }
    let logsource = read_logsource(doc)?;
    let Some(det) = doc.get("detection") else {
        return Err(invalid(doc.line, "missing 'detection'"));
    };
    let (identifiers, condition) = read_detection(det, &[], &options.placeholders)?;
    let tags = match doc.get("tags") {
        Some(n) => string_list(n, "tags")?,
        None => Vec::new(),
    };
    Ok(Document::Rule(SigmaRule {
        id: opt_string(doc, "id")?,
        name: opt_string(doc, "name")?,
        title,
        level: read_level(doc)?,
        status: opt_string(doc, "status")?,
        logsource,
        identifiers,
        condition,
        tags,
        source,
    }))
}

impl RuleSet {
    /// Loads every document of one YAML text (`file` is the label used in reports).
    pub fn add_text(&mut self, file: &str, text: &str, options: &LoadOptions) {
        let docs = match parse_documents(text) {
            Ok(d) => d,
            Err(e) => {
                self.total += 1;
                self.problems.push(LoadProblem {
                    file: file.to_owned(),
                    line: e.line.max(1),
                    rule: None,
                    kind: ProblemKind::Invalid {
                        reason: format!("YAML syntax: {}", e.message),
                    },
                });
                return;
            }
        };
        for doc in &docs {
            self.total += 1;
            match read_document(doc, file, options) {
                Ok(Document::Rule(r)) => self.rules.push(r),
                Ok(Document::Correlation(c)) => self.correlations.push(c),
                Ok(Document::Filter(f)) => self.filters.push(f),
                Err(e) => {
                    let rule = opt_string(doc, "id")
                        .ok()
                        .flatten()
                        .or_else(|| opt_string(doc, "title").ok().flatten());
                    self.problems.push(LoadProblem {
                        file: file.to_owned(),
                        line: e.line.max(1),
                        rule,
                        kind: e.kind,
                    });
                }
            }
        }
    }

    /// Loads a file, or every `.yml`/`.yaml` file under a directory (sorted, recursively).
    pub fn add_path(&mut self, path: &Path, options: &LoadOptions) -> std::io::Result<()> {
        let mut files = Vec::new();
        collect_rule_files(path, &mut files)?;
        // YAML parsing dominates start-up: files are parsed on all cores, each into its own
        // set, and merged in file order so results do not depend on scheduling.
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(files.len().max(1));
        let per = files.len().div_ceil(workers).max(1);
        let parts: Vec<RuleSet> = std::thread::scope(|scope| {
            let handles: Vec<_> = files
                .chunks(per)
                .map(|chunk| {
                    scope.spawn(move || {
                        let mut part = RuleSet::default();
                        for file in chunk {
                            part.add_file(file, options);
                        }
                        part
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for part in parts {
            self.rules.extend(part.rules);
            self.correlations.extend(part.correlations);
            self.filters.extend(part.filters);
            self.problems.extend(part.problems);
            self.total += part.total;
        }
        Ok(())
    }

    fn add_file(&mut self, file: &Path, options: &LoadOptions) {
        let label = file.display().to_string();
        let reason = match std::fs::read(file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => {
                    self.add_text(&label, &text, options);
                    return;
                }
                Err(e) => format!("not UTF-8: {e}"),
            },
            Err(e) => format!("cannot read: {e}"),
        };
        self.total += 1;
        self.problems.push(LoadProblem {
            file: label,
            line: 1,
            rule: None,
            kind: ProblemKind::Invalid { reason },
        });
    }

    /// Checks references between documents (correlations and filters naming rules that do
    /// not exist) and moves broken ones to `problems`. Call once after loading.
    pub fn resolve(&mut self) {
        let mut known: HashSet<String> = HashSet::new();
        for r in &self.rules {
            known.extend(r.id.iter().cloned());
            known.extend(r.name.iter().cloned());
        }
        for c in &self.correlations {
            known.extend(c.id.iter().cloned());
            known.extend(c.name.iter().cloned());
        }
        let mut kept = Vec::new();
        for c in std::mem::take(&mut self.correlations) {
            match c.rules.iter().find(|r| !known.contains(*r)) {
                Some(missing) => self.problems.push(LoadProblem {
                    file: c.source.file.clone(),
                    line: c.source.line,
                    rule: c.id.clone().or(Some(c.title.clone())),
                    kind: ProblemKind::Invalid {
                        reason: format!("correlation refers to unknown rule '{missing}'"),
                    },
                }),
                None => kept.push(c),
            }
        }
        self.correlations = kept;
        let mut kept = Vec::new();
        for f in std::mem::take(&mut self.filters) {
            match f.rules.iter().find(|r| !known.contains(*r)) {
                Some(missing) => self.problems.push(LoadProblem {
                    file: f.source.file.clone(),
                    line: f.source.line,
                    rule: f.id.clone().or(Some(f.title.clone())),
                    kind: ProblemKind::Invalid {
                        reason: format!("filter refers to unknown rule '{missing}'"),
                    },
                }),
                None => kept.push(f),
            }
        }
        self.filters = kept;
    }

    pub fn loaded(&self) -> usize {
        self.rules.len() + self.correlations.len() + self.filters.len()
    }
}

fn collect_rule_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    // Explicit stack: directory depth does not grow the call stack.
    let mut stack = vec![path.to_path_buf()];
    let mut found = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                found.push(p);
            }
        }
    }
    found.sort();
    out.extend(found);
    Ok(())
}
