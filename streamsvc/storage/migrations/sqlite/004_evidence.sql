-- Study evidence, session requirements and action plans (contract v2, "Study evidence").
-- Times are integer microseconds since the Unix epoch, UTC, as in 001. Old sessions read as
-- nothing required (no reflection, no quiz, scores out of 100) and no plans owed.
ALTER TABLE sessions ADD COLUMN requires_reflection INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN requires_quiz_pass REAL;
ALTER TABLE sessions ADD COLUMN requires_quiz_max REAL NOT NULL DEFAULT 100;
-- plan_depth NULL: no unit owes a plan.
ALTER TABLE sessions ADD COLUMN plan_depth INTEGER;
ALTER TABLE sessions ADD COLUMN plan_heads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN plan_due INTEGER;

-- One row per member and session: what they handed in there (a make-up session's evidence
-- is kept under the make-up session).
CREATE TABLE evidence (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    member     TEXT NOT NULL,
    reflection INTEGER NOT NULL DEFAULT 0,
    quiz_score REAL,
    self_study INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, member)
);

CREATE TABLE action_plans (
    session_id   INTEGER NOT NULL REFERENCES sessions (id),
    unit         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    handed_in_at INTEGER NOT NULL,
    recorded_by  TEXT NOT NULL,
    note         TEXT,
    PRIMARY KEY (session_id, unit, kind)
);
