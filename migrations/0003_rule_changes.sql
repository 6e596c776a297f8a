-- Rule changes and replay (DESIGN §3 rules 5, 8 and 10).
--
-- Each member's view rows remember the highest ruleset version they were folded under, so a
-- read can say for any quarter which ruleset judged it and whether a newer one governs it now
-- (stale, until a replay rebuilds the views).
ALTER TABLE member_view ADD COLUMN rules_version integer NOT NULL DEFAULT 1;
ALTER TABLE member_view ALTER COLUMN rules_version DROP DEFAULT;
-- The per-quarter targets and version follow from `rules_version` when read; stored per row
-- they could only disagree with it.
ALTER TABLE member_quarter_view DROP COLUMN required_target, DROP COLUMN elective_target,
    DROP COLUMN ruleset_version;

-- Views are rebuilt into fresh tables (CREATE TABLE ... (LIKE ... INCLUDING ALL), which copies
-- no foreign keys) and swapped in; the views are derived from the log, which is where the
-- invariants live. Drop the keys so the live tables always have the same shape.
ALTER TABLE member_org_view DROP CONSTRAINT IF EXISTS member_org_view_member_id_fkey;
ALTER TABLE member_quarter_view DROP CONSTRAINT IF EXISTS member_quarter_view_member_id_fkey;
ALTER TABLE org_view DROP CONSTRAINT IF EXISTS org_view_parent_id_fkey;

-- One row per replay (dry run or rebuild), its progress and its outcome.
CREATE TABLE replays
(
    replay_id         uuid PRIMARY KEY,
    dry_run           boolean     NOT NULL,
    status            text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    events_processed  bigint      NOT NULL DEFAULT 0,
    events_total      bigint      NOT NULL DEFAULT 0,
    members_processed bigint      NOT NULL DEFAULT 0,
    -- The highest ruleset version the replay judged under.
    rules_version     integer,
    actor             text        NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    error             text
);

-- Rule 10's work list: every (member, evaluation) whose final recorded eligibility differs from
-- eligibility under the replay's rules and the facts as they stood.
CREATE TABLE replay_changes
(
    replay_id         uuid    NOT NULL REFERENCES replays (replay_id) ON DELETE CASCADE,
    member_id         uuid    NOT NULL,
    evaluation_id     text    NOT NULL,
    determination_id  uuid    NOT NULL,
    recorded_eligible boolean NOT NULL,
    eligible_now      boolean NOT NULL,
    -- [{quarter, recorded_status, status_now, recorded_ruleset_version, ruleset_version_now}]
    quarters_changed  jsonb   NOT NULL,
    PRIMARY KEY (replay_id, member_id, evaluation_id)
);
