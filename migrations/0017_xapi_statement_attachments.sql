-- Which statement came with which attachment's data (0016 keeps the data once per hash): a
-- statement read with `attachments=true` is served the data it was sent with, and no other —
-- a token that names a hash it has seen elsewhere does not read that data through its own
-- statement. The part's content type is the statement's own. Append-only like the statements.
CREATE TABLE xapi_statement_attachments
(
    statement_id uuid NOT NULL REFERENCES xapi_statements (statement_id),
    sha2         text NOT NULL REFERENCES xapi_attachments (sha2),
    content_type text NOT NULL,
    PRIMARY KEY (statement_id, sha2)
);

CREATE TRIGGER xapi_statement_attachments_append_only
    BEFORE UPDATE OR DELETE ON xapi_statement_attachments
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TRIGGER xapi_statement_attachments_no_truncate
    BEFORE TRUNCATE ON xapi_statement_attachments
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
