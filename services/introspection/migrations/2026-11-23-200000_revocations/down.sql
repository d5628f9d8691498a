DROP TABLE revoked_clients;
DROP TABLE revoked_tokens;
