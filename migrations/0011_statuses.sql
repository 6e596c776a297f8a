-- Member lists by status (DESIGN §4, "member lists by status"): for every member with figures
-- in a quarter (the members the counters count one by one) who is not compliant, their status
-- bucket under the rules they were folded with, once for the organisation they belong to on
-- the quarter's last day and once for every one above it. A page of a subtree's members of
-- such a status is one keyset range of the primary key. Compliant members are those with
-- figures and no place here; members without figures are judged on zero totals when read,
-- like the counters do. See projections/src/counters.rs and src/http/orgs.rs.
CREATE TABLE member_status_view
(
    ancestor  text NOT NULL,
    quarter   text NOT NULL CHECK (quarter ~ '^[0-9]{4}-Q[1-4]$'),
    bucket    text NOT NULL CHECK (bucket IN ('not_met', 'exempt')),
    member_id uuid NOT NULL,
    PRIMARY KEY (ancestor, quarter, bucket, member_id)
);

-- Views folded before the table existed lack its rows: they are rebuilt from the log (the
-- projector starts again from the beginning, or run `studyledger replay`).
TRUNCATE member_appeal_view, member_quarter_view, member_org_view, member_view, org_view,
         member_placement_view, org_quarter_view;
UPDATE projector_checkpoints
   SET transaction_id = '0', position = 0, covered = '0', events_applied = 0, batches = 0;
