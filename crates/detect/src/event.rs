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
//!
//! The view is built from any [`JsonNode`]: a parsed `serde_json::Value`, or a node of a line
//! scanned by [`crate::json`] (no DOM, strings borrowed from the line). Both give the same
//! bindings, as [`Val`]s.

use std::borrow::Cow;

use rustc_hash::FxHashMap as HashMap;

use serde_json::Value;

use crate::json::{JsonRef, Kind, number_f64, number_text};
use crate::windows::EventSource;

/// One scalar (or container) event value bound to a field, borrowed from the event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Str(&'a str),
    /// A number of a parsed `serde_json::Value`.
    Number(&'a serde_json::Number),
    /// A number as written in a scanned line.
    RawNumber(&'a str),
    /// An object or an array (bound as a whole, e.g. an empty array or a nested one).
    Composite,
}

impl<'a> Val<'a> {
    /// Text of a scalar (numbers as serde_json prints them, booleans as JSON writes them).
    pub fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Val::Str(s) => Some(Cow::Borrowed(s)),
            Val::Number(n) => Some(Cow::Owned(n.to_string())),
            Val::RawNumber(raw) => number_text(raw),
            Val::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
            Val::Null | Val::Composite => None,
        }
    }
    /// Numeric value: numbers, and strings holding a decimal or `0x` hexadecimal number.
    pub fn number(self) -> Option<f64> {
        match self {
            Val::Number(n) => n.as_f64(),
            Val::RawNumber(raw) => number_f64(raw),
            Val::Str(s) => {
                let t = s.trim();
                t.parse::<f64>().ok().or_else(|| {
                    let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))?;
                    u64::from_str_radix(hex, 16).ok().map(|x| x as f64)
                })
            }
            _ => None,
        }
    }
    pub fn is_null(self) -> bool {
        matches!(self, Val::Null)
    }
    /// Whether this is a scalar with text (a string, number or boolean).
    pub fn has_text(self) -> bool {
        matches!(
            self,
            Val::Str(_) | Val::Number(_) | Val::RawNumber(_) | Val::Bool(_)
        )
    }
}

impl<'a> From<&'a Value> for Val<'a> {
    fn from(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::String(s) => Val::Str(s),
            Value::Number(n) => Val::Number(n),
            Value::Array(_) | Value::Object(_) => Val::Composite,
        }
    }
}

/// A JSON document node the view can be built from.
pub trait JsonNode<'a>: Copy {
    fn val(self) -> Val<'a>;
    fn is_object(self) -> bool;
    fn is_array(self) -> bool;
    /// An object or array with no members or items.
    fn is_empty_container(self) -> bool;
    fn members(self) -> impl Iterator<Item = (&'a str, Self)>;
    fn items(self) -> impl Iterator<Item = Self>;
    fn get(self, key: &str) -> Option<Self>;
}

impl<'a> JsonNode<'a> for &'a Value {
    fn val(self) -> Val<'a> {
        Val::from(self)
    }
    fn is_object(self) -> bool {
        self.is_object()
    }
    fn is_array(self) -> bool {
        self.is_array()
    }
    fn is_empty_container(self) -> bool {
        match self {
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        }
    }
    fn members(self) -> impl Iterator<Item = (&'a str, Self)> {
        self.as_object()
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v)))
    }
    fn items(self) -> impl Iterator<Item = Self> {
        self.as_array().into_iter().flat_map(|a| a.iter())
    }
    fn get(self, key: &str) -> Option<Self> {
        self.as_object().and_then(|m| m.get(key))
    }
}

