-- Security events, detection signals and the detector's cursor (issue 5, live detection).
-- Same shape as the SQLite schema; numbered 0300 so it never collides with the control
-- plane's migrations.

CREATE TABLE events (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source         TEXT   NOT NULL,
    received_at_ns BIGINT NOT NULL,
    event_time_ns  BIGINT,
    ecs            TEXT   NOT NULL,
    raw            TEXT   NOT NULL
);
CREATE INDEX events_by_source_received ON events (source, received_at_ns);

CREATE TABLE signals (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id              TEXT   NOT NULL,
    rule_title           TEXT   NOT NULL,
    severity             TEXT   NOT NULL
        CHECK (severity IN ('informational', 'low', 'medium', 'high', 'critical')),
    dedup_key            TEXT   NOT NULL,
    matched_fields       TEXT   NOT NULL,
    event_id             BIGINT NOT NULL,
    event_source         TEXT   NOT NULL,
    event_time_ns        BIGINT,
    event_received_at_ns BIGINT NOT NULL,
    alerts               TEXT   NOT NULL,
    created_at_ns        BIGINT NOT NULL,
    UNIQUE (rule_id, event_id)
);
CREATE INDEX signals_by_rule ON signals (rule_id, id);
CREATE INDEX signals_by_dedup_key ON signals (dedup_key, id);

CREATE TABLE detection_cursors (
    detector      TEXT   PRIMARY KEY,
    last_event_id BIGINT NOT NULL CHECK (last_event_id >= 0)
);
