CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE units (
    code   TEXT COLLATE "C" PRIMARY KEY,
    name   TEXT NOT NULL,
    parent TEXT COLLATE "C"
);
CREATE INDEX units_parent ON units (parent);

CREATE TABLE members (
    code      TEXT COLLATE "C" PRIMARY KEY,
    full_name TEXT NOT NULL,
    unit      TEXT COLLATE "C" NOT NULL,
    search    TEXT NOT NULL
);
CREATE INDEX members_unit ON members (unit, code);

CREATE TABLE sessions (
    id                 BIGSERIAL PRIMARY KEY,
    title              TEXT NOT NULL,
    starts_at          TIMESTAMPTZ NOT NULL,
    ends_at            TIMESTAMPTZ NOT NULL,
    audience           TEXT NOT NULL,
    late_after_minutes INTEGER NOT NULL,
    makeup_for         BIGINT REFERENCES sessions (id),
    state              TEXT NOT NULL DEFAULT 'open',
    closed_at          TIMESTAMPTZ,
    frozen             BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sessions_makeup_for ON sessions (makeup_for);

CREATE TABLE session_members (
    session_id BIGINT NOT NULL,
    member     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (session_id, member)
);

CREATE TABLE sites (
    id         BIGSERIAL PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    unit       TEXT COLLATE "C",
    capacity   INTEGER,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sites_session ON sites (session_id);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    session_id  BIGINT NOT NULL,
    site_id     BIGINT NOT NULL,
    type        TEXT NOT NULL,
    member      TEXT COLLATE "C",
    ts          TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL,
    count       INTEGER,
    target      TEXT,
    voided      BOOLEAN NOT NULL DEFAULT FALSE,
    late_upload BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX events_session_member ON events (session_id, member, ts);

CREATE TABLE excuses (
    session_id BIGINT NOT NULL,
    member     TEXT COLLATE "C" NOT NULL,
    reason     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, member)
);
