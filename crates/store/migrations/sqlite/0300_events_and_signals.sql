-- Security events, detection signals and the detector's cursor (issue 5, live detection).
-- Numbered 0300 so it never collides with the control plane's migrations. Timestamps are Unix
-- nanoseconds like every other table; JSON is kept as TEXT.

CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    source         TEXT    NOT NULL,
    received_at_ns INTEGER NOT NULL,
    event_time_ns  INTEGER,
    ecs            TEXT    NOT NULL, -- the event normalized to ECS names (docs/events.md)
    raw            TEXT    NOT NULL  -- the event as received, one JSON object
);
-- Retention deletes by source and age.
CREATE INDEX events_by_source_received ON events (source, received_at_ns);

CREATE TABLE signals (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id              TEXT    NOT NULL,
    rule_title           TEXT    NOT NULL,
    severity             TEXT    NOT NULL
        CHECK (severity IN ('informational', 'low', 'medium', 'high', 'critical')),
    dedup_key            TEXT    NOT NULL,
    matched_fields       TEXT    NOT NULL, -- JSON array of {"field", "value"}
    event_id             INTEGER NOT NULL, -- no foreign key: signals outlive purged events
    event_source         TEXT    NOT NULL,
    event_time_ns        INTEGER,
    event_received_at_ns INTEGER NOT NULL,
    alerts               TEXT    NOT NULL, -- JSON array of pack Alert ids
    created_at_ns        INTEGER NOT NULL,
    UNIQUE (rule_id, event_id)
);
CREATE INDEX signals_by_rule ON signals (rule_id, id);
CREATE INDEX signals_by_dedup_key ON signals (dedup_key, id);

CREATE TABLE detection_cursors (
    detector      TEXT    PRIMARY KEY,
    last_event_id INTEGER NOT NULL CHECK (last_event_id >= 0)
);
