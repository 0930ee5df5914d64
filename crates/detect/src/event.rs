//! The field view of one JSON event: which rule fields it has, and their values.
//!
//! Rules name fields (`CommandLine`, `EventID`, `userIdentity.type`); events are arbitrary
//! JSON. The view is built in one pass over the parsed document, without copying values and
//! without recursion (an explicit stack, so nesting depth cannot exhaust the call stack):
//!
//! * a field named by a dotted path (`a.b.c`, or a top-level key) binds to the value at that
//!   path (arrays are transparent: each element is a value of the field);
//! * in Windows events (`Event.System`, `Event.EventData`, `Event.UserData.*`) each child is
//!   also bound under its short name, as the Sigma specification's "Field Usage" section
//!   asks: `EventID` → `Event.System.EventID`, `CommandLine` → `Event.EventData.CommandLine`,
//!   XML attributes as `Provider_Name` whether rendered as `Provider_attributes.Name` or
//!   `Provider.#attributes.Name`, element text from `#text`, and `EventData.Data` lists of
//!   `{"#attributes": {"Name": …}, "#text": …}` by their `Name`.

use rustc_hash::FxHashMap as HashMap;

use serde_json::Value;

use crate::windows::EventSource;

/// Index of a field name used by some rule.
pub type FieldId = u32;

#[derive(Debug, Default)]
struct TrieNode {
    children: HashMap<String, TrieNode>,
    field: Option<FieldId>,
}

/// Every field name used by the loaded rules, for binding event values to them.
#[derive(Debug, Default)]
pub struct FieldIndex {
    by_name: HashMap<String, FieldId>,
    names: Vec<String>,
    trie: TrieNode,
}

impl FieldIndex {
    pub fn intern(&mut self, name: &str) -> FieldId {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = FieldId::try_from(self.names.len()).unwrap_or(FieldId::MAX);
        self.names.push(name.to_owned());
        self.by_name.insert(name.to_owned(), id);
        let mut node = &mut self.trie;
        for part in name.split('.') {
            node = node.children.entry(part.to_owned()).or_default();
        }
        node.field = Some(id);
        id
    }
    pub fn get(&self, name: &str) -> Option<FieldId> {
        self.by_name.get(name).copied()
    }
    pub fn name(&self, id: FieldId) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    EventRoot,
    UserData,
    Short,
    Plain,
}

/// Values of one event bound to rule fields.
#[derive(Debug, Default)]
pub struct EventView<'a> {
    /// (field, value) pairs, sorted by field once built.
    pub bindings: Vec<(FieldId, &'a Value)>,
    /// Every scalar in the event, for keyword (field-less) search.
    pub leaves: Vec<&'a Value>,
    pub source: Option<EventSource>,
}

impl<'a> EventView<'a> {
    /// The values bound to `field` (a slice of `bindings`).
    pub fn values(&self, field: FieldId) -> &[(FieldId, &'a Value)] {
        let start = self.bindings.partition_point(|(f, _)| *f < field);
        let end = start + self.bindings[start..].partition_point(|(f, _)| *f == field);
        &self.bindings[start..end]
    }
    pub fn range(&self, field: FieldId) -> std::ops::Range<usize> {
        let start = self.bindings.partition_point(|(f, _)| *f < field);
        let end = start + self.bindings[start..].partition_point(|(f, _)| *f == field);
        start..end
    }
}

fn bind<'a>(out: &mut Vec<(FieldId, &'a Value)>, id: FieldId, v: &'a Value) {
    match v {
        Value::Array(items) if !items.is_empty() => out.extend(items.iter().map(|i| (id, i))),
        _ => out.push((id, v)),
    }
}

/// Builds the view of `doc` for the fields in `index`.
pub fn build_view<'a>(doc: &'a Value, index: &FieldIndex, view: &mut EventView<'a>) {
    build_view_for(doc, index, view, true);
    view.source = Some(event_source(doc));
}

