-- Local people (password sign-in), browser sessions, and labels of API tokens (PostgreSQL).
-- Timestamps are Unix nanoseconds; lists are JSON text, like the rest of the schema.

CREATE TABLE local_users (
    id             TEXT    PRIMARY KEY,
    display        TEXT    NOT NULL,
    roles          TEXT    NOT NULL, -- JSON array; the pack Person's roles win when it exists
    password_hash  TEXT,             -- Argon2id PHC string; NULL = no password sign-in
    created_at_ns  BIGINT  NOT NULL,
    updated_at_ns  BIGINT  NOT NULL,
    disabled_at_ns BIGINT
);

CREATE TABLE sessions (
    id              TEXT    PRIMARY KEY,
    secret_hash     TEXT    NOT NULL, -- hex SHA-256 of the cookie secret; the secret is never stored
    principal       TEXT    NOT NULL,
    established_by  TEXT    NOT NULL,
    created_at_ns   BIGINT  NOT NULL,
    last_seen_at_ns BIGINT  NOT NULL,
    expires_at_ns   BIGINT  NOT NULL,
    ended_at_ns     BIGINT
);
CREATE INDEX sessions_by_principal ON sessions (principal);
CREATE INDEX sessions_by_expiry ON sessions (expires_at_ns);

ALTER TABLE api_tokens ADD COLUMN label TEXT;
