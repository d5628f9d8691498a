-- The tokens one application holds for one user, issued up to `issued_up_to` (seconds): the
-- user withdrew their consent. `grant_key` is `<client_id>:<sub>`.
CREATE TABLE revoked_grants (
    grant_key TEXT PRIMARY KEY,
    issued_up_to BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
