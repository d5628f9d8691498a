-- Events written in the same transaction as the change they describe; the relay publishes and
-- deletes them. Ordered by id: UUIDv7 text sorts by creation time.
CREATE TABLE outbox_events (
    id         TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Events a consumer has already handled, so redeliveries are recognised and skipped.
CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
