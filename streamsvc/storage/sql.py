"""The SQL both stores run, written once where the two dialects agree.

Texts use SQLite's `?` placeholders; `numbered()` turns them into asyncpg's `$1, $2, …`.
Which check-ins count is asked of the view `counted_checkins` (migration 002); who is
expected at a session, of the one fragment `EXPECTED` (why not a view: see there).
Where the dialects differ (inserting many rows, `IN` lists against `= ANY(array)`), each
store keeps its own text.
"""

from __future__ import annotations

import re

__all__ = [
    "ADD_EXCUSE",
    "CHECKED_IN",
    "EVENTS_BY_ARRIVAL",
    "EVENTS_BY_MEMBER",
    "EVENT_COLS",
    "EXCUSES",
    "EXPECTED",
    "EXPECTED_COUNT",
    "EXPECTED_MEMBERS",
    "FACT_MEMBERS",
    "FACT_SESSIONS",
    "FACT_STORED",
    "FACT_TARGETS",
    "FREEZE_EXCUSED",
    "FREEZE_EXPECTED",
    "GET_SETTING",
    "IS_EXPECTED",
    "LIST_SESSIONS",
    "LIST_SITES",
    "LIST_UNITS",
    "MADE_UP",
    "MEMBER_COLS",
    "POSTGRES_AUDIENCE",
    "SESSION_BY_ID",
    "SESSION_COLS",
    "SESSION_EVENTS",
    "SESSION_STATE",
    "SET_SETTING",
    "SITE_BY_TOKEN_HASH",
    "SITE_COLS",
    "SITE_NAMES",
    "SQLITE_AUDIENCE",
    "UNEXPECTED_MEMBERS",
    "UNIT_SUBTREE",
    "numbered",
]

SESSION_COLS = (
    "id, title, starts_at, ends_at, audience, late_after_minutes, makeup_for, state, closed_at"
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

SESSION_BY_ID = f"SELECT {SESSION_COLS} FROM sessions WHERE id = ?"
LIST_SESSIONS = f"SELECT {SESSION_COLS} FROM sessions ORDER BY id"
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
EXPECTED = (
    "SELECT member FROM session_members WHERE session_id = ? "
    "UNION ALL "
    "SELECT m.code FROM members m WHERE m.unit IN ("
    "WITH RECURSIVE sub (code) AS ("
    "SELECT u.code FROM sessions s CROSS JOIN {audience} JOIN units u ON u.code = a.value "
    "WHERE s.id = ? AND NOT s.frozen "
    "UNION SELECT u.code FROM units u JOIN sub ON u.parent = sub.code"
    ") SELECT code FROM sub)"
)
EXPECTED_COUNT = f"SELECT count(*) FROM ({EXPECTED}) e"
IS_EXPECTED = f"SELECT 1 FROM ({EXPECTED}) e WHERE e.member = ?"
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
UNEXPECTED_MEMBERS = (
    f"SELECT {MEMBER_COLS} FROM members "
    "WHERE code IN (SELECT member FROM counted_checkins WHERE session_id = ?) "
    f"AND code NOT IN ({EXPECTED})"
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

_PLACEHOLDER = re.compile(r"\?")


def numbered(sql: str) -> str:
    """`?` placeholders, in order, as `$1, $2, …` (none of the texts has a literal `?`)."""
    count = iter(range(1, sql.count("?") + 1))
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)
