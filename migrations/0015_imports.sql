-- Bulk imports (`studyledger import FILE`, `POST /v1/imports`): each import's progress and
-- outcome, and the rows it refused with their line numbers and reasons. A batch's counts and
-- refusals are written in the transaction that appends the batch's events, so they always say
-- exactly what was committed.
CREATE TABLE imports
(
    import_id     uuid PRIMARY KEY,
    format        text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_by    text        NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    -- Rows read and handled so far: recorded (events appended), unchanged (recorded before:
    -- the same client ids again), refused (see import_refusals).
    rows_read     bigint      NOT NULL DEFAULT 0,
    rows_recorded bigint      NOT NULL DEFAULT 0,
    rows_unchanged bigint     NOT NULL DEFAULT 0,
    rows_refused  bigint      NOT NULL DEFAULT 0,
    -- Why the import stopped, when it failed.
    error         text
);

CREATE TABLE import_refusals
(
    import_id uuid   NOT NULL REFERENCES imports (import_id),
    line      bigint NOT NULL,
    reason    text   NOT NULL,
    PRIMARY KEY (import_id, line)
);
