-- Attachments' raw data, as statements sent it in multipart/mixed requests (xAPI 2.0 part 3,
-- §1.5.2), kept under its SHA-2 hash: the statements name their attachments by that hash, so
-- one file attached to many statements is kept once. Append-only like the statements; the
-- database itself refuses data that does not hash to the name it is kept under.
CREATE TABLE xapi_attachments
(
    sha2         text PRIMARY KEY CHECK (sha2 ~ '^([0-9a-f]{64}|[0-9a-f]{96}|[0-9a-f]{128})$'),
    content_type text        NOT NULL,
    content      bytea       NOT NULL,
    stored       timestamptz NOT NULL DEFAULT now(),
    CHECK (sha2 = encode(CASE length(sha2)
                             WHEN 64 THEN sha256(content)
                             WHEN 96 THEN sha384(content)
                             ELSE sha512(content) END, 'hex'))
);

CREATE TRIGGER xapi_attachments_append_only
    BEFORE UPDATE OR DELETE ON xapi_attachments
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TRIGGER xapi_attachments_no_truncate
    BEFORE TRUNCATE ON xapi_attachments
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
