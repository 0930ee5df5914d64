//! Normalization of ingested events to Elastic Common Schema (ECS) names.
//!
//! Detection rules run on the event exactly as received (Sigma field names bind to it through
//! the detect crate's Windows mappings), but people and the alerting that follows need one
//! schema whatever the source: `docs/events.md` documents it. Windows event-log JSON — nested
//! `Event.System` / `Event.EventData` in either attribute shape (`#attributes` objects or
//! `*_attributes` siblings), `EventData.Data` lists of named values, or flattened exports with
//! top-level `Channel`/`EventID` — is mapped field by field; any other JSON object is taken as
//! already using its own (ideally ECS) names and kept as is, with `@timestamp` and
//! `event.ingested` added.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// The source's Windows fields that have an ECS name: (Windows field, ECS dotted path).
const WINDOWS_TO_ECS: &[(&str, &str)] = &[
    ("Computer", "host.name"),
    ("CommandLine", "process.command_line"),
    ("Image", "process.executable"),
    ("ProcessId", "process.pid"),
    ("ProcessGuid", "process.entity_id"),
    ("CurrentDirectory", "process.working_directory"),
    ("ParentImage", "process.parent.executable"),
    ("ParentCommandLine", "process.parent.command_line"),
    ("ParentProcessId", "process.parent.pid"),
    ("User", "user.name"),
    ("TargetUserName", "user.target.name"),
    ("TargetDomainName", "user.target.domain"),
    ("SubjectUserName", "user.name"),
    ("SubjectDomainName", "user.domain"),
    ("IpAddress", "source.ip"),
    ("IpPort", "source.port"),
    ("SourceIp", "source.ip"),
    ("SourcePort", "source.port"),
    ("DestinationIp", "destination.ip"),
    ("DestinationPort", "destination.port"),
    ("DestinationHostname", "destination.domain"),
    ("TargetFilename", "file.path"),
    ("TargetObject", "registry.path"),
    ("Hashes", "process.hash.raw"),
    ("QueryName", "dns.question.name"),
    ("ServiceName", "service.name"),
    ("LogonType", "winlog.logon.type"),
];

/// Normalizes one event. `event_time` is the event's own time when it has one that parses;
/// `received_at` is when the server accepted it.
pub fn normalize(
    raw: &Map<String, Value>,
    event_time: Option<Timestamp>,
    received_at: Timestamp,
) -> Value {
    let timestamp = event_time.unwrap_or(received_at).to_string();
    match windows_fields(raw) {
        Some(w) => windows_event(&w, timestamp, received_at),
        None => {
            let mut doc = raw.clone();
            doc.insert("@timestamp".into(), Value::String(timestamp));
            let event = doc
                .entry("event")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(event) = event {
                event.insert("ingested".into(), Value::String(received_at.to_string()));
            }
            Value::Object(doc)
        }
    }
}

/// For an event a declared (non-Windows) source of the pack claims: the event with the
/// source's field mappings applied, and the source id (ECS `event.dataset`). `None` for
/// Windows events (mapped field by field above) and events no declared source claims.
pub fn map_declared(
    sources: &gatehouse_detect::mapping::SourceMap,
    event: &Value,
    ingest_source: &str,
) -> Option<(Map<String, Value>, String)> {
    let index = sources.identify(event, Some(ingest_source))?;
    let id = sources.config(index)?.id.clone();
    if id == gatehouse_detect::mapping::WINDOWS_SOURCE {
        return None;
    }
    let mapped = sources
        .map_event(index, event)
        .unwrap_or_else(|| event.clone());
    match mapped {
        Value::Object(map) => Some((map, id)),
        _ => None,
    }
}

/// Sets ECS `event.dataset` (the pack's event source id) unless the event has one.
pub fn set_dataset(doc: &mut Value, dataset: &str) {
    set(doc, "event.dataset", Value::String(dataset.to_owned()));
}

/// A Windows event's fields by their short (Sigma) names.
struct WindowsFields {
    system: BTreeMap<String, Value>,
    data: BTreeMap<String, Value>,
}

