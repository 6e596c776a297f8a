-- Access: bearer tokens, the record of who read whose record, and verifications run over HTTP.

-- A token's secret is never stored: only its SHA-256 (of a 256-bit random secret, so a hash
-- without salt is enough). A revoked or expired token keeps its row, for the record.
CREATE TABLE access_tokens
(
    token_id      uuid PRIMARY KEY,
    secret_sha256 bytea       NOT NULL UNIQUE CHECK (octet_length(secret_sha256) = 32),
    role          text        NOT NULL
        CHECK (role IN ('member', 'ingest', 'org_admin', 'auditor', 'admin')),
    -- The subtree an `org_admin` token reaches; the member a `member` token is.
    org_id        text,
    member_id     uuid,
    name          text        NOT NULL,
    issued_at     timestamptz NOT NULL DEFAULT now(),
    issued_by     text        NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    revoked_by    text,
    CHECK ((role = 'org_admin') = (org_id IS NOT NULL)),
    CHECK ((role = 'member') = (member_id IS NOT NULL))
);

-- Every read of a member's record by a token other than the member's own: who, which
-- member(s), which route, when. Append-only, like the events.
CREATE TABLE access_log
(
    entry_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    read_at    timestamptz NOT NULL DEFAULT now(),
    token_id   text        NOT NULL,
    role       text        NOT NULL,
    name       text        NOT NULL,
    route      text        NOT NULL,
    request_id text        NOT NULL,
    member_ids uuid[]      NOT NULL
);

CREATE INDEX access_log_members ON access_log USING gin (member_ids);
CREATE INDEX access_log_token ON access_log (token_id, entry_id);

CREATE FUNCTION refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'the % table is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER access_log_append_only
    BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TRIGGER access_log_no_truncate
    BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Hash-chain verifications asked for over HTTP, with what they found.
CREATE TABLE verifications
(
    verification_id uuid PRIMARY KEY,
    member_id       uuid,
    status          text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    events_total    bigint      NOT NULL DEFAULT 0,
    events_checked  bigint      NOT NULL DEFAULT 0,
    -- [{aggregate_type, aggregate_id, sequence}]
    broken_links    jsonb       NOT NULL DEFAULT '[]',
    requested_by    text        NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    error           text
);
