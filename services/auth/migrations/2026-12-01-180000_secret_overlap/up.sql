-- The secret a rotation replaced, accepted until previous_secret_expires_at (ms) so an
-- application's instances can switch over without downtime.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;
-- The platform's own clients (the developer portal): consent is implied, nothing is recorded.
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
