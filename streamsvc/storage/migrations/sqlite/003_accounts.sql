-- Accounts, their sign-in tokens, and the audit log (contract v2, "Accounts, roles and scope").
-- Times are integer microseconds since the Unix epoch, UTC, as in 001.
CREATE TABLE users (
    login         TEXT PRIMARY KEY,
    full_name     TEXT NOT NULL,
    unit          TEXT NOT NULL,
    role          TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

-- Only a token's hash is kept; a revoked token keeps its row, so that it stays refused.
CREATE TABLE auth_tokens (
    token_hash TEXT PRIMARY KEY,
    login      TEXT NOT NULL REFERENCES users (login),
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX auth_tokens_login ON auth_tokens (login);

-- Append-only: the triggers below refuse every UPDATE and DELETE, whoever asks.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    session_id INTEGER,
    target     TEXT,
    detail     TEXT,
    address    TEXT,
    unit       TEXT
);
CREATE INDEX audit_at ON audit (at);
-- recent_failures: login_failed entries by login (target) and by address, since a time.
CREATE INDEX audit_action_target ON audit (action, target, at);
CREATE INDEX audit_action_address ON audit (action, address, at);

-- (each trigger on one line: the migrator splits statements at a semicolon ending a line)
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Voided check-ins are audit entries read from the events themselves (iter_audit).
CREATE INDEX events_voids ON events (received_at) WHERE type = 'void';
