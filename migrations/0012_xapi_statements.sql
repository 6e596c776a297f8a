-- The statements of the Learning Record Store at /xapi (xAPI 2.0), append-only like the
-- events: a statement is never changed or removed. Voiding is a statement of its own (its
-- `voids` names the statement it voids); a voided statement stays, and reads of it by id
-- answer 404 while `voidedStatementId` finds it.
CREATE TABLE xapi_statements
(
    -- The order statements were stored in: the cursor of `more` links.
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    statement_id uuid PRIMARY KEY,
    stored       timestamptz NOT NULL,
    -- The token that stored it: what `ingest` tokens may read back (statements/read/mine).
    token_id     text        NOT NULL,
    verb_id      text        NOT NULL,
    -- The statement this one voids, when it is a voiding statement.
    voids        uuid,
    -- The statement as served: with `stored`, `authority`, `version` and `timestamp`.
    statement    jsonb       NOT NULL
);

CREATE INDEX xapi_statements_voids ON xapi_statements (voids) WHERE voids IS NOT NULL;

-- What the filters of GET /xapi/statements match on, one row per statement and key, so that
-- a filtered page is one range of the primary key in the order of storing whatever the
-- filter: `token:<token id>`, `verb:<IRI>`, `agent:<identifier>` (actor, or object when an
-- agent), `related_agent:<identifier>` (every agent the statement names), `activity:<IRI>`
-- (object), `related_activity:<IRI>` (with the context's), `registration:<uuid>`.
-- Identifiers are `mbox:mailto:…`, `mbox_sha1sum:…`, `openid:…` or `account:<homePage> <name>`.
CREATE TABLE xapi_statement_keys
(
    key text   NOT NULL,
    seq bigint NOT NULL REFERENCES xapi_statements (seq),
    PRIMARY KEY (key, seq)
);

CREATE TRIGGER xapi_statements_append_only
    BEFORE UPDATE OR DELETE ON xapi_statements
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TRIGGER xapi_statements_no_truncate
    BEFORE TRUNCATE ON xapi_statements
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE TRIGGER xapi_statement_keys_append_only
    BEFORE UPDATE OR DELETE ON xapi_statement_keys
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TRIGGER xapi_statement_keys_no_truncate
    BEFORE TRUNCATE ON xapi_statement_keys
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
