-- Perfect-subtree hashes of the audit log's RFC 9162 Merkle tree, so that inclusion and
-- consistency proofs read O(log n) hashes instead of every leaf hash. Row (level, idx) is the
-- Merkle Tree Hash of leaves idx * 2^level .. (idx + 1) * 2^level (hex SHA-256), for
-- level >= 1; level 0 is audit_log.leaf_hash and is not repeated here.
--
-- The store writes the subtrees a leaf completes in the transaction that appends the entry
-- (amortised one row per entry). Rows that already exist when this migration runs are not
-- hashed here (SQLite has no SHA-256): the audit ledger adapter fills the table at start-up,
-- and any append that finds it behind fills it first, under the append lock, from where it
-- stopped (idempotent).
--
-- A cache derived from the leaf hashes, not evidence: signed tree heads are computed from the
-- leaf hashes, so a forged row can only make a proof fail against a signed head. Append-only
-- all the same, like the rest of the ledger.

CREATE TABLE audit_subtrees (
    level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  TEXT    NOT NULL, -- hex
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TRIGGER audit_subtrees_refuse_update BEFORE UPDATE ON audit_subtrees
BEGIN
    SELECT RAISE(ABORT, 'audit_subtrees is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_subtrees_refuse_delete BEFORE DELETE ON audit_subtrees
BEGIN
    SELECT RAISE(ABORT, 'audit_subtrees is append-only: DELETE refused');
END;
