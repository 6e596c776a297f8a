-- What each stored statement that concerns the ledger became (xAPI statements feed the
-- ledger; see src/jobs/feed.rs). One row per such statement, written in the transaction that
-- records its facts, so a statement maps exactly once:
--   recorded          the facts in `facts` are on the member's stream (their source is the
--                     statement);
--   refused           the rules refused them (`reason`); nothing was recorded;
--   unreadable        it cannot be read as a fact (`reason`: no duration, not completed, …);
--   unknown_member    its actor is no enrolled member (`member_id` when it names one): mapped
--                     when the member enrols;
--   unknown_activity  its object is linked to no course: mapped when a course is linked;
--   withdrawn         it was voided, and its facts withdrawn (rule 11);
--   voided            it was voided before anything was recorded from it;
--   withdrawal        a voiding statement: `facts` are the facts it withdrew.
-- The statement itself stays as stored; this row is the ledger's reading of it, and changes
-- only as registrations and voidings arrive.
CREATE TABLE xapi_mappings
(
    statement_id uuid PRIMARY KEY REFERENCES xapi_statements (statement_id),
    -- The statement's place in the order of storing: the review list's order.
    seq          bigint      NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN
        ('recorded', 'refused', 'unreadable', 'unknown_member', 'unknown_activity',
         'withdrawn', 'voided', 'withdrawal')),
    member_id    uuid,
    activity_id  text,
    reason       text,
    facts        uuid[]      NOT NULL DEFAULT '{}',
    mapped_at    timestamptz NOT NULL
);

-- The review list: statements of one outcome in storing order, and the default list (every
-- outcome to review) in storing order without a sort of them all.
CREATE INDEX xapi_mappings_by_outcome ON xapi_mappings (outcome, seq);
CREATE INDEX xapi_mappings_to_review ON xapi_mappings (seq)
    WHERE outcome IN ('refused', 'unreadable', 'unknown_member', 'unknown_activity');
-- Statements waiting for their member or activity, found when it is registered.
CREATE INDEX xapi_mappings_waiting_member ON xapi_mappings (member_id, seq)
    WHERE outcome = 'unknown_member';
CREATE INDEX xapi_mappings_waiting_activity ON xapi_mappings (activity_id, seq)
    WHERE outcome = 'unknown_activity';
