-- A signed-in person: the cookie's secret is stored as its SHA-256; the tokens are the person's
-- at the platform (the portal is their OAuth2 client) and never leave this table.
CREATE TABLE portal_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    roles TEXT NOT NULL,
    csrf TEXT NOT NULL,
    access_token TEXT NOT NULL,
    refresh_token TEXT,
    access_expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at);

-- A sign-in on its way through auth's pages: the state's SHA-256, its PKCE verifier and the
-- page to return to.
CREATE TABLE portal_sign_ins (
    state_hash TEXT PRIMARY KEY,
    verifier TEXT NOT NULL,
    return_to TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
