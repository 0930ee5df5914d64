-- Tamper-evident audit log (issue 3). Each entry keeps the RFC 9162 leaf hash of its canonical
-- bytes (SHA-256(0x00 || entry), hex) and its `prev` link (the leaf hash of the entry before),
-- both computed by the store in the transaction that assigns the entry's seq. Signed tree heads
-- and the public keys that signed them are kept beside the log; all three tables are
-- append-only.

-- NULL only for rows appended before this migration: the store fills them once, in seq order,
-- on the next append.
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN leaf_hash TEXT;

-- That one-time fill is the only UPDATE the table accepts: it must set both hashes on a row
-- that has none and change nothing else.
DROP TRIGGER audit_log_refuse_update;
CREATE TRIGGER audit_log_refuse_update BEFORE UPDATE ON audit_log
WHEN NOT (
    OLD.leaf_hash IS NULL AND OLD.prev_hash IS NULL
    AND NEW.leaf_hash IS NOT NULL AND NEW.prev_hash IS NOT NULL
    AND NEW.seq IS OLD.seq AND NEW.at_ns IS OLD.at_ns AND NEW.actor IS OLD.actor
    AND NEW.action IS OLD.action AND NEW.target IS OLD.target
    AND NEW.outcome IS OLD.outcome AND NEW.detail IS OLD.detail
)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;

CREATE TABLE audit_tree_heads (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tree_size     INTEGER NOT NULL CHECK (tree_size >= 0),
    root_hash     TEXT    NOT NULL, -- hex
    timestamp_ns  INTEGER NOT NULL,
    key_id        TEXT    NOT NULL,
    signature     TEXT    NOT NULL, -- base64 Ed25519 signature
    compact_range TEXT    NOT NULL  -- JSON array of hex subtree roots: resume point for the next head
);
CREATE INDEX audit_tree_heads_by_size ON audit_tree_heads (tree_size, id);

CREATE TABLE audit_log_keys (
    key_id      TEXT    PRIMARY KEY,
    public_key  TEXT    NOT NULL, -- base64 Ed25519 public key
    added_at_ns INTEGER NOT NULL
);

CREATE TRIGGER audit_tree_heads_refuse_update BEFORE UPDATE ON audit_tree_heads
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_heads is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_tree_heads_refuse_delete BEFORE DELETE ON audit_tree_heads
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_heads is append-only: DELETE refused');
END;
CREATE TRIGGER audit_log_keys_refuse_update BEFORE UPDATE ON audit_log_keys
BEGIN
    SELECT RAISE(ABORT, 'audit_log_keys is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_log_keys_refuse_delete BEFORE DELETE ON audit_log_keys
BEGIN
    SELECT RAISE(ABORT, 'audit_log_keys is append-only: DELETE refused');
END;
