-- Perfect-subtree hashes of the audit log's RFC 9162 Merkle tree, so that inclusion and
-- consistency proofs read O(log n) hashes instead of every leaf hash. Row (level, idx) is the
-- Merkle Tree Hash of leaves idx * 2^level .. (idx + 1) * 2^level (hex SHA-256), for
-- level >= 1; level 0 is audit_log.leaf_hash and is not repeated here.
--
-- The store writes the subtrees a leaf completes in the transaction that appends the entry
-- (amortised one row per entry). Rows that already exist when this migration runs are filled
-- by the audit ledger adapter at start-up, and by any append that finds the table behind,
-- under the append lock, from where it stopped (idempotent): one code path for both backends,
-- since SQLite cannot hash in SQL.
--
-- A cache derived from the leaf hashes, not evidence: signed tree heads are computed from the
-- leaf hashes, so a forged row can only make a proof fail against a signed head. Append-only
-- all the same, like the rest of the ledger.

CREATE TABLE audit_subtrees (
    level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   BIGINT  NOT NULL CHECK (idx >= 0),
    hash  TEXT    NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TRIGGER audit_subtrees_refuse_update_delete BEFORE UPDATE OR DELETE ON audit_subtrees
    FOR EACH ROW EXECUTE FUNCTION audit_ledger_refuse_change();
CREATE TRIGGER audit_subtrees_refuse_truncate BEFORE TRUNCATE ON audit_subtrees
    FOR EACH STATEMENT EXECUTE FUNCTION audit_ledger_refuse_change();
