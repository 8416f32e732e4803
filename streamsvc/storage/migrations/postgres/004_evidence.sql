-- Study evidence, session requirements and action plans (contract v2, "Study evidence").
-- Old sessions read as nothing required (no reflection, no quiz, scores out of 100) and no
-- plans owed.
ALTER TABLE sessions
    ADD COLUMN requires_reflection BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN requires_quiz_pass  DOUBLE PRECISION,
    ADD COLUMN requires_quiz_max   DOUBLE PRECISION NOT NULL DEFAULT 100,
    -- plan_depth NULL: no unit owes a plan.
    ADD COLUMN plan_depth          INTEGER,
    ADD COLUMN plan_heads          BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN plan_due            TIMESTAMPTZ;

-- One row per member and session: what they handed in there (a make-up session's evidence
-- is kept under the make-up session).
CREATE TABLE evidence (
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    member     TEXT COLLATE "C" NOT NULL,
    reflection BOOLEAN NOT NULL DEFAULT FALSE,
    quiz_score DOUBLE PRECISION,
    self_study BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, member)
);

CREATE TABLE action_plans (
    session_id   BIGINT NOT NULL REFERENCES sessions (id),
    unit         TEXT COLLATE "C" NOT NULL,
    kind         TEXT NOT NULL,
    handed_in_at TIMESTAMPTZ NOT NULL,
    recorded_by  TEXT NOT NULL,
    note         TEXT,
    PRIMARY KEY (session_id, unit, kind)
);
