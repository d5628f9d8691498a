-- Authorization codes (RFC 6749 §4.1) and seed 003's auth_key: single use, short-lived, stored
-- hashed. What a code issued is remembered, so a replayed code revokes it (RFC 6749 §4.1.2).
CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    code_challenge TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    issued_jti     TEXT,
    issued_family  TEXT,
    issued_exp     BIGINT
);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

-- Remembered consent: the scopes a user granted an application.
CREATE TABLE consents (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Browser sessions of the login page, by hashed cookie value.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
