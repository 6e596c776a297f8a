-- The hash chain of 0004 covered an event's type, version, sequence, recording time and payload,
-- but not whose stream it is nor its metadata: two members' streams could be swapped, or the
-- actor of an adjustment rewritten, without breaking a link. From here on a link covers them too:
--
--   hash(n) = sha256(hash(n - 1) || utf8(aggregate_type \n aggregate_id \n event_type \n
--                                         event_version \n sequence \n recorded_at \n
--                                         octet_length(metadata) \n metadata payload))
--
-- with hash(0) empty, recorded_at as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC), metadata and payload
-- as stored. The first six fields cannot hold a line break (ids are UUIDs or slugs, types are
-- the code's own names) and the metadata's length says where the payload starts, so the
-- encoding is unambiguous.
--
-- Existing events are chained anew. A link that did not hold under the old definition is
-- stored so that it does not hold under the new one either: rechaining never hides tampering.
-- (Like 0004, this runs row by row inside the migration's transaction: on a large store, plan
-- the migration for a quiet hour.)

CREATE FUNCTION event_content(aggregate_type text, aggregate_id text, event_type text,
                              event_version text, sequence bigint, recorded_at timestamptz,
                              metadata json, payload json) RETURNS bytea
    LANGUAGE sql STABLE AS
$$
SELECT convert_to(aggregate_type || E'\n' || aggregate_id || E'\n' || event_type || E'\n' ||
                  event_version || E'\n' || sequence::text || E'\n' ||
                  to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') ||
                  E'\n' || octet_length(convert_to(metadata::text, 'UTF8'))::text || E'\n' ||
                  metadata::text || payload::text, 'UTF8')
$$;

ALTER TABLE events DISABLE TRIGGER USER;
DO
$$
    DECLARE
        event         record;
        stream_type   text;
        stream_id     text;
        old_previous  bytea;
        new_previous  bytea;
        last_sequence bigint;
        before        bytea;
        rechained     bytea;
    BEGIN
        FOR event IN SELECT ctid, aggregate_type, aggregate_id, sequence, event_type,
                            event_version, recorded_at, metadata, payload, hash
                       FROM events
                      ORDER BY aggregate_type, aggregate_id, sequence
            LOOP
                IF (stream_type, stream_id) IS DISTINCT FROM
                   (event.aggregate_type, event.aggregate_id) THEN
                    stream_type := event.aggregate_type;
                    stream_id := event.aggregate_id;
                    old_previous := NULL;
                    new_previous := NULL;
                    last_sequence := 0;
                END IF;
                -- The old link, checked as `studyledger verify` checked it.
                before := CASE
                              WHEN event.sequence = 1 THEN '\x'::bytea
                              WHEN event.sequence = last_sequence + 1 THEN old_previous
                              ELSE '\xff'::bytea
                          END;
                rechained := sha256(coalesce(new_previous, '\x') ||
                                    event_content(event.aggregate_type, event.aggregate_id,
                                                  event.event_type, event.event_version,
                                                  event.sequence, event.recorded_at,
                                                  event.metadata, event.payload));
                IF event.hash IS DISTINCT FROM
                   sha256(before || event_content(event.event_type, event.event_version,
                                                  event.sequence, event.recorded_at,
                                                  event.payload)) THEN
                    rechained := sha256('\xff'::bytea || rechained);
                END IF;
                UPDATE events SET hash = rechained WHERE ctid = event.ctid;
                old_previous := event.hash;
                new_previous := rechained;
                last_sequence := event.sequence;
            END LOOP;
    END
$$;
ALTER TABLE events ENABLE TRIGGER USER;

DROP FUNCTION event_content(text, text, bigint, timestamptz, json);

CREATE OR REPLACE FUNCTION events_chain() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    previous bytea;
BEGIN
    -- Rows inserted earlier by the same statement are visible here, so a multi-row append
    -- chains its own events (the store inserts them in sequence order).
    IF NEW.sequence > 1 THEN
        SELECT hash INTO previous FROM events
         WHERE aggregate_type = NEW.aggregate_type AND aggregate_id = NEW.aggregate_id
           AND sequence = NEW.sequence - 1;
        IF previous IS NULL THEN
            -- Never start a chain in the middle of a stream: such a link could never verify.
            -- The service appends a stream's events in order, so only a write made by hand
            -- gets here.
            RAISE EXCEPTION 'event % of % % follows no event in its stream', NEW.sequence,
                NEW.aggregate_type, NEW.aggregate_id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    NEW.hash := sha256(coalesce(previous, '\x') ||
                       event_content(NEW.aggregate_type, NEW.aggregate_id, NEW.event_type,
                                     NEW.event_version, NEW.sequence, NEW.recorded_at,
                                     NEW.metadata, NEW.payload));
    RETURN NEW;
END
$$;
