#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The detection worker and the retention job against a real SQLite store, with a fixed
//! clock so retention is decided by the server's clock and nothing else.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::clock::FixedClock;
use gatehouse_core::events::{NewEvent, SignalQuery};
use gatehouse_server::detection::{self, DetectionConfig};
use gatehouse_server::{PackSource, prepare};
use gatehouse_store::{StoreConfig, open_with_events};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

const RULE: &str = "title: Whoami\nid: rule-whoami\nlogsource:\n    product: windows\n    category: process_creation\ndetection:\n    selection:\n        Image|endswith: '\\whoami.exe'\n    condition: selection\nlevel: critical\n";

fn write_pack(dir: &Path) {
    for (name, text) in gatehouse_pack::example::files() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn event(source: &str, received_at: Timestamp, image: &str) -> NewEvent {
    let raw = json!({"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"},
        "EventData": {"Image": image}}});
    NewEvent {
        source: source.into(),
        received_at,
        event_time: None,
        ecs: json!({}),
        raw: raw.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_stores_signals_and_retention_follows_the_server_clock() {
    let temp = tempfile::tempdir().unwrap();
    let pack_dir = temp.path().join("pack");
    write_pack(&pack_dir);
    let rules = temp.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("whoami.yml"), RULE).unwrap();
    let (store, events) = open_with_events(&StoreConfig::Sqlite {
        data_dir: temp.path().join("data"),
    })
    .await
    .unwrap();
    let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    let clock = Arc::new(FixedClock::new(now));
    let loaded = gatehouse_pack::load(&pack_dir).unwrap();
    assert!(!loaded.has_errors());
    let state = prepare(
        store,
        clock.clone(),
        PackSource::new(&pack_dir),
        loaded.pack,
    )
    .await
    .unwrap();
    let mut config = DetectionConfig {
        rule_paths: vec![rules],
        retention_interval: Duration::from_secs(3600),
        ..DetectionConfig::default()
    };
    config
        .source_retention
        .insert("short".into(), SignedDuration::from_hours(24));
    let detection = detection::start(&state, Arc::clone(&events), config)
        .await
        .unwrap();

    // The matching event sits in "long" (30 days), so the retention job, which also runs once at
    // start and may do so before the worker has read the batch, cannot purge it first.
    let old = now - SignedDuration::from_hours(48);
    let ids = events
        .append_events(&[
            event("long", old, "C:\\x\\whoami.exe"),
            event("short", old, "C:\\x\\notepad.exe"),
            event("short", now, "C:\\x\\calc.exe"),
        ])
        .await
        .unwrap();
    detection.wake();

    let mut signals = Vec::new();
    // A condition wait, bounded generously: a loaded CI machine may take seconds to get there.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        signals = events
            .list_signals(&SignalQuery {
                limit: 10,
                ..SignalQuery::default()
            })
            .await
            .unwrap();
        if !signals.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(signals.len(), 1, "{signals:?}");
    let s = &signals[0].signal;
    assert_eq!(s.rule_id, "rule-whoami");
    assert_eq!(s.severity.as_str(), "critical");
    assert_eq!(s.event_id, ids[0]);
    assert_eq!(s.created_at, now, "stamped by the server clock");
    assert_eq!(
        events.detection_cursor(detection::DETECTOR).await.unwrap(),
        ids[2]
    );

    // 48 h old: past the 24 h of "short", within the default 30 days of "long".
    // The job also runs once at start, so it may already have purged: check the outcome.
    let purged = detection::enforce_retention(&state, &detection)
        .await
        .unwrap();
    assert_eq!(purged.get("long"), None);
    let left: Vec<i64> = events
        .events_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, vec![ids[0], ids[2]]);

    // 31 days later the default retention applies to "long" too.
    clock.advance(SignedDuration::from_hours(31 * 24));
    let purged = detection::enforce_retention(&state, &detection)
        .await
        .unwrap();
    assert_eq!(purged.get("long"), Some(&1));
    assert_eq!(purged.get("short"), Some(&1));
    assert!(events.events_after(0, 10).await.unwrap().is_empty());
    // The signal outlives its event.
    assert_eq!(
        events
            .list_signals(&SignalQuery {
                limit: 10,
                ..SignalQuery::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );

    let audit = state.store().list_audit(0, 1000).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.record.action.as_str()).collect();
    assert!(actions.contains(&"signal.create"), "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "events.purge").count(), 3);
}
