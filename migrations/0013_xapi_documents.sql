-- The document resources of /xapi (xAPI 2.0 part 3, §2.3–2.6): state documents (kept per
-- activity, agent, registration and stateId — cmi5 players keep their launch data there),
-- activity profiles and agent profiles. Unlike statements, documents are changed and removed
-- by their clients; each change gives a new ETag, which If-Match / If-None-Match compare.
CREATE TABLE xapi_documents
(
    -- `state`, `activity_profile` or `agent_profile`.
    kind         text        NOT NULL CHECK (kind IN ('state', 'activity_profile', 'agent_profile')),
    -- Whose document: the activity IRI, the agent's identifier and the registration (or '')
    -- joined by a newline for a state; the activity IRI or the agent's identifier for a profile.
    scope        text        NOT NULL,
    document_id  text        NOT NULL,
    content_type text        NOT NULL,
    content      bytea       NOT NULL,
    -- The SHA-256 of the content in hex, quoted as an ETag is (opaque to clients).
    etag         text        NOT NULL,
    updated      timestamptz NOT NULL,
    PRIMARY KEY (kind, scope, document_id)
);

CREATE INDEX xapi_documents_updated ON xapi_documents (kind, scope, updated);
