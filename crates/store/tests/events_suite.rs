#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The event-store suite (events, signals, detection cursors, retention), written once and run
//! on SQLite always and on PostgreSQL when `GATEHOUSE_TEST_POSTGRES_URL` is set (each test in
//! a fresh schema), like `suite.rs`.

#[macro_use]
mod common;

use common::TestDb;
use std::sync::Arc;

use gatehouse_core::events::{
    EventStore, MatchedField, NewEvent, NewSignal, Severity, SignalQuery,
};
use gatehouse_core::store::StoreError;
use gatehouse_store::open_with_events;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

impl TestDb {
    async fn open(&self) -> Arc<dyn EventStore> {
        open_with_events(&self.config()).await.unwrap().1
    }
}

suite!(
    events_round_trip_in_id_order,
    events_survive_reopening,
    concurrent_appends_are_visible_in_id_order,
    signals_round_trip_and_cursor_moves_with_them,
    repeated_detection_of_an_event_stores_one_signal,
    cursor_never_moves_backwards,
    signals_filter_by_rule_and_page_by_id,
    retention_purges_only_old_events_of_that_source,
    timestamp_outside_storable_range_is_refused,
);

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

fn event(source: &str, received: Timestamp, n: u32) -> NewEvent {
    let raw = json!({"EventID": 4688, "n": n}).to_string();
    NewEvent {
        source: source.into(),
        received_at: received,
        event_time: Some(received - SignedDuration::from_secs(5)),
        ecs: json!({"event": {"code": "4688"}, "labels": {"n": n}}),
        raw,
    }
}

fn signal(rule: &str, event_id: i64, created: Timestamp) -> NewSignal {
    let fields = vec![MatchedField {
        field: "CommandLine".into(),
        value: format!("whoami /all #{event_id}"),
    }];
    NewSignal {
        rule_id: rule.into(),
        rule_title: format!("title of {rule}"),
        severity: Severity::High,
        dedup_key: format!("{rule}:{event_id}"),
        matched_fields: fields,
        event_id,
        event_source: "winlog".into(),
        event_time: None,
        event_received_at: created - SignedDuration::from_millis(3),
        alerts: vec!["DET-001".into()],
        created_at: created,
    }
}

async fn events_round_trip_in_id_order(db: &TestDb) {
    let store = db.open().await;
    let batch: Vec<NewEvent> = (0..3).map(|n| event("winlog", at(0), n)).collect();
    let ids = store.append_events(&batch).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let read = store.events_after(0, 100).await.unwrap();
    assert_eq!(read.len(), 3);
    for (stored, sent) in read.iter().zip(&batch) {
        assert_eq!(stored.source, sent.source);
        assert_eq!(stored.received_at, sent.received_at);
        assert_eq!(stored.event_time, sent.event_time);
        assert_eq!(stored.ecs, sent.ecs);
        assert_eq!(stored.raw, sent.raw);
    }
    let after_first = store.events_after(ids[0], 100).await.unwrap();
    assert_eq!(
        after_first.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids[1..]
    );
    assert_eq!(store.events_after(ids[2], 100).await.unwrap().len(), 0);
    assert_eq!(store.events_after(0, 2).await.unwrap().len(), 2);
}

