-- Embedded mode's bus (SqliteBus): each consumer's queue and what waits in it, so an event
-- survives a crash between the outbox handing it over and the consumer handling it.
CREATE TABLE bus_queues (
    name        TEXT PRIMARY KEY,
    -- The queue's topic patterns, as a JSON array.
    bindings    TEXT NOT NULL,
    -- A queue of one process (Subscription::per_replica): gone with that process.
    per_replica BOOLEAN NOT NULL
);

CREATE TABLE bus_messages (
    queue        TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event        TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    published_at BIGINT NOT NULL,
    ready_at     BIGINT NOT NULL,
    parked       BOOLEAN NOT NULL,
    PRIMARY KEY (queue, event_id)
);
CREATE INDEX bus_messages_ready ON bus_messages (queue, parked, ready_at, event_id);
