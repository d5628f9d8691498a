-- Revocations this service learnt from `token.revoked` events, until the tokens expire.
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Applications whose every token issued up to `issued_up_to` (seconds) is revoked.
CREATE TABLE revoked_clients (
    client_id TEXT PRIMARY KEY,
    issued_up_to BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
