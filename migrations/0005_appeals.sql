-- Appeals as reviewers look for them (rule 9): one row per appeal, kept by the projector with
-- the member's other rows (and rebuilt by a replay like them). `status` is `open` while the
-- appeal waits for a reviewer against the determination in force, `superseded` when a newer
-- determination replaced that one first, else the outcome.
CREATE TABLE member_appeal_view
(
    member_id        uuid        NOT NULL,
    appeal_id        uuid        NOT NULL,
    evaluation_id    text        NOT NULL,
    determination_id uuid        NOT NULL,
    reason           text        NOT NULL,
    filed_at         timestamptz NOT NULL,
    status           text        NOT NULL
        CHECK (status IN ('open', 'upheld', 'overturned', 'superseded')),
    PRIMARY KEY (member_id, appeal_id)
);

CREATE INDEX member_appeal_view_open ON member_appeal_view (appeal_id) WHERE status = 'open';
