-- The release gate (issue 4): evidence, requirement statuses, exceptions, risks, approvals,
-- bypasses and the emergency retrospective of each release. Numbered 0200 so it never collides
-- with the control plane's or the event store's migrations. Timestamps are Unix nanoseconds.

-- The current revision of each release's reviewable material; writes compare-and-set it inside
-- their transaction so two changes decided on the same state cannot both commit.
CREATE TABLE gate_heads (
    release_id TEXT    PRIMARY KEY REFERENCES releases (id),
    revision   INTEGER NOT NULL CHECK (revision >= 0)
);

-- Evidence bytes, content-addressed: the same file attached to many releases is kept once.
CREATE TABLE evidence_blobs (
    sha256       TEXT    PRIMARY KEY CHECK (length(sha256) = 64),
    size         INTEGER NOT NULL CHECK (size >= 0),
    content      BLOB    NOT NULL,
    stored_at_ns INTEGER NOT NULL
);

CREATE TABLE gate_evidence (
    release_id     TEXT    NOT NULL REFERENCES releases (id),
    id             TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    sha256         TEXT    NOT NULL REFERENCES evidence_blobs (sha256),
    size           INTEGER NOT NULL,
    attached_at_ns INTEGER NOT NULL,
    attached_by    TEXT    NOT NULL,
    supersedes     TEXT,
    revision       INTEGER NOT NULL,
    PRIMARY KEY (release_id, id),
    -- One file is attached to a release once (re-uploads are idempotent).
    UNIQUE (release_id, sha256)
);

-- Requirement statuses, exceptions, risks, approvals, bypasses and retrospectives, as JSON of
-- the domain record. A changed exception or risk is a new row with the same record_id; the
-- latest (highest seq) is current, and the history stays.
CREATE TABLE gate_records (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id  TEXT    NOT NULL REFERENCES releases (id),
    record_type TEXT    NOT NULL CHECK (record_type IN
        ('requirement', 'exception', 'risk', 'approval', 'bypass', 'retrospective')),
    record_id   TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    at_ns       INTEGER NOT NULL,
    body        TEXT    NOT NULL
);
CREATE INDEX gate_records_by_release ON gate_records (release_id, seq);