/// Builds the view; `with_leaves` false skips collecting scalars for keyword search (when no
/// applicable rule has keywords). Does not set `source`.
pub fn build_view_for<'a>(
    doc: &'a Value,
    index: &FieldIndex,
    view: &mut EventView<'a>,
    with_leaves: bool,
) {
    view.bindings.clear();
    view.leaves.clear();
    let mut name_buf = String::new();
    let mut stack: Vec<(&'a Value, Option<&TrieNode>, Ctx)> =
        vec![(doc, Some(&index.trie), Ctx::Root)];
    while let Some((value, node, ctx)) = stack.pop() {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let tnode = node.and_then(|n| n.children.get(key.as_str()));
                    if let Some(id) = tnode.and_then(|n| n.field) {
                        bind(&mut view.bindings, id, child);
                    }
                    if ctx == Ctx::Short {
                        bind_short(key, child, index, &mut view.bindings, &mut name_buf);
                    }
                    let child_ctx = match (ctx, key.as_str()) {
                        (Ctx::Root, "Event") => Ctx::EventRoot,
                        (Ctx::EventRoot, "System" | "EventData") => Ctx::Short,
                        (Ctx::EventRoot, "UserData") => Ctx::UserData,
                        (Ctx::UserData, _) => Ctx::Short,
                        _ => Ctx::Plain,
                    };
                    match child {
                        Value::Object(_) | Value::Array(_) => stack.push((child, tnode, child_ctx)),
                        Value::Null => {}
                        _ if with_leaves => view.leaves.push(child),
                        _ => {}
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(_) | Value::Array(_) => stack.push((item, node, ctx)),
                        Value::Null => {}
                        _ if with_leaves => view.leaves.push(item),
                        _ => {}
                    }
                }
            }
            _ if with_leaves => view.leaves.push(value),
            _ => {}
        }
    }
    view.bindings.sort_by_key(|(f, _)| *f);
}

/// Binds one child of `Event.System` / `Event.EventData` under its short Windows name.
fn bind_short<'a>(
    key: &str,
    child: &'a Value,
    index: &FieldIndex,
    out: &mut Vec<(FieldId, &'a Value)>,
    buf: &mut String,
) {
    if let Some(base) = key.strip_suffix("_attributes")
        && let Value::Object(attrs) = child
    {
        for (a, av) in attrs {
            buf.clear();
            buf.push_str(base);
            buf.push('_');
            buf.push_str(a);
            if let Some(id) = index.get(buf) {
                bind(out, id, av);
            }
        }
        return;
    }
    match child {
        Value::Object(obj) if obj.contains_key("#attributes") || obj.contains_key("#text") => {
            if let (Some(id), Some(text)) = (index.get(key), obj.get("#text")) {
                bind(out, id, text);
            }
            if let Some(Value::Object(attrs)) = obj.get("#attributes") {
                for (a, av) in attrs {
                    buf.clear();
                    buf.push_str(key);
                    buf.push('_');
                    buf.push_str(a);
                    if let Some(id) = index.get(buf) {
                        bind(out, id, av);
                    }
                }
            }
        }
        Value::Array(items) if key == "Data" => {
            // <Data Name="X">v</Data> rendered as a list of objects.
            for item in items {
                if let Value::Object(obj) = item {
                    let name = obj
                        .get("#attributes")
                        .and_then(|a| a.get("Name"))
                        .or_else(|| obj.get("Name"))
                        .and_then(Value::as_str);
                    if let Some(id) = name.and_then(|n| index.get(n)) {
                        bind(out, id, obj.get("#text").unwrap_or(&Value::Null));
                    }
                }
            }
            if let Some(id) = index.get(key) {
                bind(out, id, child);
            }
        }
        _ => {
            if let Some(id) = index.get(key) {
                bind(out, id, child);
            }
        }
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o.get("#text").and_then(scalar_text),
        _ => None,
    }
}

/// Channel (borrowed when it is a plain string) and event id of a Windows event, without
/// allocating in the common case: the per-event cache lookup uses it.
pub fn event_source_key(doc: &Value) -> Option<(std::borrow::Cow<'_, str>, i64)> {
    let system = doc.get("Event").and_then(|e| e.get("System"));
    let (channel, eid) = match system {
        Some(s) => (s.get("Channel")?, s.get("EventID")?),
        None => (doc.get("Channel")?, doc.get("EventID")?),
    };
    let channel = match channel {
        Value::String(c) => std::borrow::Cow::Borrowed(c.as_str()),
        other => std::borrow::Cow::Owned(scalar_text(other)?),
    };
    let eid = match eid {
        Value::Number(n) => n.as_i64()?,
        other => scalar_text(other)?.trim().parse::<i64>().ok()?,
    };
    Some((channel, eid))
}

/// Channel and event id of a Windows event, from `Event.System` or from top-level
/// `Channel`/`EventID` (flattened exports).
pub fn event_source(doc: &Value) -> EventSource {
    let system = doc.get("Event").and_then(|e| e.get("System"));
    let (channel, eid) = match system {
        Some(s) => (s.get("Channel"), s.get("EventID")),
        None => (doc.get("Channel"), doc.get("EventID")),
    };
    match (
        channel.and_then(scalar_text),
        eid.and_then(scalar_text)
            .and_then(|t| t.trim().parse::<i64>().ok()),
    ) {
        (Some(channel), Some(event_id)) => EventSource::Windows { channel, event_id },
        _ => EventSource::Unknown,
    }
}

