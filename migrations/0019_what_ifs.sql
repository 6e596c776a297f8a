-- What-ifs (README "Rules and what-ifs"): a proposed ruleset judged against every member's
-- facts without publishing it. A what-if writes only here — never the log, the views or the
-- checkpoint — so it may run beside a replay and the projector. Its results are kept until
-- `expires_at`, then deleted by the service.
CREATE TABLE what_ifs
(
    what_if_id       uuid PRIMARY KEY,
    -- The proposed ruleset as sent (its version is the next after those published when run).
    proposed         jsonb       NOT NULL,
    status           text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    requested_by     text        NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    expires_at       timestamptz NOT NULL,
    members_examined bigint      NOT NULL DEFAULT 0,
    members_changed  bigint      NOT NULL DEFAULT 0,
    error            text
);

CREATE INDEX what_ifs_expiry ON what_ifs (expires_at);

-- Each quarter whose status the proposed ruleset would change, with where the member belonged
-- on the quarter's last day (today for the current quarter).
CREATE TABLE what_if_changes
(
    what_if_id      uuid NOT NULL REFERENCES what_ifs ON DELETE CASCADE,
    member_id       uuid NOT NULL,
    quarter         text NOT NULL CHECK (quarter ~ '^[0-9]{4}-Q[1-4]$'),
    org_id          text NOT NULL,
    status_now      text NOT NULL,
    status_proposed text NOT NULL,
    PRIMARY KEY (what_if_id, member_id, quarter)
);

-- Members who would change, per organisation they belonged to then.
CREATE TABLE what_if_orgs
(
    what_if_id uuid   NOT NULL REFERENCES what_ifs ON DELETE CASCADE,
    org_id     text   NOT NULL,
    members    bigint NOT NULL,
    PRIMARY KEY (what_if_id, org_id)
);
