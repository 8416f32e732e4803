-- Times are integer microseconds since the Unix epoch, UTC.
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE units (
    code   TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    parent TEXT
);
CREATE INDEX units_parent ON units (parent);

CREATE TABLE members (
    code      TEXT PRIMARY KEY,
    full_name TEXT NOT NULL,
    unit      TEXT NOT NULL,
    search    TEXT NOT NULL
);
CREATE INDEX members_unit ON members (unit, code);

CREATE TABLE sessions (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    title              TEXT NOT NULL,
    starts_at          INTEGER NOT NULL,
    ends_at            INTEGER NOT NULL,
    audience           TEXT NOT NULL,
    late_after_minutes INTEGER NOT NULL,
    makeup_for         INTEGER REFERENCES sessions (id),
    state              TEXT NOT NULL DEFAULT 'open',
    closed_at          INTEGER,
    frozen             INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL
);
CREATE INDEX sessions_makeup_for ON sessions (makeup_for);

-- The expected members of a session, once frozen (at close, or at creation of a make-up
-- session whose audience is the members excused at the session it makes up).
CREATE TABLE session_members (
    session_id INTEGER NOT NULL,
    member     TEXT NOT NULL,
    PRIMARY KEY (session_id, member)
) WITHOUT ROWID;

CREATE TABLE sites (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    unit       TEXT,
    capacity   INTEGER,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX sites_session ON sites (session_id);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    session_id  INTEGER NOT NULL,
    site_id     INTEGER NOT NULL,
    type        TEXT NOT NULL,
    member      TEXT,
    ts          INTEGER,
    received_at INTEGER NOT NULL,
    count       INTEGER,
    target      TEXT,
    voided      INTEGER NOT NULL DEFAULT 0,
    late_upload INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_session_member ON events (session_id, member, ts);

CREATE TABLE excuses (
    session_id INTEGER NOT NULL,
    member     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, member)
) WITHOUT ROWID;