async fn events_survive_reopening(db: &TestDb) {
    let ids = db
        .open()
        .await
        .append_events(&[event("a", at(0), 1)])
        .await
        .unwrap();
    let reopened = db.open().await;
    let read = reopened.events_after(0, 10).await.unwrap();
    assert_eq!(read.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
}

async fn concurrent_appends_are_visible_in_id_order(db: &TestDb) {
    let store = db.open().await;
    let mut tasks = Vec::new();
    for t in 0..4u32 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut all = Vec::new();
            for round in 0..5u32 {
                let batch: Vec<NewEvent> = (0..10)
                    .map(|n| event(&format!("s{t}"), at(0), round * 10 + n))
                    .collect();
                all.extend(store.append_events(&batch).await.unwrap());
            }
            all
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids.sort_unstable();
    let read: Vec<i64> = store
        .events_after(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(read, ids, "every acknowledged id is readable, in order");
    let mut unique = read.clone();
    unique.dedup();
    assert_eq!(unique.len(), 200);
}

async fn signals_round_trip_and_cursor_moves_with_them(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.detection_cursor("sigma").await.unwrap(), 0);
    let ids = store
        .append_events(&[event("winlog", at(0), 1), event("winlog", at(0), 2)])
        .await
        .unwrap();
    let sent = vec![
        signal("rule-a", ids[0], at(1)),
        signal("rule-b", ids[1], at(2)),
    ];
    let inserted = store
        .record_detections("sigma", &sent, ids[1])
        .await
        .unwrap();
    assert_eq!(inserted, 2);
    assert_eq!(store.detection_cursor("sigma").await.unwrap(), ids[1]);
    assert_eq!(store.detection_cursor("other").await.unwrap(), 0);
    let listed = store
        .list_signals(&SignalQuery {
            limit: 10,
            ..SignalQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].signal, sent[0]);
    assert_eq!(listed[1].signal, sent[1]);
    assert!(listed[0].id < listed[1].id);
}

async fn repeated_detection_of_an_event_stores_one_signal(db: &TestDb) {
    // A detector that crashes after storing signals but is replayed (or two detectors racing)
    // must not double the signals of one event.
    let store = db.open().await;
    let ids = store
        .append_events(&[event("winlog", at(0), 1)])
        .await
        .unwrap();
    let s = signal("rule-a", ids[0], at(1));
    assert_eq!(
        store
            .record_detections("sigma", std::slice::from_ref(&s), ids[0])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .record_detections("sigma", &[s.clone(), s], ids[0])
            .await
            .unwrap(),
        0
    );
    let all = store
        .list_signals(&SignalQuery {
            limit: 10,
            ..SignalQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}

async fn cursor_never_moves_backwards(db: &TestDb) {
    let store = db.open().await;
    store.record_detections("sigma", &[], 40).await.unwrap();
    store.record_detections("sigma", &[], 12).await.unwrap();
    assert_eq!(store.detection_cursor("sigma").await.unwrap(), 40);
}

async fn signals_filter_by_rule_and_page_by_id(db: &TestDb) {
    let store = db.open().await;
    let ids = store
        .append_events(&(0..5).map(|n| event("w", at(0), n)).collect::<Vec<_>>())
        .await
        .unwrap();
    let signals: Vec<NewSignal> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| signal(if i % 2 == 0 { "even" } else { "odd" }, *id, at(1)))
        .collect();
    store
        .record_detections("sigma", &signals, ids[4])
        .await
        .unwrap();
    let even = store
        .list_signals(&SignalQuery {
            rule_id: Some("even".into()),
            after_id: 0,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(even.len(), 3);
    assert!(even.iter().all(|s| s.signal.rule_id == "even"));
    let first_page = store
        .list_signals(&SignalQuery {
            rule_id: None,
            after_id: 0,
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(first_page.len(), 2);
    let second_page = store
        .list_signals(&SignalQuery {
            rule_id: None,
            after_id: first_page[1].id,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(second_page.len(), 3);
    assert!(second_page[0].id > first_page[1].id);
}

async fn retention_purges_only_old_events_of_that_source(db: &TestDb) {
    let store = db.open().await;
    store
        .append_events(&[
            event("winlog", at(0), 1),
            event("winlog", at(100), 2),
            event("proxy", at(0), 3),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.event_sources().await.unwrap(),
        vec!["proxy".to_owned(), "winlog".to_owned()]
    );
    // Nothing is purged past what detection has processed.
    assert_eq!(store.purge_events("winlog", at(50), 0).await.unwrap(), 0);
    let purged = store
        .purge_events("winlog", at(50), i64::MAX)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let left = store.events_after(0, 10).await.unwrap();
    let mut kept: Vec<(String, Timestamp)> = left
        .iter()
        .map(|e| (e.source.clone(), e.received_at))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        vec![("proxy".to_owned(), at(0)), ("winlog".to_owned(), at(100))]
    );
    // The boundary is exclusive: an event received exactly at the cut-off is kept.
    assert_eq!(
        store
            .purge_events("winlog", at(100), i64::MAX)
            .await
            .unwrap(),
        0
    );
}

async fn timestamp_outside_storable_range_is_refused(db: &TestDb) {
    let store = db.open().await;
    let mut e = event("w", at(0), 1);
    e.received_at = Timestamp::MAX;
    let err = store.append_events(&[e]).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidValue { field, .. } if field == "received_at"),
        "{err:?}"
    );
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
}
