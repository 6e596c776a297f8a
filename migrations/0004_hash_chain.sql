-- Tamper evidence (DESIGN §4): each event carries a hash over the previous event's hash in its
-- stream and its own content, computed by the database as the event is inserted, so every
-- path that appends is covered. `studyledger verify` recomputes the chains (src/verify.rs)
-- from the same definition:
--
--   hash(n) = sha256(hash(n - 1) || utf8(event_type \n event_version \n sequence \n
--                                         recorded_at \n payload))
--
-- with hash(0) empty, recorded_at as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC) and payload as stored.
-- The first four fields cannot hold a line break, so the encoding is unambiguous.

CREATE FUNCTION event_content(event_type text, event_version text, sequence bigint,
                              recorded_at timestamptz, payload json) RETURNS bytea
    LANGUAGE sql STABLE AS
$$
SELECT convert_to(event_type || E'\n' || event_version || E'\n' || sequence::text || E'\n' ||
                  to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') ||
                  E'\n' || payload::text, 'UTF8')
$$;

ALTER TABLE events ADD COLUMN hash bytea;

-- Events recorded before this migration get their chains now (the append-only triggers are
-- set aside for this one update, inside the migration's transaction).
ALTER TABLE events DISABLE TRIGGER USER;
DO
$$
    DECLARE
        event    record;
        stream   text;
        previous bytea;
    BEGIN
        FOR event IN SELECT ctid, aggregate_type, aggregate_id, sequence, event_type,
                            event_version, recorded_at, payload
                       FROM events
                      ORDER BY aggregate_type, aggregate_id, sequence
            LOOP
                IF stream IS DISTINCT FROM event.aggregate_type || '/' || event.aggregate_id THEN
                    stream := event.aggregate_type || '/' || event.aggregate_id;
                    previous := '\x';
                END IF;
                previous := sha256(previous || event_content(event.event_type, event.event_version,
                                                              event.sequence, event.recorded_at,
                                                              event.payload));
                UPDATE events SET hash = previous WHERE ctid = event.ctid;
            END LOOP;
    END
$$;
ALTER TABLE events ENABLE TRIGGER USER;

CREATE FUNCTION events_chain() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    previous bytea;
BEGIN
    -- Rows inserted earlier by the same statement are visible here, so a multi-row append
    -- chains its own events.
    SELECT hash INTO previous FROM events
     WHERE aggregate_type = NEW.aggregate_type AND aggregate_id = NEW.aggregate_id
       AND sequence = NEW.sequence - 1;
    NEW.hash := sha256(coalesce(previous, '\x') ||
                       event_content(NEW.event_type, NEW.event_version, NEW.sequence,
                                     NEW.recorded_at, NEW.payload));
    RETURN NEW;
END
$$;

CREATE TRIGGER events_chain
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_chain();

ALTER TABLE events ALTER COLUMN hash SET NOT NULL;
