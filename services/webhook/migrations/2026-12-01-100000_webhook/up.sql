-- Who owns which application and what it may ask for (from auth's application.* events).
CREATE TABLE applications (
    client_id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    scopes TEXT NOT NULL
);
CREATE INDEX applications_owner ON applications (owner_id);

-- What each user authorized each application for (from consent.* events). A withdrawn
-- consent stays as a row with no scopes, so an older grant arriving late cannot revive it.
CREATE TABLE consents (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    event_types TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    ordered BOOLEAN NOT NULL,
    rate_limit INTEGER,
    headers TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_until BIGINT,
    failing_since BIGINT,
    disabled_reason TEXT,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX endpoints_client ON endpoints (client_id);

-- One message per event and application; its id is the `webhook-id` every attempt carries.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- The user the event is about, when only their consent lets it reach the application.
    user_id TEXT,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (client_id, event_id)
);
CREATE INDEX messages_created ON messages (created_at);

-- A message on its way to one endpoint: the scheduled attempts live here, so they survive
-- restarts. A replica claims due rows by setting lease_until.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    seq TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (message_id, endpoint_id)
);
-- Only pending deliveries are ever looked for: partial indexes stay small however many
-- deliveries were made (until retention deletes them).
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, seq) WHERE status = 'pending';
-- Attempts in flight (and expired leases, until settled).
CREATE INDEX deliveries_leased ON deliveries (endpoint_id, lease_until) WHERE status = 'pending' AND lease_until > 0;
CREATE INDEX deliveries_created ON deliveries (endpoint_id, created_at);

CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    attempted_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code INTEGER,
    error_kind TEXT,
    response_body TEXT NOT NULL,
    succeeded BOOLEAN NOT NULL
);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, attempted_at);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