impl<'a> JsonNode<'a> for JsonRef<'a> {
    #[inline]
    fn val(self) -> Val<'a> {
        let (kind, text) = self.node_text();
        match kind {
            Kind::Null => Val::Null,
            Kind::True => Val::Bool(true),
            Kind::False => Val::Bool(false),
            Kind::Num => Val::RawNumber(text),
            Kind::Str | Kind::StrBuf => Val::Str(text),
            Kind::Obj | Kind::Arr => Val::Composite,
        }
    }
    fn is_object(self) -> bool {
        self.kind() == Kind::Obj
    }
    fn is_array(self) -> bool {
        self.kind() == Kind::Arr
    }
    fn is_empty_container(self) -> bool {
        JsonRef::is_empty_container(&self)
    }
    fn members(self) -> impl Iterator<Item = (&'a str, Self)> {
        JsonRef::members(self)
    }
    fn items(self) -> impl Iterator<Item = Self> {
        JsonRef::items(self)
    }
    fn get(self, key: &str) -> Option<Self> {
        JsonRef::get(self, key)
    }
}

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
    pub bindings: Vec<(FieldId, Val<'a>)>,
    /// Every scalar in the event, for keyword (field-less) search.
    pub leaves: Vec<Val<'a>>,
    pub source: Option<EventSource>,
}

