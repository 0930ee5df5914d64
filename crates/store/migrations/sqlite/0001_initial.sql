-- gatehouse schema v1 (SQLite). Timestamps are Unix nanoseconds (INTEGER) so both backends
-- store the exact instant and sort it numerically; lists are JSON text.

CREATE TABLE pack_revisions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    digest         TEXT    NOT NULL,
    document_count INTEGER NOT NULL CHECK (document_count >= 0),
    loaded_at_ns   INTEGER NOT NULL,
    source         TEXT    NOT NULL
);

CREATE TABLE releases (
    id                  TEXT    PRIMARY KEY,
    service             TEXT    NOT NULL,
    version             TEXT    NOT NULL,
    release_class       TEXT    NOT NULL,
    artifact_digests    TEXT    NOT NULL, -- JSON array of "sha256:<hex>"
    owner               TEXT    NOT NULL,
    change_summary      TEXT    NOT NULL,
    change_ticket       TEXT,
    change_pull_request TEXT,
    target_environment  TEXT    NOT NULL,
    submitter           TEXT    NOT NULL,
    created_at_ns       INTEGER NOT NULL
);
CREATE INDEX releases_by_created ON releases (created_at_ns DESC, id DESC);
CREATE INDEX releases_by_service ON releases (service, created_at_ns DESC, id DESC);

CREATE TABLE api_tokens (
    id              TEXT    PRIMARY KEY,
    secret_hash     TEXT    NOT NULL, -- hex SHA-256 of the secret; the secret is never stored
    roles           TEXT    NOT NULL, -- JSON array of role ids
    principal       TEXT    NOT NULL,
    created_at_ns   INTEGER NOT NULL,
    expires_at_ns   INTEGER,
    revoked_at_ns   INTEGER,
    last_used_at_ns INTEGER
);
CREATE INDEX api_tokens_by_principal ON api_tokens (principal, created_at_ns);

-- Append-only: seq is assigned as MAX(seq) + 1 inside the insert, so it has no gaps.
CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY,
    at_ns   INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    outcome TEXT    NOT NULL,
    detail  TEXT    NOT NULL  -- JSON
);

CREATE TRIGGER audit_log_refuse_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_log_refuse_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
