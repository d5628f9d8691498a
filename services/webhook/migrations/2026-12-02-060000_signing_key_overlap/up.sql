-- A new key pair does not silence the one before at once: the previous pair keeps signing beside
-- it until previous_until, so receivers can move to the new public key.
ALTER TABLE signing_keys ADD COLUMN previous_secret_key TEXT;
ALTER TABLE signing_keys ADD COLUMN previous_public_key TEXT;
ALTER TABLE signing_keys ADD COLUMN previous_until BIGINT;
