-- Who owns which application (from auth's application.* events).
CREATE TABLE applications (
    client_id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL
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

-- The users notifications may be addressed to, with their contact points (e-mail from
-- user.registered, phone from user.updated).
CREATE TABLE recipients (
    user_id TEXT PRIMARY KEY,
    email TEXT,
    phone TEXT
);

-- A service provider: one application, with seed 004's numeric id.
CREATE TABLE providers (
    provider_id BIGINT PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- What a provider sends. The service token is kept as its SHA-256 only.
CREATE TABLE services (
    provider_id BIGINT NOT NULL,
    service_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    kinds TEXT NOT NULL,
    channels TEXT NOT NULL,
    rate_limit INTEGER,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider_id, service_id)
);

-- One accepted request to notify one user: its delivery state. The row is the queue: the
-- dispatcher claims due rows by setting lease_until, so work survives restarts.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    provider_id BIGINT NOT NULL,
    service_id INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    channel_used TEXT,
    sent_by TEXT,
    external_id TEXT,
    attempts INTEGER NOT NULL,
    due_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX notifications_due ON notifications (due_at) WHERE status = 'queued';
CREATE INDEX notifications_external ON notifications (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX notifications_user ON notifications (user_id);

-- What a notification says, as accepted; never changed.
CREATE TABLE contents (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    link TEXT,
    picture TEXT,
    qr_code TEXT,
    channel TEXT NOT NULL,
    urgent BOOLEAN NOT NULL,
    -- `<idempotency key>#<kind>`: a repeated key is the same request.
    reference TEXT,
    fingerprint TEXT NOT NULL,
    UNIQUE (client_id, reference)
);

-- Every try of a notification: which channel and provider, and how it went.
CREATE TABLE sends (
    id TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    provider TEXT NOT NULL,
    attempted_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT
);
CREATE INDEX sends_notification ON sends (notification_id, attempted_at);

-- A user's choices, one JSON document (time zone, quiet hours, channels, per provider).
CREATE TABLE preferences (
    user_id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Push device tokens registered by a user's apps.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    token TEXT NOT NULL UNIQUE,
    platform TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX devices_user ON devices (user_id);

-- The in-app inbox, and what the sandbox providers would have sent (labelled by `sandbox`).
CREATE TABLE inbox (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    provider_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    link TEXT,
    picture TEXT,
    qr_code TEXT,
    sandbox BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    UNIQUE (notification_id, channel)
);
CREATE INDEX inbox_user ON inbox (user_id, created_at);
