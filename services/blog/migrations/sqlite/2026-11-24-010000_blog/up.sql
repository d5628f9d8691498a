-- Seed 002's model: integer ids, times in milliseconds since the epoch.
-- SQLite spelling: INTEGER PRIMARY KEY AUTOINCREMENT where PostgreSQL has BIGSERIAL.

-- Authors' groups (seed 002's account.group).
CREATE TABLE author_groups (
    id        BIGINT PRIMARY KEY,
    name      TEXT NOT NULL,
    parent_id BIGINT NOT NULL
);
INSERT INTO author_groups (id, name, parent_id) VALUES (1, 'membre', 1), (2, 'administrateur', 2);

-- Projection of users who write, kept from user.* events; `id` is seed 002's account id.
CREATE TABLE authors (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL UNIQUE,
    username   TEXT NOT NULL,
    group_id   BIGINT NOT NULL REFERENCES author_groups (id),
    avatar     TEXT,
    -- Time of the event that last changed the row: an older event never overwrites a newer one.
    updated_at BIGINT NOT NULL
);

-- Users whose account was deleted: their late writes and user.* events are refused, so that
-- nothing of theirs comes back.
CREATE TABLE deleted_authors (
    user_id    TEXT PRIMARY KEY,
    deleted_at BIGINT NOT NULL
);

CREATE TABLE locales (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO locales (name) VALUES ('fr'), ('en');

CREATE TABLE categories (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO categories (name) VALUES ('general');

CREATE TABLE articles (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       BIGINT NOT NULL REFERENCES authors (id),
    locales_id       BIGINT NOT NULL REFERENCES locales (id),
    blog_category_id BIGINT NOT NULL REFERENCES categories (id),
    title            TEXT NOT NULL,
    content          TEXT NOT NULL,
    create_timestamp BIGINT NOT NULL,
    modify_timestamp BIGINT NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1,
    -- Title and content lower-cased by the service (Unicode), searched with LIKE: the same
    -- search finds the same articles on PostgreSQL and SQLite, whatever the database locale.
    search_text      TEXT NOT NULL DEFAULT ''
);
-- GET /blog: newest first, whole or filtered by one of these.
CREATE INDEX articles_newest ON articles (create_timestamp DESC, id DESC);
CREATE INDEX articles_by_category ON articles (blog_category_id, create_timestamp DESC, id DESC);
CREATE INDEX articles_by_locale ON articles (locales_id, create_timestamp DESC, id DESC);
CREATE INDEX articles_by_author ON articles (account_id, create_timestamp DESC, id DESC);

CREATE TABLE comments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id       BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    account_id       BIGINT NOT NULL REFERENCES authors (id),
    content          TEXT NOT NULL,
    create_timestamp BIGINT NOT NULL,
    modify_timestamp BIGINT NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX comments_by_article ON comments (article_id, id);
CREATE INDEX comments_by_author ON comments (account_id);
