-- Events the ledger could not apply: their payload no current type reads (written before a
-- rule of the value types, or by hand), or the views could not hold what they say. The
-- projector and replay pass over them and list them here instead of stopping; the event
-- itself stays in `events`, untouched. A member with a skipped event that is not set aside
-- (by a `SkippedEventSetAside` event of the member's own stream, which the projector copies
-- into `set_aside_sequence`) reads as incomplete, and no determination is made for them.
CREATE TABLE skipped_events
(
    -- The event's global position (events.position).
    position           bigint PRIMARY KEY,
    aggregate_type     text        NOT NULL,
    aggregate_id       text        NOT NULL,
    sequence           bigint      NOT NULL,
    event_type         text        NOT NULL,
    -- Why it could not be applied (the parser's or the database's words).
    reason             text        NOT NULL,
    -- `projector` or `replay`: who met it first.
    skipped_by         text        NOT NULL,
    skipped_at         timestamptz NOT NULL DEFAULT now(),
    -- The sequence of the member's event that set it aside, once one did.
    set_aside_sequence bigint,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);

-- Members with a skipped event not set aside: the reads' `incomplete` flag.
CREATE INDEX skipped_events_open ON skipped_events (aggregate_id)
    WHERE set_aside_sequence IS NULL;
