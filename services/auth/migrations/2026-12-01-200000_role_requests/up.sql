-- A person asking for a role (seed 000: only registration platforms create applications); an
-- administrator approves or refuses it.
CREATE TABLE role_requests (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT
);
CREATE INDEX role_requests_status ON role_requests (status, created_at);
CREATE INDEX role_requests_user ON role_requests (user_id, created_at);
