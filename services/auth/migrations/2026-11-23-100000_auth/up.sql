-- Times are milliseconds since the epoch and ids are text, alike in PostgreSQL and SQLite.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    -- Space-separated roles: admin, registration_platform.
    roles         TEXT NOT NULL,
    group_id      INTEGER NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE clients (
    id             TEXT PRIMARY KEY,
    -- SHA-256 of the generated secret; NULL for public clients.
    secret_hash    TEXT,
    name           TEXT NOT NULL,
    owner_id       TEXT NOT NULL,
    -- Newline-separated, matched exactly.
    redirect_uris  TEXT NOT NULL,
    grant_types    TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    secret_rotated_at BIGINT NOT NULL
);
CREATE INDEX clients_owner ON clients (owner_id);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    -- Set when a newer key takes over signing; verifies until the last token it signed expires.
    retired_at  BIGINT
);

-- Opaque refresh tokens, stored hashed. A family is every token rotated from one grant:
-- presenting a used one revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Access tokens revoked before they expire; kept until they would have expired.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