impl<'a> EventView<'a> {
    /// The values bound to `field` (a slice of `bindings`).
    pub fn values(&self, field: FieldId) -> &[(FieldId, Val<'a>)] {
        &self.bindings[self.range(field)]
    }
    pub fn range(&self, field: FieldId) -> std::ops::Range<usize> {
        let start = self.bindings.partition_point(|(f, _)| *f < field);
        let end = start + self.bindings[start..].partition_point(|(f, _)| *f == field);
        start..end
    }
}

fn bind<'a, J: JsonNode<'a>>(out: &mut Vec<(FieldId, Val<'a>)>, id: FieldId, v: J) {
    if v.is_array() && !v.is_empty_container() {
        out.extend(v.items().map(|i| (id, i.val())));
    } else {
        out.push((id, v.val()));
    }
}

/// Builds the view of `doc` for the fields in `index`.
pub fn build_view<'a>(doc: &'a Value, index: &FieldIndex, view: &mut EventView<'a>) {
    build_view_for(doc, index, view, true);
    view.source = Some(event_source(doc));
}

/// Builds the view; `with_leaves` false skips collecting scalars for keyword search (when no
/// applicable rule has keywords). Does not set `source`.
pub fn build_view_for<'a, J: JsonNode<'a>>(
    doc: J,
    index: &FieldIndex,
    view: &mut EventView<'a>,
    with_leaves: bool,
) {
    view.bindings.clear();
    view.leaves.clear();
    // Sized for Windows events up front: growing them took more than the rest of the setup.
    let mut name_buf = String::with_capacity(64);
    let mut stack: Vec<(J, Option<&TrieNode>, Ctx)> = Vec::with_capacity(32);
    stack.push((doc, Some(&index.trie), Ctx::Root));
    let leaf = |v: Val<'a>, leaves: &mut Vec<Val<'a>>| {
        if with_leaves && !v.is_null() {
            leaves.push(v);
        }
    };
    while let Some((value, node, ctx)) = stack.pop() {
        if value.is_object() {
            for (key, child) in value.members() {
                let tnode = node.and_then(|n| n.children.get(key));
                if let Some(id) = tnode.and_then(|n| n.field) {
                    bind(&mut view.bindings, id, child);
                }
                if ctx == Ctx::Short {
                    bind_short(key, child, index, &mut view.bindings, &mut name_buf);
                }
                let child_ctx = match (ctx, key) {
                    (Ctx::Root, "Event") => Ctx::EventRoot,
                    (Ctx::EventRoot, "System" | "EventData") => Ctx::Short,
                    (Ctx::EventRoot, "UserData") => Ctx::UserData,
                    (Ctx::UserData, _) => Ctx::Short,
                    _ => Ctx::Plain,
                };
                if child.is_object() || child.is_array() {
                    stack.push((child, tnode, child_ctx));
                } else {
                    leaf(child.val(), &mut view.leaves);
                }
            }
        } else if value.is_array() {
            for item in value.items() {
                if item.is_object() || item.is_array() {
                    stack.push((item, node, ctx));
                } else {
                    leaf(item.val(), &mut view.leaves);
                }
            }
        } else {
            leaf(value.val(), &mut view.leaves);
        }
    }
    view.bindings.sort_by_key(|(f, _)| *f);
}

/// Binds one child of `Event.System` / `Event.EventData` under its short Windows name.
fn bind_short<'a, J: JsonNode<'a>>(
    key: &str,
    child: J,
    index: &FieldIndex,
    out: &mut Vec<(FieldId, Val<'a>)>,
    buf: &mut String,
) {
    if let Some(base) = key.strip_suffix("_attributes")
        && child.is_object()
    {
        for (a, av) in child.members() {
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
    if child.is_object() {
        let text = child.get("#text");
        let attributes = child.get("#attributes");
        if text.is_some() || attributes.is_some() {
            if let (Some(id), Some(text)) = (index.get(key), text) {
                bind(out, id, text);
            }
            if let Some(attrs) = attributes.filter(|a| a.is_object()) {
                for (a, av) in attrs.members() {
                    buf.clear();
                    buf.push_str(key);
                    buf.push('_');
                    buf.push_str(a);
                    if let Some(id) = index.get(buf) {
                        bind(out, id, av);
                    }
                }
            }
            return;
        }
    } else if child.is_array() && key == "Data" {
        // <Data Name="X">v</Data> rendered as a list of objects.
        for item in child.items() {
            if item.is_object() {
                let name = item
                    .get("#attributes")
                    .and_then(|a| a.get("Name"))
                    .or_else(|| item.get("Name"))
                    .and_then(|n| match n.val() {
                        Val::Str(s) => Some(s),
                        _ => None,
                    });
                if let Some(id) = name.and_then(|n| index.get(n)) {
                    match item.get("#text") {
                        Some(text) => bind(out, id, text),
                        None => out.push((id, Val::Null)),
                    }
                }
            }
        }
    }
    if let Some(id) = index.get(key) {
        bind(out, id, child);
    }
}

fn scalar_text<'a, J: JsonNode<'a>>(v: J) -> Option<Cow<'a, str>> {
    match v.val() {
        Val::Str(s) => Some(Cow::Borrowed(s)),
        Val::Number(_) | Val::RawNumber(_) => v.val().text(),
        Val::Composite if v.is_object() => v.get("#text").and_then(scalar_text),
        _ => None,
    }
}

/// Channel (borrowed when it is a plain string) and event id of a Windows event, without
/// allocating in the common case: the per-event cache lookup uses it.
pub fn event_source_key(doc: &Value) -> Option<(Cow<'_, str>, i64)> {
    source_key_of(doc)
}

/// [`event_source_key`] for any document node.
pub fn source_key_of<'a, J: JsonNode<'a>>(doc: J) -> Option<(Cow<'a, str>, i64)> {
    let system = doc.get("Event").and_then(|e| e.get("System"));
    let (channel, eid) = match system {
        Some(s) => (s.get("Channel")?, s.get("EventID")?),
        None => (doc.get("Channel")?, doc.get("EventID")?),
    };
    let channel = scalar_text(channel)?;
    let eid = match eid.val() {
        Val::Number(n) => n.as_i64()?,
        _ => scalar_text(eid)?.trim().parse::<i64>().ok()?,
    };
    Some((channel, eid))
}

/// Channel and event id of a Windows event, from `Event.System` or from top-level
/// `Channel`/`EventID` (flattened exports).
pub fn event_source(doc: &Value) -> EventSource {
    match source_key_of(doc) {
        Some((channel, event_id)) => EventSource::Windows {
            channel: channel.into_owned(),
            event_id,
        },
        None => EventSource::Unknown,
    }
}

/// The event's time, from the usual places (Windows `TimeCreated`, `@timestamp`, …).
pub fn event_timestamp(doc: &Value) -> Option<String> {
    timestamp_of(doc)
}

/// [`event_timestamp`] for any document node.
pub fn timestamp_of<'a, J: JsonNode<'a>>(doc: J) -> Option<String> {
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
    candidates
        .into_iter()
        .flatten()
        .find_map(|v| match v.val() {
            Val::Str(s) => Some(s.to_owned()),
            Val::Number(_) | Val::RawNumber(_) => v.val().text().map(Cow::into_owned),
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
                .filter_map(|(_, v)| v.text().map(Cow::into_owned))
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

    /// A scanned line binds exactly what its parsed `Value` binds, for both Windows shapes,
    /// `UserData`, dotted paths and arrays, and gives the same source and timestamp.
    #[test]
    fn scanned_lines_bind_like_parsed_values() {
        let names = [
            "EventID",
            "Provider_Name",
            "CommandLine",
            "Event.System.Channel",
            "EventID_Qualifiers",
            "Param1",
            "a.b",
            "tags",
            "Empty",
        ];
        let idx = index(&names);
        let lines = [
            r#"{"Event":{"System":{"Provider_attributes":{"Name":"P"},"EventID":1,"Channel":"C","TimeCreated_attributes":{"SystemTime":"2019-08-14T14:06:44Z"}},"EventData":{"CommandLine":"x \"q\" \u00e9","Empty":[]}}}"#,
            r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"P"}},"EventID":{"#text":1,"#attributes":{"Qualifiers":16384}},"Channel":"C"},"EventData":{"Data":[{"#attributes":{"Name":"CommandLine"},"#text":"x"},{"#attributes":{"Name":"Param1"}}]}}}"##,
            r#"{"Event":{"System":{"EventID":1102,"Channel":"Security"},"UserData":{"LogFileCleared":{"Param1":"adm"}}}}"#,
            r#"{"a":{"b":["x",1.50,-0,true,null]},"tags":["p",["q"]],"EventID":"7","Channel":"c"}"#,
        ];
        let mut tape = crate::json::Tape::default();
        for line in lines {
            let doc: Value = serde_json::from_str(line).unwrap();
            assert!(tape.parse(line), "{line}");
            let root = tape.root(line);
            let (mut a, mut b) = (EventView::default(), EventView::default());
            build_view_for(&doc, &idx, &mut a, true);
            build_view_for(root, &idx, &mut b, true);
            for name in names {
                let mut x = texts(&a, &idx, name);
                let mut y = texts(&b, &idx, name);
                x.sort();
                y.sort();
                assert_eq!(x, y, "{name} in {line}");
                let id = idx.get(name).unwrap();
                assert_eq!(a.values(id).len(), b.values(id).len(), "{name} in {line}");
            }
            let mut x: Vec<_> = a.leaves.iter().filter_map(|v| v.text()).collect();
            let mut y: Vec<_> = b.leaves.iter().filter_map(|v| v.text()).collect();
            x.sort();
            y.sort();
            assert_eq!(x, y, "{line}");
            assert_eq!(source_key_of(&doc), source_key_of(root));
            assert_eq!(timestamp_of(&doc), timestamp_of(root));
        }
    }

    /// The engine's raw keyword prefilter treats only these two non-ASCII characters as able
    /// to fold into ASCII needle text: check that no other character does.
    #[test]
    fn only_two_characters_lowercase_to_ascii() {
        let found: Vec<char> = (0x80..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| c.to_lowercase().any(|l| l.is_ascii()))
            .collect();
        assert_eq!(found, vec!['\u{130}', '\u{212A}']);
    }

    #[test]
    fn timestamps_parse() {
        assert!(parse_timestamp("2019-08-14T14:06:44.495674Z").is_some());
        assert!(parse_timestamp("2019-05-16 13:10:13.759").is_some());
        assert!(parse_timestamp("1565791604").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}
