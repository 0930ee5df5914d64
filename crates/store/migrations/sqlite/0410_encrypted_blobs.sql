-- Encryption at rest of evidence blobs (issue 3): each blob is sealed as a sequence of chunks
-- (1 MiB of plaintext each by default) under its own data key, which is wrapped by a
-- key-encryption key (KEK) named by kek_id. The wrapped data key, the chunk size and the
-- stream id form the stream header (see gatehouse_ledger::stream and docs/encryption.md);
-- rotation rewrites only stream_header and kek_id, never the chunks.
--
-- Rows written before this migration keep their plaintext in `content` with kek_id NULL
-- until the server (on start, with a keyring) or `gatehouse keys rotate` seals them, one row
-- per transaction; a sealed row has an empty `content`. The column stays because SQLite
-- cannot drop NOT NULL from it without rebuilding a table other tables reference.
ALTER TABLE evidence_blobs ADD COLUMN kek_id TEXT;
ALTER TABLE evidence_blobs ADD COLUMN stream_header BLOB;
ALTER TABLE evidence_blobs ADD COLUMN chunk_count INTEGER;

-- Sealed chunks, in order. Never larger than one chunk plus its 16-byte tag, so a blob of any
-- size fits PostgreSQL's row limits.
CREATE TABLE evidence_chunks (
    sha256 TEXT    NOT NULL REFERENCES evidence_blobs (sha256),
    idx    INTEGER NOT NULL CHECK (idx >= 0),
    sealed BLOB   NOT NULL,
    PRIMARY KEY (sha256, idx)
);

-- Rotation and `keys list` select and count blobs by the key that wraps their data key.
CREATE INDEX evidence_blobs_by_kek ON evidence_blobs (kek_id);