fn windows_event(w: &WindowsFields, timestamp: String, received_at: Timestamp) -> Value {
    let get = |name: &str| w.system.get(name).or_else(|| w.data.get(name));
    let mut doc = json!({
        "@timestamp": timestamp,
        "event": {
            "kind": "event",
            "module": "windows",
            "ingested": received_at.to_string(),
        },
        "winlog": {
            "event_data": w.data,
        },
    });
    if let Some(code) = get("EventID") {
        set(&mut doc, "event.code", Value::String(text(code)));
        set(&mut doc, "winlog.event_id", code.clone());
    }
    for (name, path) in [
        ("Channel", "winlog.channel"),
        ("Provider_Name", "winlog.provider_name"),
        ("Provider_Guid", "winlog.provider_guid"),
        ("EventRecordID", "winlog.record_id"),
        ("Computer", "winlog.computer_name"),
        ("Security_UserID", "winlog.user.identifier"),
        ("Execution_ProcessID", "winlog.process.pid"),
        ("Execution_ThreadID", "winlog.process.thread.id"),
        ("Task", "winlog.task"),
        ("Opcode", "winlog.opcode"),
        ("Level", "log.level"),
    ] {
        if let Some(v) = w.system.get(name) {
            set(&mut doc, path, v.clone());
        }
    }
    if let Some(provider) = w.system.get("Provider_Name") {
        set(&mut doc, "event.provider", provider.clone());
    }
    for (name, path) in WINDOWS_TO_ECS {
        if let Some(v) = get(name) {
            set(&mut doc, path, v.clone());
        }
    }
    doc
}

