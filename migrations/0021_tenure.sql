-- Rule 12, members who leave and rejoin (issue 18): each member row keeps the periods the
-- member was away, as a JSON array of {"left_on", "rejoined_on"} (null while still away), so
-- that every read judging a member's quarter (`left`, or exempt in the quarter of a rejoining)
-- has them without another probe. The placements' view holds one row per stay, cut at each
-- departure; no member has left before this migration, so nothing is rebuilt.
ALTER TABLE member_view ADD COLUMN away jsonb NOT NULL DEFAULT '[]'
    CHECK (jsonb_typeof(away) = 'array');
