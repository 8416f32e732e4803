"""The SQL both stores run, written once where the two dialects agree.

Texts use SQLite's `?` placeholders; `numbered()` turns them into asyncpg's `$1, $2, …`.
Which check-ins count is asked of the view `counted_checkins` (migration 002); who is
expected at a session, of the one fragment `EXPECTED` (why not a view: see there).
Where the dialects differ (inserting many rows, `IN` lists against `= ANY(array)`), each
store keeps its own text.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "ACTION_PLAN_COLS",
    "ADD_AUTH_TOKEN",
    "ADD_EXCUSE",
    "AUDIENCE_UNITS",
    "AUDIT_COLS",
    "AUTH_TOKEN",
    "BUMP_VERSION",
    "CHECKED_IN",
    "CREATE_USER",
    "DELETE_EXCUSE",
    "DELETE_PLAN",
    "EVENTS_BY_ARRIVAL",
    "EVENTS_BY_MEMBER",
    "EVENT_COLS",
    "EVIDENCE_COLS",
    "EVIDENCE_EXISTING",
    "EXCUSES",
    "EXPECTED",
    "EXPECTED_AMONG",
    "EXPECTED_COUNT",
    "EXPECTED_IN_UNITS",
    "EXPECTED_MEMBERS",
    "EXPECTED_WITHIN",
    "FACT_MEMBERS",
    "FACT_SESSIONS",
    "FACT_STORED",
    "FACT_TARGETS",
    "FREEZE_EXCUSED",
    "FREEZE_EXPECTED",
    "GET_SETTING",
    "GET_SITE",
    "GET_USER",
    "INSERT_AUDIT",
    "IS_EXPECTED",
    "LIST_EVIDENCE",
    "LIST_EVIDENCE_OF",
    "LIST_PLANS",
    "LIST_SESSIONS",
    "LIST_SITES",
    "LIST_UNITS",
    "LIST_USERS",
    "MADE_UP",
    "MAKEUP_EVIDENCE",
    "MEMBER_COLS",
    "POSTGRES_AUDIENCE",
    "POSTGRES_CODES",
    "RECENT_FAILURES_BY_ADDRESS",
    "RECENT_FAILURES_BY_LOGIN",
    "RESET_SITE_TOKEN",
    "REVOKE_AUTH_TOKEN",
    "REVOKE_USER_TOKENS",
    "SAVE_PLAN",
    "SAVE_USER",
    "SESSION_BY_ID",
    "SESSION_COLS",
    "SESSION_EVENTS",
    "SESSION_RULE_COLS",
    "SESSION_STATE",
    "SET_SETTING",
    "SITE_BY_TOKEN_HASH",
    "SITE_COLS",
    "SITE_NAMES",
    "SITE_TOKEN_HASH",
    "SQLITE_AUDIENCE",
    "SQLITE_CODES",
    "UNEXPECTED_MEMBERS",
    "UNIT_SUBTREE",
    "UPDATE_SESSION_RULES",
    "UPSERT_EVIDENCE",
    "USER_COLS",
    "audit_query",
    "numbered",
]

#: What completing a session needs and which units owe a plan (migration 004), in the order
#: `common.session_rule_values` gives them.
SESSION_RULE_COLS = (
    "requires_reflection, requires_quiz_pass, requires_quiz_max, plan_depth, plan_heads, plan_due"
)
SESSION_COLS = (
    "id, title, starts_at, ends_at, audience, late_after_minutes, makeup_for, state, closed_at, "
    + SESSION_RULE_COLS
)
SITE_COLS = "id, session_id, name, kind, unit, capacity"
EVENT_COLS = (
    "id, session_id, site_id, type, ts, received_at, member, count, target, voided, late_upload"
)
MEMBER_COLS = "code, full_name, unit"

GET_SETTING = "SELECT value FROM settings WHERE key = ?"
SET_SETTING = (
    "INSERT INTO settings (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
LIST_UNITS = "SELECT code, name, parent FROM units ORDER BY code"
#: A unit and every unit below it, as `sub(code)`: the prefix of a roster search by unit.
UNIT_SUBTREE = (
    "WITH RECURSIVE sub (code) AS (SELECT code FROM units WHERE code = ? "
    "UNION SELECT u.code FROM units u JOIN sub ON u.parent = sub.code)"
)

#: A session's columns, then what its `expected` count depends on (`ExpectedCounts`): whether
#: its list is frozen, and the roster's version (read before the count, never after it).
_STAMP_COLS = "frozen, (SELECT value FROM settings WHERE key = 'roster_version')"
SESSION_BY_ID = f"SELECT {SESSION_COLS}, {_STAMP_COLS} FROM sessions WHERE id = ?"
LIST_SESSIONS = f"SELECT {SESSION_COLS}, {_STAMP_COLS} FROM sessions ORDER BY id"
#: `frozen`: whether session_members already holds the session's expected members.
SESSION_STATE = "SELECT state, frozen FROM sessions WHERE id = ?"

#: The JSON array of audience unit codes as rows `a.value`, in each dialect.
SQLITE_AUDIENCE = "json_each(s.audience) a"
POSTGRES_AUDIENCE = "json_array_elements_text(s.audience::json) a (value)"

#: The one home of "who is expected at a session" (two `?`: the session id twice): the
#: frozen list once it is written (at the close, or when a make-up session takes the
#: members excused at the one it makes up), else every member whose unit is in the subtree
#: of an audience unit. Not a view: a recursive view cannot be narrowed to one session
#: before it recurses, so every read walked every open session's audience first (measured
#: on PostgreSQL, 50,000 members: get_session 17 -> 375 ms, list_unexpected_members
#: 0.16 -> 38 s); this fragment is narrowed to the session inside the recursion.
#: `{audience}` is SQLITE_AUDIENCE or POSTGRES_AUDIENCE.
#: The units of an open session's audience subtrees (one `?`: the session id); none once the
#: session's list is frozen.
AUDIENCE_UNITS = (
    "WITH RECURSIVE sub (code) AS ("
    "SELECT u.code FROM sessions s CROSS JOIN {audience} JOIN units u ON u.code = a.value "
    "WHERE s.id = ? AND NOT s.frozen "
    "UNION SELECT u.code FROM units u JOIN sub ON u.parent = sub.code"
    ") SELECT code FROM sub"
)
EXPECTED = (
    "SELECT member FROM session_members WHERE session_id = ? "
    "UNION ALL "
    f"SELECT m.code FROM members m WHERE m.unit IN ({AUDIENCE_UNITS})"
)
EXPECTED_COUNT = f"SELECT count(*) FROM ({EXPECTED}) e"
IS_EXPECTED = f"SELECT 1 FROM ({EXPECTED}) e WHERE e.member = ?"
#: How many of the session's expected members have a unit in the subtree of a unit (three
#: `?`: the unit, then the session id twice): `expected` as a scoped caller sees it. The
#: `sub` of UNIT_SUBTREE is the scope; EXPECTED's own `sub`, inside its subquery, shadows it
#: there and stays narrowed to the session.
EXPECTED_WITHIN = (
    f"{UNIT_SUBTREE} SELECT count(*) FROM ({EXPECTED}) e "
    "JOIN members m ON m.code = e.member WHERE m.unit IN (SELECT code FROM sub)"
)
EXPECTED_MEMBERS = f"SELECT {MEMBER_COLS} FROM members WHERE code IN ({EXPECTED}) ORDER BY code"
#: Freeze who was expected at the close, so later roster changes do not rewrite history.
FREEZE_EXPECTED = (
    f"INSERT INTO session_members (session_id, member) SELECT ?, e.member FROM ({EXPECTED}) e"
)
#: A make-up session without an audience expects the members excused at the one it makes up.
FREEZE_EXCUSED = (
    "INSERT INTO session_members (session_id, member) SELECT ?, member FROM excuses "
    "WHERE session_id = ?"
)
#: An anti-join, not `code NOT IN (EXPECTED)`: PostgreSQL cannot hash a NOT IN list larger
#: than work_mem, and scanned the 2,000,000 expected members once per member checked in
#: (the national day's reconcile ran past its 60 s statement limit). Three `?`, all the
#: session id.
UNEXPECTED_MEMBERS = (
    f"SELECT {', '.join(f'm.{c}' for c in MEMBER_COLS.split(', '))} FROM members m "
    f"LEFT JOIN ({EXPECTED}) e ON e.member = m.code "
    "WHERE m.code IN (SELECT member FROM counted_checkins WHERE session_id = ?) "
    "AND e.member IS NULL"
)
MADE_UP = (
    "SELECT DISTINCT c.member FROM sessions s JOIN counted_checkins c ON c.session_id = s.id "
    "WHERE s.makeup_for = ? AND c.member IS NOT NULL"
)
CHECKED_IN = "SELECT 1 FROM counted_checkins WHERE session_id = ? AND member = ? LIMIT 1"
ADD_EXCUSE = (
    "INSERT INTO excuses (session_id, member, reason, created_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (session_id, member) DO UPDATE SET reason = excluded.reason"
)
EXCUSES = "SELECT member, reason FROM excuses WHERE session_id = ?"

LIST_SITES = f"SELECT {SITE_COLS} FROM sites WHERE session_id = ? ORDER BY id"
SITE_BY_TOKEN_HASH = f"SELECT {SITE_COLS} FROM sites WHERE token_hash = ?"

#: The session's events in arrival order, or by member (`{order}` is one of the two).
SESSION_EVENTS = f"SELECT {EVENT_COLS} FROM events WHERE session_id = ? ORDER BY {{order}}"
EVENTS_BY_ARRIVAL = "received_at, id"
EVENTS_BY_MEMBER = "member, ts, id"

# The facts a group of check-ins is decided on. `{ids}`, `{codes}`: a condition on a list,
# `IN (?, …)` in SQLite and `= ANY(…)` in PostgreSQL. Each member's earliest check-in is
# read differently by each store (SQLite's `min()` picks the row, PostgreSQL a LATERAL).
FACT_STORED = "SELECT id FROM events WHERE id {ids}"
FACT_SESSIONS = f"SELECT {SESSION_COLS} FROM sessions WHERE id {{ids}}"
FACT_MEMBERS = (
    "SELECT m.code, m.full_name, m.unit, u.name FROM members m "
    "JOIN units u ON u.code = m.unit WHERE m.code {codes}"
)
FACT_TARGETS = "SELECT id, session_id, site_id, type, member, voided FROM events WHERE id {ids}"
SITE_NAMES = "SELECT id, name FROM sites WHERE id {ids}"

GET_SITE = f"SELECT {SITE_COLS} FROM sites WHERE id = ?"
SITE_TOKEN_HASH = "SELECT token_hash FROM sites WHERE id = ?"
RESET_SITE_TOKEN = "UPDATE sites SET token_hash = ? WHERE id = ?"
DELETE_EXCUSE = "DELETE FROM excuses WHERE session_id = ? AND member = ? RETURNING member"
#: The new value of a version setting from the old (a count as text); `{next}` is the
#: dialect's "old value plus one", computed in the upsert so that two writers cannot both
#: read one. `units_version` moves with every unit import (the cached unit tree),
#: `roster_version` with every unit or member import (the cached `expected` counts).
BUMP_VERSION = (
    "INSERT INTO settings (key, value) VALUES ('{key}', '1') "
    "ON CONFLICT (key) DO UPDATE SET value = {next}"
)

# -- users, their sign-in tokens, the audit log ----------------------------------------------
USER_COLS = "login, full_name, unit, role, active, password_hash"
GET_USER = f"SELECT {USER_COLS} FROM users WHERE login = ?"
LIST_USERS = f"SELECT {USER_COLS} FROM users ORDER BY login"
CREATE_USER = (
    f"INSERT INTO users ({USER_COLS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (login) DO NOTHING RETURNING login"
)
SAVE_USER = (
    "UPDATE users SET full_name = ?, unit = ?, role = ?, active = ?, password_hash = ? "
    "WHERE login = ? RETURNING login"
)
REVOKE_USER_TOKENS = (
    "UPDATE auth_tokens SET revoked_at = ? WHERE login = ? AND revoked_at IS NULL "
    "RETURNING token_hash"
)
ADD_AUTH_TOKEN = (
    "INSERT INTO auth_tokens (token_hash, login, issued_at, expires_at) VALUES (?, ?, ?, ?)"
)
#: A token's user (`USER_COLS`), then its expires_at and revoked_at.
AUTH_TOKEN = (
    "SELECT u.login, u.full_name, u.unit, u.role, u.active, u.password_hash, "
    "t.expires_at, t.revoked_at FROM auth_tokens t JOIN users u ON u.login = t.login "
    "WHERE t.token_hash = ?"
)
REVOKE_AUTH_TOKEN = (
    "UPDATE auth_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL "
    "RETURNING token_hash"
)

AUDIT_COLS = "at, actor, action, session_id, target, detail, address, unit"
INSERT_AUDIT = f"INSERT INTO audit ({AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
RECENT_FAILURES_BY_LOGIN = (
    "SELECT at FROM audit WHERE action = 'login_failed' AND target = ? AND at >= ? ORDER BY at"
)
RECENT_FAILURES_BY_ADDRESS = (
    "SELECT at FROM audit WHERE action = 'login_failed' AND address = ? AND at >= ? ORDER BY at"
)
#: The audit entries kept in `audit`, in `AUDIT_COLS` order and then two sort keys.
_AUDIT_STORED = f"SELECT {AUDIT_COLS}, id AS seq, '' AS event FROM audit"
#: A voided check-in as an entry, read from the void event itself: the site voided it, the
#: target is the member of the check-in voided (null if that event is not stored), the unit
#: is the site's. Rides on the partial index events_voids.
_AUDIT_VOIDS = (
    "SELECT v.received_at AS at, 'site:' || v.site_id AS actor, 'checkin_voided' AS action, "
    "v.session_id, t.member AS target, 'event ' || v.target AS detail, NULL AS address, "
    "s.unit AS unit, 0 AS seq, v.id AS event "
    "FROM events v LEFT JOIN events t ON t.id = v.target LEFT JOIN sites s ON s.id = v.site_id "
    "WHERE v.type = 'void'"
)
_SITE_ACTOR = re.compile(r"site:([0-9]{1,18})")


def audit_query(
    start: Any,
    end: Any,
    *,
    session_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> tuple[str, list[Any]]:
    """The audit log, newest first by (at, id), with `?` placeholders and their values:
    stored entries and voided check-ins in one UNION ALL, each side narrowed by the same
    filters (`start` and `end` already in the backend's time type; None: unbounded)."""

    def narrowed(base: str, at: str, extra: list[tuple[str, Any]]) -> tuple[str, list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        for cond, value in [
            (f"{at} >= ?", start),
            (f"{at} < ?", end),
            *extra,
        ]:
            if value is not None:
                where.append(cond)
                args.append(value)
        if not where:
            return base, args
        joiner = " AND " if " WHERE " in base else " WHERE "
        return base + joiner + " AND ".join(where), args

    stored, args = narrowed(
        _AUDIT_STORED,
        "at",
        [("session_id = ?", session_id), ("actor = ?", actor), ("action = ?", action)],
    )
    parts = [stored]
    site = _SITE_ACTOR.fullmatch(actor) if actor is not None else None
    if (action is None or action == "checkin_voided") and (actor is None or site):
        voids, void_args = narrowed(
            _AUDIT_VOIDS,
            "v.received_at",
            [
                ("v.session_id = ?", session_id),
                ("v.site_id = ?", int(site.group(1)) if site else None),
            ],
        )
        parts.append(voids)
        args += void_args
    query = " UNION ALL ".join(f"SELECT * FROM ({p}) s{i}" for i, p in enumerate(parts))
    return f"{query} ORDER BY at DESC, seq DESC, event DESC", args


# -- study evidence, session rules, action plans (migration 004) ----------------------------
UPDATE_SESSION_RULES = (
    "UPDATE sessions SET requires_reflection = ?, requires_quiz_pass = ?, "
    "requires_quiz_max = ?, plan_depth = ?, plan_heads = ?, plan_due = ? WHERE id = ? "
    "RETURNING id"
)
#: A list of codes handed over as one JSON text, as rows `c.value` (`{codes}` in the texts
#: below): one parameter however long the list, so 100,000 codes need no chunks and SQLite's
#: variable limit never bites.
SQLITE_CODES = "json_each(?) c"
POSTGRES_CODES = "json_array_elements_text(?::json) c (value)"
#: Which of the codes are expected at the session (`{codes}` first, then the session id
#: twice): EXPECTED is read once and each code looked up in it.
EXPECTED_AMONG = f"SELECT c.value FROM {{codes}} WHERE c.value IN ({EXPECTED})"
#: The session's expected members whose unit is one of `{codes}` (a site's subtree), by code
#: (`{codes}` first, then the session id twice): EXPECTED narrowed to those units before it
#: is read, so a commune's check-in page reads its few hundred members through the members'
#: unit index, not the national session's 2,000,000.
EXPECTED_IN_UNITS = (
    f"SELECT m.code, m.full_name, m.unit FROM members m WHERE m.unit IN "
    "(SELECT c.value FROM {codes}) AND (EXISTS (SELECT 1 FROM session_members sm "
    "WHERE sm.session_id = ? AND sm.member = m.code) "
    f"OR m.unit IN ({AUDIENCE_UNITS})) ORDER BY m.code"
)

EVIDENCE_COLS = "session_id, member, reflection, quiz_score, self_study, updated_at"
LIST_EVIDENCE = f"SELECT {EVIDENCE_COLS} FROM evidence WHERE session_id = ?"
#: The evidence of some members (`{codes}` first, then the session id): each code looked up
#: on the primary key. `member IN (…)` made PostgreSQL hash the whole list first (0.55-1.1 s
#: -> 0.25 s for 100,000 members); CROSS JOIN keeps the codes the outer loop in SQLite, which
#: otherwise scanned the whole list once per row of the session (a plain JOIN: 510 s).
LIST_EVIDENCE_OF = (
    "SELECT "
    + ", ".join(f"e.{c}" for c in EVIDENCE_COLS.split(", "))
    + " FROM {codes} CROSS JOIN evidence e WHERE e.session_id = ? AND e.member = c.value"
)
EVIDENCE_EXISTING = (
    "SELECT member FROM evidence WHERE session_id = ? AND member IN (SELECT c.value FROM {codes})"
)
UPSERT_EVIDENCE = (
    f"INSERT INTO evidence ({EVIDENCE_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (session_id, member) DO UPDATE SET reflection = excluded.reflection, "
    "quiz_score = excluded.quiz_score, self_study = excluded.self_study, "
    "updated_at = excluded.updated_at"
)
#: Evidence handed in at the make-up sessions of a session: per member the most recently
#: updated row (ties: the later make-up session).
MAKEUP_EVIDENCE = (
    f"SELECT {EVIDENCE_COLS} FROM (SELECT e.*, row_number() OVER (PARTITION BY e.member "
    "ORDER BY e.updated_at DESC, e.session_id DESC) AS n FROM evidence e "
    "JOIN sessions s ON s.id = e.session_id WHERE s.makeup_for = ?) r WHERE n = 1"
)

ACTION_PLAN_COLS = "session_id, unit, kind, handed_in_at, recorded_by, note"
SAVE_PLAN = (
    f"INSERT INTO action_plans ({ACTION_PLAN_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (session_id, unit, kind) DO UPDATE SET handed_in_at = excluded.handed_in_at, "
    "recorded_by = excluded.recorded_by, note = excluded.note"
)
DELETE_PLAN = (
    "DELETE FROM action_plans WHERE session_id = ? AND unit = ? AND kind = ? RETURNING unit"
)
LIST_PLANS = f"SELECT {ACTION_PLAN_COLS} FROM action_plans WHERE session_id = ? ORDER BY unit, kind"

_PLACEHOLDER = re.compile(r"\?")


def numbered(sql: str) -> str:
    """`?` placeholders, in order, as `$1, $2, …` (none of the texts has a literal `?`)."""
    count = iter(range(1, sql.count("?") + 1))
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)