/// Text of a scalar (numbers as JSON writes them).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sets `path` (dotted) in `doc`, creating objects on the way; an existing non-object in the
/// way is left alone (the first mapping wins).
fn set(doc: &mut Value, path: &str, value: Value) {
    let mut current = doc;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = current else {
            return;
        };
        if parts.peek().is_none() {
            map.entry(part.to_owned()).or_insert(value);
            return;
        }
        current = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The Windows fields of `raw`, or `None` when it is not a Windows event-log record.
fn windows_fields(raw: &Map<String, Value>) -> Option<WindowsFields> {
    if let Some(Value::Object(event)) = raw.get("Event")
        && let Some(Value::Object(system)) = event.get("System")
    {
        let mut fields = WindowsFields {
            system: BTreeMap::new(),
            data: BTreeMap::new(),
        };
        flatten_element(system, &mut fields.system);
        if let Some(Value::Object(data)) = event.get("EventData") {
            flatten_event_data(data, &mut fields.data);
        }
        if let Some(Value::Object(user_data)) = event.get("UserData") {
            for child in user_data.values() {
                if let Value::Object(child) = child {
                    flatten_element(child, &mut fields.data);
                }
            }
        }
        return Some(fields);
    }
    // Flattened exports (one object with Channel, EventID and the data fields at top level).
    if raw.contains_key("Channel") && raw.contains_key("EventID") {
        let mut fields = WindowsFields {
            system: BTreeMap::new(),
            data: BTreeMap::new(),
        };
        for (k, v) in raw {
            if is_scalar(v) {
                let target = if SYSTEM_FIELDS.contains(&k.as_str()) {
                    &mut fields.system
                } else {
                    &mut fields.data
                };
                target.insert(k.clone(), v.clone());
            }
        }
        return Some(fields);
    }
    None
}

const SYSTEM_FIELDS: &[&str] = &[
    "EventID",
    "Channel",
    "Computer",
    "EventRecordID",
    "Provider_Name",
    "Provider_Guid",
    "Level",
    "Task",
    "Opcode",
    "Keywords",
    "Version",
];

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Children of an XML-derived element by short name: scalars as they are, `{"#text": …}` as
/// its text, attributes as `<Element>_<Attribute>` from both renderings.
fn flatten_element(element: &Map<String, Value>, out: &mut BTreeMap<String, Value>) {
    for (name, value) in element {
        if let Some(base) = name.strip_suffix("_attributes") {
            if let Value::Object(attrs) = value {
                for (a, v) in attrs {
                    if is_scalar(v) {
                        out.insert(format!("{base}_{a}"), v.clone());
                    }
                }
            }
            continue;
        }
        match value {
            v if is_scalar(v) => {
                out.insert(name.clone(), v.clone());
            }
            Value::Object(inner) => {
                if let Some(t) = inner.get("#text").filter(|t| is_scalar(t)) {
                    out.insert(name.clone(), t.clone());
                }
                if let Some(Value::Object(attrs)) = inner.get("#attributes") {
                    for (a, v) in attrs {
                        if is_scalar(v) {
                            out.insert(format!("{name}_{a}"), v.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// `EventData`: named children, or `Data` as a list (or one) of `{"#attributes": {"Name"},
/// "#text"}` / `{"Name", "#text"}` entries.
fn flatten_event_data(data: &Map<String, Value>, out: &mut BTreeMap<String, Value>) {
    let mut rest = data.clone();
    if let Some(items) = rest.remove("Data") {
        let items = match items {
            Value::Array(items) => items,
            other => vec![other],
        };
        for item in items {
            let Value::Object(item) = item else {
                continue;
            };
            let name = item
                .get("#attributes")
                .and_then(|a| a.get("Name"))
                .or_else(|| item.get("Name"))
                .and_then(Value::as_str);
            if let (Some(name), Some(text)) = (name, item.get("#text").filter(|t| is_scalar(t))) {
                out.insert(name.to_owned(), text.clone());
            }
        }
    }
    flatten_element(&rest, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> Timestamp {
        "2026-01-02T03:04:05Z".parse().unwrap()
    }

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn sysmon_process_creation_with_attributes_objects() {
        let raw = object(json!({"Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                "EventID": 1,
                "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": "ws-01",
                "EventRecordID": 42
            },
            "EventData": {
                "Image": "C:\\Windows\\System32\\whoami.exe",
                "CommandLine": "whoami /all",
                "ProcessId": 4242,
                "User": "CORP\\alice"
            }
        }}));
        let doc = normalize(&raw, None, received());
        assert_eq!(doc["@timestamp"], "2026-01-02T03:04:05Z");
        assert_eq!(doc["event"]["code"], "1");
        assert_eq!(doc["event"]["provider"], "Microsoft-Windows-Sysmon");
        assert_eq!(
            doc["winlog"]["channel"],
            "Microsoft-Windows-Sysmon/Operational"
        );
        assert_eq!(doc["winlog"]["record_id"], 42);
        assert_eq!(doc["host"]["name"], "ws-01");
        assert_eq!(doc["process"]["command_line"], "whoami /all");
        assert_eq!(
            doc["process"]["executable"],
            "C:\\Windows\\System32\\whoami.exe"
        );
        assert_eq!(doc["process"]["pid"], 4242);
        assert_eq!(doc["user"]["name"], "CORP\\alice");
        assert_eq!(doc["winlog"]["event_data"]["CommandLine"], "whoami /all");
    }

    #[test]
    fn security_log_with_attribute_siblings_and_data_list() {
        let raw = object(json!({"Event": {
            "System": {
                "Provider_attributes": {"Name": "Microsoft-Windows-Security-Auditing"},
                "EventID": {"#text": "4625", "#attributes": {"Qualifiers": ""}},
                "Channel": "Security"
            },
            "EventData": {"Data": [
                {"#attributes": {"Name": "TargetUserName"}, "#text": "bob"},
                {"#attributes": {"Name": "IpAddress"}, "#text": "10.0.0.9"}
            ]}
        }}));
        let event_time = Some("2025-12-31T23:00:00Z".parse().unwrap());
        let doc = normalize(&raw, event_time, received());
        assert_eq!(doc["@timestamp"], "2025-12-31T23:00:00Z");
        assert_eq!(doc["event"]["code"], "4625");
        assert_eq!(
            doc["event"]["provider"],
            "Microsoft-Windows-Security-Auditing"
        );
        assert_eq!(doc["user"]["target"]["name"], "bob");
        assert_eq!(doc["source"]["ip"], "10.0.0.9");
        assert_eq!(doc["event"]["ingested"], "2026-01-02T03:04:05Z");
    }

    #[test]
    fn flattened_windows_export() {
        let raw = object(
            json!({"Channel": "Security", "EventID": 4688, "NewProcessName": "x.exe", "Computer": "dc1"}),
        );
        let doc = normalize(&raw, None, received());
        assert_eq!(doc["event"]["code"], "4688");
        assert_eq!(doc["host"]["name"], "dc1");
        assert_eq!(doc["winlog"]["event_data"]["NewProcessName"], "x.exe");
    }

    #[test]
    fn other_json_is_kept_with_timestamp_and_ingest_time() {
        let raw = object(
            json!({"message": "login", "event": {"action": "login"}, "user": {"name": "eve"}}),
        );
        let doc = normalize(&raw, None, received());
        assert_eq!(doc["message"], "login");
        assert_eq!(doc["event"]["action"], "login");
        assert_eq!(doc["event"]["ingested"], "2026-01-02T03:04:05Z");
        assert_eq!(doc["user"]["name"], "eve");
        assert_eq!(doc["@timestamp"], "2026-01-02T03:04:05Z");
    }

    #[test]
    fn a_non_object_event_field_is_not_overwritten() {
        let raw = object(json!({"event": "x"}));
        let doc = normalize(&raw, None, received());
        assert_eq!(doc["event"], "x");
    }
}
