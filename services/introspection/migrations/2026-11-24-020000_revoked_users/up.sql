-- Users whose every token issued up to `issued_up_to` (seconds) is revoked: a deleted account.
CREATE TABLE revoked_users (
    sub TEXT PRIMARY KEY,
    issued_up_to BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
