-- An endpoint's Ed25519 key pair, for Standard Webhooks' `v1a` signatures beside `v1`: the
-- receiver verifies with the public key alone.
CREATE TABLE signing_keys (
    endpoint_id TEXT PRIMARY KEY,
    secret_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
