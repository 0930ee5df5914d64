-- Tamper-evident audit log (issue 3). Each entry keeps the RFC 9162 leaf hash of its canonical
-- bytes (SHA-256(0x00 || entry), hex) and its `prev` link (the leaf hash of the entry before),
-- both computed by the store in the transaction that assigns the entry's seq. Signed tree heads
-- and the public keys that signed them are kept beside the log; all three tables are
-- append-only.

-- NULL only for rows appended before this migration: the store fills them once, in seq order,
-- on the next append.
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT, ADD COLUMN leaf_hash TEXT;

-- That one-time fill is the only UPDATE the table accepts: it must set both hashes on a row
-- that has none and change nothing else. Still a trigger (not a rule), so tampering fails
-- loudly.
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Nested IF: OLD and NEW exist only for row-level operations (not TRUNCATE).
    IF TG_OP = 'UPDATE' THEN
        IF OLD.leaf_hash IS NULL AND OLD.prev_hash IS NULL
            AND NEW.leaf_hash IS NOT NULL AND NEW.prev_hash IS NOT NULL
            AND (NEW.seq, NEW.at_ns, NEW.actor, NEW.action, NEW.target, NEW.outcome, NEW.detail)
                IS NOT DISTINCT FROM
                (OLD.seq, OLD.at_ns, OLD.actor, OLD.action, OLD.target, OLD.outcome, OLD.detail)
        THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$;

CREATE TABLE audit_tree_heads (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tree_size     BIGINT NOT NULL CHECK (tree_size >= 0),
    root_hash     TEXT   NOT NULL,
    timestamp_ns  BIGINT NOT NULL,
    key_id        TEXT   NOT NULL,
    signature     TEXT   NOT NULL,
    compact_range TEXT   NOT NULL
);
CREATE INDEX audit_tree_heads_by_size ON audit_tree_heads (tree_size, id);

CREATE TABLE audit_log_keys (
    key_id      TEXT   PRIMARY KEY,
    public_key  TEXT   NOT NULL,
    added_at_ns BIGINT NOT NULL
);

CREATE FUNCTION audit_ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE TRIGGER audit_tree_heads_refuse_update_delete BEFORE UPDATE OR DELETE ON audit_tree_heads
    FOR EACH ROW EXECUTE FUNCTION audit_ledger_refuse_change();
CREATE TRIGGER audit_tree_heads_refuse_truncate BEFORE TRUNCATE ON audit_tree_heads
    FOR EACH STATEMENT EXECUTE FUNCTION audit_ledger_refuse_change();
CREATE TRIGGER audit_log_keys_refuse_update_delete BEFORE UPDATE OR DELETE ON audit_log_keys
    FOR EACH ROW EXECUTE FUNCTION audit_ledger_refuse_change();
CREATE TRIGGER audit_log_keys_refuse_truncate BEFORE TRUNCATE ON audit_log_keys
    FOR EACH STATEMENT EXECUTE FUNCTION audit_ledger_refuse_change();
