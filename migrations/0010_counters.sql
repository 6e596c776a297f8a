-- Reads at national scale (DESIGN §4, "roll-ups from counters"): the projector keeps, in the
-- same transaction as the member rows, per organisation subtree, quarter and rules version:
-- the change in the number of members who belong to the subtree on the quarter's last day
-- (`member_delta`; summed over the quarters up to one, it counts them), and the quarter's
-- figures of the members with any — counted, by status bucket, credited hundredths. Members
-- without figures are judged on zero totals when read. See projections/src/counters.rs.
CREATE TABLE org_quarter_view
(
    org_id        text    NOT NULL,
    quarter       text    NOT NULL CHECK (quarter ~ '^[0-9]{4}-Q[1-4]$'),
    rules_version integer NOT NULL,
    member_delta  bigint  NOT NULL DEFAULT 0,
    counted       bigint  NOT NULL DEFAULT 0,
    compliant     bigint  NOT NULL DEFAULT 0,
    not_met       bigint  NOT NULL DEFAULT 0,
    exempt        bigint  NOT NULL DEFAULT 0,
    hundredths    bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, quarter, rules_version)
);

-- Where each member belongs, once for every organisation above (and at) their own, as
-- intervals [effective_on, until): a subtree's members on a day are one keyset range in member
-- order, for pages and exports of any subtree.
CREATE TABLE member_placement_view
(
    ancestor     text   NOT NULL,
    member_id    uuid   NOT NULL,
    effective_on date   NOT NULL,
    sequence     bigint NOT NULL,
    until        date,
    org_id       text   NOT NULL,
    PRIMARY KEY (ancestor, member_id, effective_on, sequence)
);

CREATE INDEX member_placement_view_member ON member_placement_view (member_id);

-- Placements that change after today move members between subtrees of the current quarter
-- without an event: a roll-up finds them by day.
CREATE INDEX member_org_view_by_day ON member_org_view (effective_on);

-- Views folded before the counters existed lack them: they are rebuilt from the log (the
-- projector starts again from the beginning, or run `studyledger replay`).
TRUNCATE member_appeal_view, member_quarter_view, member_org_view, member_view, org_view;
UPDATE projector_checkpoints
   SET transaction_id = '0', position = 0, covered = '0', events_applied = 0, batches = 0;
