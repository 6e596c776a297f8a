-- The dashboard (README "Dashboard"): sign-in sessions, and the organisation tree read one level
-- at a time.

-- A session is a random 256-bit secret in an HttpOnly cookie; only its SHA-256 is stored, with
-- the SHA-256 of the token it was opened with (the token's own stored form), so that every page
-- checks the token again: a revoked or expired token ends its sessions. `csrf` is the value
-- every form of the session must send back. Sessions end at sign-out or at `expires_at`.
CREATE TABLE dashboard_sessions
(
    session_sha256 bytea PRIMARY KEY CHECK (octet_length(session_sha256) = 32),
    secret_sha256  bytea       NOT NULL CHECK (octet_length(secret_sha256) = 32),
    csrf           text        NOT NULL CHECK (length(csrf) >= 32),
    started_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    ended_at       timestamptz
);

-- Ended and expired sessions are deleted by the service now and then.
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

-- An organisation's children, in id order (a national tree has nodes with thousands).
CREATE INDEX org_view_children ON org_view (parent_id, org_id);
