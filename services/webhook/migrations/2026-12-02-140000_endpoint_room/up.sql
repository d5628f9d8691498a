-- The attempts an endpoint may have in flight, grown while it answers fast (no row: the start).
CREATE TABLE endpoint_rooms (
    endpoint_id TEXT PRIMARY KEY,
    room INTEGER NOT NULL
);
