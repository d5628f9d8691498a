ALTER TABLE signing_keys DROP COLUMN previous_until;
ALTER TABLE signing_keys DROP COLUMN previous_public_key;
ALTER TABLE signing_keys DROP COLUMN previous_secret_key;
