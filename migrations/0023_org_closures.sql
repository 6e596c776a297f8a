-- Organisations close (issue 18): from `closed_on` on nobody belongs to them and they take no
-- new members, transfers, rejoinings or children; `merged_into` names where a merge sent their
-- members. No organisation had closed before this migration, so no view needs rebuilding.
ALTER TABLE org_view
    ADD COLUMN closed_on   date,
    ADD COLUMN merged_into text;
