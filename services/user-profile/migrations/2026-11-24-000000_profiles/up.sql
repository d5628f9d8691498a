-- One profile per user, created from auth's user.registered. Times are milliseconds since the
-- epoch; text fields are NULL until the user sets them.
CREATE TABLE profiles (
    user_id       TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    first_name    TEXT,
    last_name     TEXT,
    gender        TEXT,
    -- ISO 8601 calendar date, YYYY-MM-DD.
    birth_date    TEXT,
    picture       TEXT,
    cover         TEXT,
    relationship  TEXT,
    biography     TEXT,
    website       TEXT,
    -- ISO 3166-1 alpha-2.
    nationality   TEXT,
    -- Space-separated codes of GET /sports.
    sports        TEXT NOT NULL DEFAULT '',
    verified      BOOLEAN NOT NULL DEFAULT FALSE,
    registered_at BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    -- Bumped by every change: the ETag.
    version       BIGINT NOT NULL DEFAULT 1
);
