-- Accounts, their sign-in tokens, and the audit log (contract v2, "Accounts, roles and scope").
CREATE TABLE users (
    login         TEXT COLLATE "C" PRIMARY KEY,
    full_name     TEXT NOT NULL,
    unit          TEXT COLLATE "C" NOT NULL,
    role          TEXT NOT NULL,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Only a token's hash is kept; a revoked token keeps its row, so that it stays refused.
CREATE TABLE auth_tokens (
    token_hash TEXT PRIMARY KEY,
    login      TEXT COLLATE "C" NOT NULL REFERENCES users (login),
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX auth_tokens_login ON auth_tokens (login);

-- Append-only: the triggers below refuse every UPDATE, DELETE and TRUNCATE, whoever asks.
CREATE TABLE audit (
    id         BIGSERIAL PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    session_id BIGINT,
    target     TEXT,
    detail     TEXT,
    address    TEXT,
    unit       TEXT COLLATE "C"
);
CREATE INDEX audit_at ON audit (at);
-- recent_failures: login_failed entries by login (target) and by address, since a time.
CREATE INDEX audit_action_target ON audit (action, target, at);
CREATE INDEX audit_action_address ON audit (action, address, at);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Voided check-ins are audit entries read from the events themselves (iter_audit).
CREATE INDEX events_voids ON events (received_at) WHERE type = 'void';
