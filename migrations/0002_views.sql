-- Read models, kept by the projector (src/projector.rs) in commit order.
--
-- The projector applies each batch of events and advances its checkpoint in one transaction;
-- every view row carries the last event sequence of its member it reflects, and rows are
-- recomputed from the member's whole stream, so applying a batch twice changes nothing.

CREATE TABLE projector_checkpoints
(
    projector      text PRIMARY KEY,
    -- The last event applied, in commit order: (transaction_id, position).
    transaction_id xid8        NOT NULL DEFAULT '0',
    position       bigint      NOT NULL DEFAULT 0,
    events_applied bigint      NOT NULL DEFAULT 0,
    batches        bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

INSERT INTO projector_checkpoints (projector) VALUES ('views');

-- The organisation tree; `path` runs from the root to the organisation itself.
CREATE TABLE org_view
(
    org_id    text PRIMARY KEY,
    name      text   NOT NULL,
    parent_id text REFERENCES org_view (org_id),
    path      text[] NOT NULL
);

CREATE INDEX org_view_path ON org_view USING gin (path);

CREATE TABLE member_view
(
    member_id       uuid PRIMARY KEY,
    member_no       text   NOT NULL,
    name            text   NOT NULL,
    enrolled_on     date   NOT NULL,
    enrolled_org_id text   NOT NULL,
    last_sequence   bigint NOT NULL
);

-- Where a member belongs from a day on: the enrolment's organisation, then each transfer.
CREATE TABLE member_org_view
(
    member_id    uuid   NOT NULL REFERENCES member_view (member_id),
    effective_on date   NOT NULL,
    sequence     bigint NOT NULL,
    org_id       text   NOT NULL,
    PRIMARY KEY (member_id, effective_on, sequence)
);

CREATE INDEX member_org_view_by_org ON member_org_view (org_id, effective_on);

-- Per member and quarter with any credit or study: totals in hundredths of class hours, and the
-- targets and ruleset version they were judged under. Quarters without a row have no credit.
CREATE TABLE member_quarter_view
(
    member_id           uuid    NOT NULL REFERENCES member_view (member_id),
    quarter             text    NOT NULL CHECK (quarter ~ '^[0-9]{4}-Q[1-4]$'),
    required_hundredths bigint  NOT NULL,
    elective_hundredths bigint  NOT NULL,
    study_minutes       bigint  NOT NULL CHECK (study_minutes >= 0),
    required_target     bigint,
    elective_target     bigint,
    ruleset_version     integer,
    last_sequence       bigint  NOT NULL,
    PRIMARY KEY (member_id, quarter)
);
