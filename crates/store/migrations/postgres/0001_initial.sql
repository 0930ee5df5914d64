-- gatehouse schema v1 (PostgreSQL). Same shape as the SQLite schema: timestamps are Unix
-- nanoseconds (BIGINT) so both backends keep the exact instant; lists and details are JSON
-- kept as TEXT so the bytes read back are the bytes written (the audit log hashes them).

CREATE TABLE pack_revisions (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest         TEXT   NOT NULL,
    document_count BIGINT NOT NULL CHECK (document_count >= 0),
    loaded_at_ns   BIGINT NOT NULL,
    source         TEXT   NOT NULL
);

CREATE TABLE releases (
    id                  TEXT   PRIMARY KEY,
    service             TEXT   NOT NULL,
    version             TEXT   NOT NULL,
    release_class       TEXT   NOT NULL,
    artifact_digests    TEXT   NOT NULL,
    owner               TEXT   NOT NULL,
    change_summary      TEXT   NOT NULL,
    change_ticket       TEXT,
    change_pull_request TEXT,
    target_environment  TEXT   NOT NULL,
    submitter           TEXT   NOT NULL,
    created_at_ns       BIGINT NOT NULL
);
CREATE INDEX releases_by_created ON releases (created_at_ns DESC, id DESC);
CREATE INDEX releases_by_service ON releases (service, created_at_ns DESC, id DESC);

CREATE TABLE api_tokens (
    id              TEXT   PRIMARY KEY,
    secret_hash     TEXT   NOT NULL,
    roles           TEXT   NOT NULL,
    principal       TEXT   NOT NULL,
    created_at_ns   BIGINT NOT NULL,
    expires_at_ns   BIGINT,
    revoked_at_ns   BIGINT,
    last_used_at_ns BIGINT
);
CREATE INDEX api_tokens_by_principal ON api_tokens (principal, created_at_ns);

CREATE TABLE audit_log (
    seq     BIGINT PRIMARY KEY,
    at_ns   BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    target  TEXT   NOT NULL,
    outcome TEXT   NOT NULL,
    detail  TEXT   NOT NULL
);

-- A trigger (not a rule) so that tampering fails loudly instead of being silently ignored.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$;

CREATE TRIGGER audit_log_refuse_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_refuse_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
