-- The lists of members behind, sorted by how far behind (issue 17): each place in the lists
-- by status keeps the class hours its member lacks of the quarter's targets under the rules
-- they were folded with (projections/src/fold.rs `quarter_shortfall`; zero outside `not_met`).
-- A page of a subtree's members behind, most hours short first, is one backward range of
-- this index (src/http/orgs.rs `Subtree::behind_after`), not a sort of the subtree.
ALTER TABLE member_status_view ADD COLUMN shortfall_hundredths bigint NOT NULL DEFAULT 0
    CHECK (shortfall_hundredths >= 0);
ALTER TABLE member_status_view ALTER COLUMN shortfall_hundredths DROP DEFAULT;

CREATE INDEX member_status_view_shortfall
    ON member_status_view (ancestor, quarter, bucket, shortfall_hundredths, member_id);

-- The places already kept lack their shortfall: the views are rebuilt from the log (the
-- projector starts again from the beginning, or run `studyledger replay`).
TRUNCATE member_appeal_view, member_quarter_view, member_org_view, member_view, org_view,
         member_placement_view, org_quarter_view, member_status_view;
UPDATE projector_checkpoints
   SET transaction_id = '0', position = 0, covered = '0', events_applied = 0, batches = 0;