/// The event's time, from the usual places (Windows `TimeCreated`, `@timestamp`, …).
pub fn event_timestamp(doc: &Value) -> Option<String> {
    let system = doc.get("Event").and_then(|e| e.get("System"));
    let candidates = [
        system
            .and_then(|s| s.get("TimeCreated_attributes"))
            .and_then(|t| t.get("SystemTime")),
        system
            .and_then(|s| s.get("TimeCreated"))
            .and_then(|t| t.get("#attributes"))
            .and_then(|a| a.get("SystemTime")),
        system
            .and_then(|s| s.get("TimeCreated"))
            .and_then(|t| t.get("SystemTime")),
        doc.get("@timestamp"),
        doc.get("timestamp"),
        doc.get("TimeCreated"),
        doc.get("time"),
        doc.get("eventTime"),
        doc.get("UtcTime"),
        doc.get("Event")
            .and_then(|e| e.get("EventData"))
            .and_then(|d| d.get("UtcTime")),
    ];
    candidates.into_iter().flatten().find_map(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Parses the timestamp formats seen in event logs: RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]`
/// (read as UTC, as Sysmon writes it), or Unix seconds / milliseconds.
pub fn parse_timestamp(text: &str) -> Option<jiff::Timestamp> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    if let Ok(dt) = t.replacen(' ', "T", 1).parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    if let Ok(n) = t.parse::<i64>() {
        return if n > 100_000_000_000 {
            jiff::Timestamp::from_millisecond(n).ok()
        } else {
            jiff::Timestamp::from_second(n).ok()
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[&str]) -> FieldIndex {
        let mut i = FieldIndex::default();
        for n in names {
            i.intern(n);
        }
        i
    }

    fn texts(view: &EventView<'_>, index: &FieldIndex, name: &str) -> Vec<String> {
        index.get(name).map_or_else(Vec::new, |id| {
            view.values(id)
                .iter()
                .filter_map(|(_, v)| scalar_text(v))
                .collect()
        })
    }

    #[test]
    fn windows_attribute_shapes_both_bind_short_names() {
        let idx = index(&[
            "EventID",
            "Provider_Name",
            "CommandLine",
            "Event.System.Channel",
            "EventID_Qualifiers",
        ]);
        let siblings: Value = serde_json::from_str(
            r#"{"Event":{"System":{"Provider_attributes":{"Name":"P"},"EventID":1,"Channel":"C"},"EventData":{"CommandLine":"x"}}}"#,
        )
        .unwrap();
        let nested: Value = serde_json::from_str(
            r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"P"}},"EventID":{"#text":1,"#attributes":{"Qualifiers":16384}},"Channel":"C"},"EventData":{"Data":[{"#attributes":{"Name":"CommandLine"},"#text":"x"}]}}}"##,
        )
        .unwrap();
        for doc in [&siblings, &nested] {
            let mut view = EventView::default();
            build_view(doc, &idx, &mut view);
            assert_eq!(texts(&view, &idx, "Provider_Name"), vec!["P"]);
            assert_eq!(texts(&view, &idx, "EventID"), vec!["1"]);
            assert_eq!(texts(&view, &idx, "CommandLine"), vec!["x"]);
            assert_eq!(texts(&view, &idx, "Event.System.Channel"), vec!["C"]);
            assert_eq!(
                view.source,
                Some(EventSource::Windows {
                    channel: "C".into(),
                    event_id: 1
                })
            );
        }
    }

    #[test]
    fn user_data_children_bind_by_short_name() {
        let idx = index(&["Param1", "EventID"]);
        let doc: Value = serde_json::from_str(
            r#"{"Event":{"System":{"EventID":1102,"Channel":"Security"},"UserData":{"LogFileCleared":{"Param1":"adm"}}}}"#,
        )
        .unwrap();
        let mut view = EventView::default();
        build_view(&doc, &idx, &mut view);
        assert_eq!(texts(&view, &idx, "Param1"), vec!["adm"]);
        assert_eq!(
            view.source,
            Some(EventSource::Windows {
                channel: "Security".into(),
                event_id: 1102
            })
        );
    }

    #[test]
    fn dotted_paths_and_arrays_bind() {
        let idx = index(&["a.b", "tags"]);
        let doc: Value = serde_json::from_str(r#"{"a":{"b":"x"},"tags":["p","q"]}"#).unwrap();
        let mut view = EventView::default();
        build_view(&doc, &idx, &mut view);
        assert_eq!(texts(&view, &idx, "a.b"), vec!["x"]);
        assert_eq!(texts(&view, &idx, "tags"), vec!["p", "q"]);
        assert_eq!(view.source, Some(EventSource::Unknown));
    }

    #[test]
    fn timestamps_parse() {
        assert!(parse_timestamp("2019-08-14T14:06:44.495674Z").is_some());
        assert!(parse_timestamp("2019-05-16 13:10:13.759").is_some());
        assert!(parse_timestamp("1565791604").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}
