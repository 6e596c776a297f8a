-- Moving a subtree under another parent from a date (issue 18). Every organisation's
-- ancestors, itself included, over time: each as the days [since, until) it lies above the
-- organisation (null: since always, until further notice). Every expansion of a member's place
-- to the organisations above it reads the tree of the days it concerns: a placement's days, a
-- quarter's first day (moves take effect from a quarter's first day), so roll-ups of quarters
-- before a move keep counting where members belonged then (rule 7). `org_view.path` stays the
-- tree of today: a move takes effect no later than the current quarter's first day.
CREATE TABLE org_ancestry_view
(
    org_id   text NOT NULL,
    ancestor text NOT NULL,
    since    date,
    until    date,
    CHECK (since IS NULL OR until IS NULL OR since < until)
);

CREATE INDEX org_ancestry_view_org ON org_ancestry_view (org_id, ancestor);

-- No organisation had moved before this migration: each lies under its path for ever.
INSERT INTO org_ancestry_view (org_id, ancestor)
SELECT org_id, unnest(path) FROM org_view;
