-- Freshness in constant time (DESIGN §4): with its checkpoint, the projector keeps the
-- transaction horizon it has fully covered — every event of a transaction below `covered` is
-- in the views. A read whose own horizon is not above it is fresh without looking at `events`;
-- otherwise one probe of the commit-order index just after the checkpoint says whether anything
-- is left.
ALTER TABLE projector_checkpoints ADD COLUMN covered xid8 NOT NULL DEFAULT '0';
