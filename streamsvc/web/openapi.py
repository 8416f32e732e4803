"""The OpenAPI 3.1 description of every HTTP route the service answers to, and the API page.

Built in Python rather than kept as a JSON file so that the shapes repeated across operations
(the error body, a session, LIVE) are written once. `tests/web/test_openapi.py` compares the
document with the app's router, so a route added without its description fails the suite;
schemathesis (`tests/e2e/test_schemathesis.py`) checks every answer against it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from aiohttp import web

import streamsvc
from streamsvc.web.pages import render

__all__ = ["PAGE_PATH", "SPEC_PATH", "openapi_document", "routes"]

SPEC_PATH = "/api/v1/openapi.json"
PAGE_PATH = "/api"

routes = web.RouteTableDef()

Schema = dict[str, Any]

ERROR_CODES = (
    "bad_request",
    "bad_json",
    "bad_csv",
    "invalid",
    "import_rejected",
    "unauthorized",
    "forbidden",
    "bad_credentials",
    "not_found",
    "unknown_session",
    "unknown_unit",
    "unknown_member",
    "unknown_site",
    "unknown_excuse",
    "unknown_plan",
    "unknown_user",
    "method_not_allowed",
    "conflict",
    "session_closed",
    "already_present",
    "not_expected",
    "login_taken",
    "payload_too_large",
    "too_many_attempts",
    "unavailable",
    "busy",
)
ROLES = ["admin", "organizer", "viewer"]
#: What the audit log records (`action`); the stores write them, nothing changes them.
AUDIT_ACTIONS = [
    "login",
    "login_failed",
    "logout",
    "user_created",
    "user_changed",
    "roster_imported",
    "session_created",
    "session_closed",
    "site_created",
    "site_token_reset",
    "excuse_recorded",
    "excuse_withdrawn",
    "evidence_recorded",
    "plan_recorded",
    "plan_withdrawn",
    "checkin_voided",
    "session_changed",
]
SITE_KINDS = ["hall", "bridge", "broadcast", "self_study"]
STATUSES = ["present", "late", "excused", "made_up", "absent"]
REASONS = ["unknown_member", "invalid", "session_closed", "ts_out_of_window", "unknown_target"]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these required and optional properties; more may be added later."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def _list_of(key: str, item: Schema) -> Schema:
    return _obj({key: {"type": "array", "items": item}})


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
COUNT: Schema = {"type": "integer", "minimum": 0}
TIME: Schema = {"type": "string", "format": "date-time"}
NULL_STR: Schema = {"type": ["string", "null"]}
NULL_INT: Schema = {"type": ["integer", "null"]}
NULL_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
#: One site of LIVE, and of a page of `/live/sites`.
LIVE_SITE: Schema = _obj(
    {
        "id": INT,
        "name": STR,
        "kind": STR,
        "present": COUNT,
        "guests": COUNT,
        "connected": {"type": "boolean"},
        "last_event_at": NULL_TIME,
    },
    {"unit": NULL_STR, "capacity": NULL_INT},
)

SCHEMAS: dict[str, Schema] = {
    "Error": _obj(
        {
            "error": _obj(
                {
                    "code": {
                        "type": "string",
                        "pattern": "^[a-z][a-z0-9_]*$",
                        "examples": list(ERROR_CODES),
                    },
                    "message": STR,
                    "details": {"description": "what was wrong: a field, or every bad row"},
                }
            )
        }
    ),
    "Health": _obj(
        {
            "status": {"type": "string", "enum": ["ok", "failing"]},
            "database": {"type": "string", "description": "`ok` or `failing: <reason>`"},
            "redis": {"type": "string", "description": "`ok`, `disabled` or `failing: <reason>`"},
        }
    ),
    "NewUnit": _obj({"code": STR, "name": STR}, {"parent": NULL_STR}),
    "Unit": _obj({"code": STR, "name": STR, "parent": NULL_STR}),
    "NewMember": _obj({"code": STR, "full_name": STR, "unit": STR}),
    "Member": _obj({"code": STR, "full_name": STR, "unit": STR}),
    "ImportResult": _obj({"created": COUNT, "updated": COUNT}),
    "NewSession": _obj(
        {"title": {"type": "string", "maxLength": 300}, "starts_at": TIME, "ends_at": TIME},
        {
            "audience": {"type": "array", "items": STR, "description": "unit codes"},
            "late_after_minutes": {"type": "integer", "minimum": 0, "maximum": 1440, "default": 15},
            "makeup_for": {"type": ["integer", "null"], "minimum": 1},
            "requires": {"oneOf": [_ref("NewRequirements"), {"type": "null"}]},
            "plans": {"oneOf": [_ref("NewPlanRule"), {"type": "null"}]},
        },
    ),
    "NewRequirements": _obj(
        {},
        {
            "reflection": {"type": "boolean", "default": False},
            "quiz_pass": {
                "type": ["number", "null"],
                "minimum": 0,
                "description": "the pass mark, 0..quiz_max; null: no quiz required",
            },
            "quiz_max": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 1_000_000,
                "default": 100,
            },
        },
    ),
    "NewPlanRule": _obj(
        {"depth": {"type": "integer", "minimum": 0, "maximum": 64}},
        {"heads": {"type": "boolean", "default": False}, "due": NULL_TIME},
    ),
    "SessionChange": {
        "minProperties": 1,
        "additionalProperties": False,
        **_obj(
            {},
            {
                "requires": {"oneOf": [_ref("NewRequirements"), {"type": "null"}]},
                "plans": {
                    "description": "a field left out keeps the stored one; depth is required "
                    "when the session has no rule yet; null: no unit owes a plan",
                    "oneOf": [
                        _obj(
                            {},
                            {
                                "depth": {"type": "integer", "minimum": 0, "maximum": 64},
                                "heads": {"type": "boolean"},
                                "due": NULL_TIME,
                            },
                        ),
                        {"type": "null"},
                    ],
                },
            },
        ),
    },
    "Session": _obj(
        {
            "id": INT,
            "title": STR,
            "starts_at": TIME,
            "ends_at": TIME,
            "audience": {"type": "array", "items": STR},
            "late_after_minutes": INT,
            "makeup_for": NULL_INT,
            "state": {"type": "string", "enum": ["open", "closed"]},
            "closed_at": NULL_TIME,
            "expected": COUNT,
            "requires": _obj(
                {
                    "reflection": {"type": "boolean"},
                    "quiz_pass": {"type": ["number", "null"]},
                    "quiz_max": {"type": "number"},
                }
            ),
            "plans": {
                "oneOf": [
                    _obj({"depth": INT, "heads": {"type": "boolean"}, "due": NULL_TIME}),
                    {"type": "null"},
                ]
            },
        }
    ),
    "NewSite": _obj(
        {
            "name": {"type": "string", "maxLength": 300},
            "kind": {"type": "string", "enum": SITE_KINDS},
        },
        {
            "unit": NULL_STR,
            "capacity": {"type": ["integer", "null"], "minimum": 0, "maximum": 10_000_000},
        },
    ),
    "RegisteredSite": _obj(
        {
            "id": INT,
            "name": STR,
            "kind": {"type": "string", "enum": SITE_KINDS},
            "unit": NULL_STR,
            "capacity": {"type": ["integer", "null"]},
            "token": STR,
        }
    ),
    "Site": _obj(
        {
            "id": INT,
            "session": INT,
            "name": STR,
            "kind": {"type": "string", "enum": SITE_KINDS},
            "unit": NULL_STR,
            "capacity": NULL_INT,
        }
    ),
    "NewExcuse": _obj(
        {
            "member": {"type": "string", "maxLength": 64},
            "reason": {"type": "string", "maxLength": 2000},
        }
    ),
    "Excuse": _obj({"session": INT, "member": STR, "reason": STR}),
    "Event": {
        **_obj(
            {
                "type": {"type": "string", "enum": ["checkin", "checkout", "guests", "void"]},
                "id": {"type": "string", "description": "a UUID the device made"},
            },
            {"member": STR, "ts": TIME, "count": COUNT, "target": STR},
        ),
        "description": "A malformed event is answered `rejected/invalid`, not with an error.",
    },
    "Result": _obj(
        {
            "id": {"description": "the event's id as sent"},
            "result": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
        },
        {
            "member": _obj({"code": STR, "full_name": STR, "unit": STR}, {"unit_name": NULL_STR}),
            "already_present": _obj({"site": INT, "ts": TIME}, {"site_name": NULL_STR}),
            "reason": {"type": "string", "enum": REASONS},
        },
    ),
    "Live": _obj(
        {
            "session": INT,
            "expected": COUNT,
            "present": COUNT,
            "guests": COUNT,
            "unexpected": COUNT,
            "sites": {"type": "array", "items": LIVE_SITE},
            "units": {
                "type": "array",
                "items": _obj(
                    {"code": STR, "name": STR, "expected": COUNT, "present": COUNT},
                    {"parent": NULL_STR},
                ),
            },
        },
        {
            "curve": {
                "type": "array",
                "items": _obj({"minute": TIME, "checkins": COUNT}),
            }
        },
    ),
    "Record": _obj(
        {
            "member": STR,
            "full_name": STR,
            "unit": STR,
            "status": {"type": "string", "enum": STATUSES},
            "form": NULL_STR,
            "site": NULL_INT,
            "first_in": NULL_TIME,
            "last_out": NULL_TIME,
            "minutes": COUNT,
            "flags": {
                "type": "array",
                "items": {
                    "type": "string",
                    "examples": ["multi_site", "left_early", "not_in_audience", "late_upload"],
                },
            },
            "excuse": NULL_STR,
            "reflection": {"type": "boolean"},
            "quiz_score": {"type": ["number", "null"]},
            "completed": {
                "type": "boolean",
                "description": "attended and met every requirement of the session",
            },
        },
        {"site_name": NULL_STR},
    ),
    "Summary": _obj(
        {
            "expected": COUNT,
            "present": COUNT,
            "late": COUNT,
            "excused": COUNT,
            "made_up": COUNT,
            "absent": COUNT,
            "rate": {"type": ["number", "null"]},
            "completed": COUNT,
        }
    ),
    "SiteRoster": _obj(
        {
            "session": INT,
            "site": INT,
            "members": {
                "type": "array",
                "items": _obj({"code": STR, "full_name": STR, "unit": STR}, {"unit_name": STR}),
            },
            "present": {"type": "array", "items": STR},
            "here": {"type": "array", "items": STR},
            "guests": NULL_INT,
        }
    ),
}
SCHEMAS["User"] = _obj(
    {
        "login": STR,
        "full_name": STR,
        "unit": {"type": "string", "description": "their scope is this unit's subtree"},
        "role": {"type": "string", "enum": ROLES},
        "active": {"type": "boolean"},
    }
)
PASSWORD: Schema = {
    "type": "string",
    "minLength": 10,
    "maxLength": 1024,
    "description": "at least 10 characters; kept only as an argon2id hash",
}
SCHEMAS["NewUser"] = _obj(
    {
        "login": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$",
            "description": "1-64 letters, digits or . _ @ -",
        },
        "full_name": {"type": "string", "maxLength": 200},
        "unit": {"type": "string", "description": "a unit in the admin's scope"},
        "role": {"type": "string", "enum": ROLES},
        "password": PASSWORD,
    },
    {"active": {"type": "boolean", "default": True}},
)
SCHEMAS["UserChange"] = {
    **_obj(
        {},
        {
            "full_name": {"type": "string", "maxLength": 200},
            "unit": STR,
            "role": {"type": "string", "enum": ROLES},
            "active": {"type": "boolean"},
            "password": PASSWORD,
        },
    ),
    "minProperties": 1,
    "additionalProperties": False,
    "description": "Deactivating a user or changing their password ends their sign-ins at once.",
}
SCHEMAS["Login"] = _obj({"login": STR, "password": STR})
SCHEMAS["SignedIn"] = _obj(
    {
        "token": {"type": "string", "description": "a bearer token for the API and /ws/monitor"},
        "expires_at": {**TIME, "description": "12 hours after signing in"},
        "user": _ref("User"),
    }
)
SCHEMAS["Me"] = _obj(
    {
        "actor": {
            "type": "string",
            "description": "who the audit log names: a login, or `admin-token`",
        },
        "role": {"type": "string", "enum": ROLES},
        "unit": {"type": ["string", "null"], "description": "null: the whole tree"},
        "unit_name": NULL_STR,
        "user": {"oneOf": [_ref("User"), {"type": "null"}]},
    }
)
SCHEMAS["AuditEntry"] = _obj(
    {
        "at": TIME,
        "user": {
            "type": "string",
            "description": "a login, `admin-token`, `site:<id>`, or `cli` (the command line)",
        },
        "action": {"type": "string", "examples": AUDIT_ACTIONS},
        "session": NULL_INT,
        "target": {
            "type": ["string", "null"],
            "description": "a login, member, site id, event id or unit, by action",
        },
        "detail": NULL_STR,
        "address": {"type": ["string", "null"], "description": "the client's address"},
    }
)
LOOSE_BOOL: Schema = {
    "type": ["boolean", "string"],
    "description": "true/false, or text: 1/0, yes/no, x, có/không",
}
SCHEMAS["NewEvidence"] = _obj(
    {"member": {"type": "string", "description": "the member's code"}},
    {
        "reflection": LOOSE_BOOL,
        "quiz_score": {
            "type": ["number", "string", "null"],
            "description": "a number (or text: 8.5 or 8,5); null clears it",
        },
        "self_study": LOOSE_BOOL,
    },
)
SCHEMAS["SiteToken"] = _obj(
    {"token": {"type": "string", "description": "shown once; the old token stops at once"}}
)
SCHEMAS["Attendance"] = _obj(
    {
        "session": INT,
        "records": {"type": "array", "items": _ref("Record")},
        "summary": _ref("Summary"),
    }
)
SCHEMAS["UnitSummaries"] = _obj(
    {
        "units": {
            "type": "array",
            "items": {"allOf": [_obj({"code": STR, "name": STR}), _ref("Summary")]},
        },
        "total": _ref("Summary"),
    },
    {"session": INT},
)
SCHEMAS["Absences"] = _obj(
    {
        "members": {
            "type": "array",
            "items": _obj(
                {
                    "member": STR,
                    "full_name": STR,
                    "unit": STR,
                    "absent": COUNT,
                    "sessions": {"type": "array", "items": INT},
                    "incomplete": COUNT,
                    "incomplete_sessions": {"type": "array", "items": INT},
                }
            ),
        }
    },
    {"from": TIME, "to": TIME, "sessions": {"type": "array", "items": INT}},
)
SCHEMAS["Yearly"] = _obj(
    {
        "members": {
            "type": "array",
            "items": _obj(
                {
                    "member": STR,
                    "full_name": STR,
                    "unit": STR,
                    "sessions": COUNT,
                    "absent": COUNT,
                    "excused": COUNT,
                    "made_up": COUNT,
                    "incomplete": COUNT,
                }
            ),
        },
        "units": {
            "type": "array",
            "items": _obj(
                {
                    "code": STR,
                    "name": STR,
                    "expected": COUNT,
                    "attended": COUNT,
                    "completed": COUNT,
                    "attendance_rate": {"type": "number"},
                    "completion_rate": {"type": "number"},
                    "plans_owed": COUNT,
                    "plans_handed_in": COUNT,
                }
            ),
        },
    },
    {"from": TIME, "to": TIME, "sessions": {"type": "array", "items": INT}},
)

PLAN_KINDS = ["committee", "head"]
SCHEMAS["NewPlan"] = _obj(
    {},
    {
        "handed_in_at": {**TIME, "description": "default: now; not in the future"},
        "note": {"type": ["string", "null"], "maxLength": 2000},
    },
)
SCHEMAS["Plan"] = _obj({"handed_in_at": TIME, "recorded_by": STR, "note": NULL_STR})
SCHEMAS["Plans"] = _obj(
    {
        "rule": {
            "oneOf": [
                _obj(
                    {
                        "depth": {"type": "integer", "minimum": 0},
                        "heads": {"type": "boolean"},
                        "due": NULL_TIME,
                    }
                ),
                {"type": "null"},
            ]
        },
        "units": {
            "type": "array",
            "items": _obj(
                {
                    "code": STR,
                    "name": STR,
                    "committee": {"oneOf": [_ref("Plan"), {"type": "null"}]},
                    "head": {"oneOf": [_ref("Plan"), {"type": "null"}]},
                    "owed": {"type": "array", "items": {"enum": PLAN_KINDS}},
                    "missing": {"type": "array", "items": {"enum": PLAN_KINDS}},
                    "late": {"type": "boolean"},
                }
            ),
        },
    }
)
SCHEMAS["PlansMissing"] = _obj(
    {
        "at": TIME,
        "units": {
            "type": "array",
            "items": _obj(
                {
                    "code": STR,
                    "name": STR,
                    "missing": {"type": "array", "items": {"enum": PLAN_KINDS}},
                }
            ),
        },
    }
)

# The answers every operation may give, each in the contract's error shape.
ERRORS: dict[str, str] = {
    "400": "Bad input: not JSON, a missing or wrong field, bad rows (`details`)",
    "401": "No token, or one the service does not know (expired, signed out, deactivated); "
    "at sign-in a wrong login or password (`bad_credentials`, the same answer for both)",
    "403": "A token not allowed here: beyond the user's role or scope (`forbidden`; for an "
    "import `details` lists every row outside the scope), or a site token",
    "404": "An unknown id in the path, a session outside the caller's scope (the same "
    "answer), or an unknown code the body names",
    "405": "A method the path does not take",
    "409": "Conflicts with the state: a closed session, a member already present, a login taken",
    "413": "A body over the size limit (8 MiB by default)",
    "429": "Too many failed sign-ins for this login or from this address; see Retry-After",
    "503": "The database cannot be reached; nothing was written",
}

SID: Schema = {
    "name": "sid",
    "in": "path",
    "required": True,
    "description": "the session's id",
    "schema": {"type": "integer", "minimum": 0},
}


AUDIT_FILTERS: list[Schema] = [
    {
        "name": "from",
        "in": "query",
        "description": "a date (YYYY-MM-DD) or an RFC 3339 time; no bound if omitted",
        "schema": STR,
    },
    {
        "name": "to",
        "in": "query",
        "description": "a date (included) or an RFC 3339 time; no bound if omitted",
        "schema": STR,
    },
    {
        "name": "session",
        "in": "query",
        "description": "a session's id",
        "schema": {"type": "integer", "minimum": 0},
    },
    {
        "name": "user",
        "in": "query",
        "description": "a login, `admin-token` or `site:<id>`",
        "schema": STR,
    },
    {
        "name": "action",
        "in": "query",
        "description": "one action, e.g. `login_failed`",
        "schema": STR,
    },
]


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _ok(description: str, schema: Schema, status: str = "200") -> dict[str, Schema]:
    return {status: {"description": description, "content": _json(schema)}}


def _op(
    summary: str,
    tag: str,
    responses: dict[str, Schema],
    *,
    auth: str | None = None,
    errors: tuple[str, ...] = (),
    params: list[Schema] | None = None,
    body: Schema | None = None,
    csv_header: str | None = None,
    description: str | None = None,
    role: str | None = None,
) -> Schema:
    """One operation: its answers, plus the error answers it may give and its security.

    `role` is the least role a user's token needs (the admin token is an admin of the whole
    tree); it goes into the description, where the API page shows it."""
    op: Schema = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    if role:
        need = f"Role: `{role}` or above, inside the caller's scope."
        description = f"{description} {need}" if description else need
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body is not None:
        content = _json(body)
        if csv_header:
            content["text/csv"] = {
                "schema": {
                    "type": "string",
                    "description": f"UTF-8 CSV with the header `{csv_header}`",
                    "examples": [f"{csv_header}\n"],
                }
            }
        op["requestBody"] = {"required": True, "content": content}
    codes = set(errors)
    if auth:
        op["security"] = [{auth: []}]
        codes |= {"401", "403", "503"}
    if body is not None:
        codes |= {"400", "413"}
    if params and any(p["in"] == "path" for p in params):
        codes.add("404")
    for code in sorted(codes):
        op["responses"][code] = {"$ref": f"#/components/responses/E{code}"}
    return op


def _page(summary: str, description: str, params: list[Schema] | None = None) -> Schema:
    op: Schema = {
        "summary": summary,
        "description": description,
        "tags": ["pages"],
        "responses": {"200": {"description": "the page", "content": {"text/html": {}}}},
    }
    if params:
        op["parameters"] = params
        op["responses"]["404"] = {"$ref": "#/components/responses/E404"}
    return op


def _websocket(summary: str, description: str, auth: str, *, admission: bool = False) -> Schema:
    responses: Schema = {
        "101": {"description": f"switched to the websocket; its hello carries the {auth}"},
        "400": {"$ref": "#/components/responses/E400"},
    }
    if admission:
        responses["503"] = {
            "description": "`busy`: too many devices connecting to this instance at once, or "
            "its commits behind; no websocket is made (docs/api.md, Websockets)",
            "content": _json(_ref("Error")),
            "headers": {
                "Retry-After": {
                    "description": "whole seconds to wait before connecting again",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 30},
                }
            },
        }
    return {
        "summary": summary,
        "description": description,
        "tags": ["websockets"],
        "responses": responses,
    }


def _paths() -> dict[str, Schema]:
    admin, site = "adminToken", "siteToken"
    sid = [SID]
    plan_path = [
        SID,
        _path("unit", STR, "the owing unit's code"),
        _path("kind", {"type": "string", "enum": PLAN_KINDS}, "whose plan: `committee` or `head`"),
    ]
    at = _query("at", TIME, "an RFC 3339 time; default: the rule's `due`, or now without one")
    return {
        "/healthz": {
            "get": {
                "summary": "Whether the database and Redis can be reached",
                "tags": ["operations"],
                "responses": {
                    **_ok("everything reachable", _ref("Health")),
                    **_ok("the failing part named", _ref("Health"), "503"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "This instance's figures for Prometheus (no token: keep it private)",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "Prometheus text format, or OpenMetrics when asked for",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/openmetrics-text": {"schema": {"type": "string"}},
                        },
                    }
                },
            }
        },
        SPEC_PATH: {
            "get": {
                "summary": "This document",
                "tags": ["operations"],
                "responses": _ok("OpenAPI 3.1", {"type": "object"}),
            }
        },
        "/api/v1/units": {
            "get": _op(
                "List the units",
                "roster",
                _ok("every unit", _list_of("units", _ref("Unit"))),
                auth=admin,
                role="viewer",
            ),
            "post": _op(
                "Import units (upsert by code, all or nothing)",
                "roster",
                _ok("applied", _ref("ImportResult")),
                auth=admin,
                role="admin",
                body=_list_of("units", _ref("NewUnit")),
                csv_header="code,name,parent",
            ),
        },
        "/api/v1/members": {
            "get": _op(
                "Search members",
                "roster",
                _ok(
                    "a page of members, and how many match",
                    _obj({"members": {"type": "array", "items": _ref("Member")}, "total": COUNT}),
                ),
                auth=admin,
                role="viewer",
                errors=("400",),
                params=[
                    _query("unit", STR, "a unit's code: its whole subtree"),
                    _query("q", STR, "part of a code or name, accents ignored"),
                    _query(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "50 if omitted"
                    ),
                    _query(
                        "offset",
                        {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                        "0 if omitted",
                    ),
                ],
            ),
            "post": _op(
                "Import members (upsert by code, all or nothing)",
                "roster",
                _ok("applied", _ref("ImportResult")),
                auth=admin,
                role="admin",
                body=_list_of("members", _ref("NewMember")),
                csv_header="code,full_name,unit",
            ),
        },
        "/api/v1/sessions": {
            "get": _op(
                "List the sessions",
                "sessions",
                _ok("every session", _list_of("sessions", _ref("Session"))),
                auth=admin,
                role="viewer",
            ),
            "post": _op(
                "Create a session",
                "sessions",
                _ok("created", _ref("Session"), "201"),
                auth=admin,
                role="organizer",
                errors=("404",),
                body=_ref("NewSession"),
            ),
        },
        "/api/v1/sessions/{sid}": {
            "get": _op(
                "One session",
                "sessions",
                _ok("the session", _ref("Session")),
                auth=admin,
                role="viewer",
                params=sid,
            ),
            "patch": _op(
                "Change what completing a session needs and which units owe a plan",
                "sessions",
                _ok("the changed session", _ref("Session")),
                auth=admin,
                role="organizer",
                errors=("404",),
                params=sid,
                body=_ref("SessionChange"),
                description="Only `requires` and `plans` may change, even after the close "
                "(the attendance export reads them); a field left out keeps what is stored. "
                "The caller's scope must hold the whole audience. Audit `session_changed`.",
            ),
        },
        "/api/v1/sessions/{sid}/close": {
            "post": _op(
                "Close a session (its expected members are frozen)",
                "sessions",
                _ok("the closed session", _ref("Session")),
                auth=admin,
                role="organizer",
                params=sid,
            )
        },
        "/api/v1/sessions/{sid}/sites": {
            "get": _op(
                "The session's sites, without tokens",
                "sites",
                _ok("every site", _list_of("sites", _ref("Site"))),
                auth=admin,
                role="viewer",
                params=sid,
            ),
            "post": _op(
                "Register a site, or many at once; each coordinator token is shown once",
                "sites",
                _ok(
                    "registered: one site for one, a list for `sites` or CSV",
                    {
                        "oneOf": [
                            {"allOf": [_ref("Site"), _obj({"token": STR})]},
                            _list_of("sites", _ref("RegisteredSite")),
                        ]
                    },
                    "201",
                ),
                auth=admin,
                role="organizer",
                errors=("409",),
                params=sid,
                body={
                    "anyOf": [
                        _ref("NewSite"),
                        _obj(
                            {
                                "sites": {
                                    "type": "array",
                                    "items": _ref("NewSite"),
                                    "maxItems": 50_000,
                                }
                            }
                        ),
                    ]
                },
                csv_header="name,kind,unit,capacity",
                description=(
                    'Many sites: `{"sites": [...]}` or CSV (`text/csv`, header '
                    "`name,kind,unit,capacity`), up to 50,000, all or nothing: one bad row "
                    "and nothing is registered, `400 import_rejected` lists every bad row "
                    "(missing name, unknown kind or unit, bad capacity, a name twice)."
                ),
            ),
        },
        "/api/v1/sessions/{sid}/excuses": {
            "post": _op(
                "Excuse a member",
                "sessions",
                _ok("recorded", _ref("Excuse"), "201"),
                auth=admin,
                role="organizer",
                errors=("409",),
                params=sid,
                body=_ref("NewExcuse"),
            )
        },
        "/api/v1/sessions/{sid}/checkins": {
            "post": _op(
                "Check-ins over HTTP, for devices that cannot hold a websocket",
                "check-in",
                _ok(
                    "one result per event, in order",
                    _list_of("results", _ref("Result")),
                ),
                auth=site,
                params=sid,
                body=_list_of("items", _ref("Event")),
            )
        },
        "/api/v1/sessions/{sid}/roster": {
            "get": _op(
                "What a site's check-in page starts from",
                "check-in",
                {
                    "200": {
                        "description": "the site's members and who is present",
                        "headers": {"Cache-Control": {"schema": {"const": "no-store"}}},
                        "content": _json(_ref("SiteRoster")),
                    }
                },
                auth=site,
                params=sid,
            )
        },
        "/api/v1/sessions/{sid}/live": {
            "get": _op(
                "Live counts (LIVE)",
                "live",
                _ok("LIVE", _ref("Live")),
                auth=admin,
                role="viewer",
                errors=("400",),
                params=[
                    SID,
                    _query(
                        "unit",
                        STR,
                        "a unit's code: LIVE restricted to its subtree (inside the caller's scope)",
                    ),
                    _query(
                        "sites",
                        {"type": "string", "enum": ["all", "none"]},
                        "`none`: LIVE's `sites` is empty (read them from `/live/sites`); `all`"
                        " if omitted",
                    ),
                    _query(
                        "depth",
                        {"type": "integer", "minimum": 0, "maximum": 999},
                        "only the units at most this many levels below the view's root(s); all"
                        " if omitted",
                    ),
                ],
                description="Restricted to the caller's scope, as every answer for a user is.",
            )
        },
        "/api/v1/sessions/{sid}/live/sites": {
            "get": _op(
                "A page of the live per-site table",
                "live",
                _ok(
                    "a page of LIVE's sites, and how many match",
                    _obj(
                        {
                            "sites": {
                                "type": "array",
                                "items": LIVE_SITE,
                            },
                            "total": COUNT,
                        }
                    ),
                ),
                auth=admin,
                role="viewer",
                errors=("400",),
                params=[
                    SID,
                    _query("unit", STR, "a unit's code: its subtree (inside the caller's scope)"),
                    _query(
                        "kind",
                        {"type": "string", "enum": ["hall", "bridge", "broadcast", "self_study"]},
                        "one kind of site",
                    ),
                    _query(
                        "silent",
                        {"type": "string", "enum": ["true", "false"]},
                        "`true`: sites with no coordinator connected; `false`: those with one",
                    ),
                    _query(
                        "q",
                        {"type": "string", "maxLength": 200},
                        "part of the name, accents ignored",
                    ),
                    _query(
                        "order",
                        {"type": "string", "enum": ["name", "present", "last_event_at"]},
                        "name A to Z (the default), most present first, or the quietest first"
                        " (never heard from, then the longest silent)",
                    ),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "100 if omitted",
                    ),
                    _query(
                        "offset",
                        {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                        "0 if omitted",
                    ),
                ],
                description="Read from the live state, not the database: a dashboard at many"
                " sites asks LIVE for `sites=none` and pages through this instead.",
            )
        },
        "/api/v1/sessions/{sid}/attendance": {
            "get": _op(
                "Reconciled attendance",
                "attendance",
                _ok("every record and the summary", _ref("Attendance")),
                auth=admin,
                role="viewer",
                params=sid,
            )
        },
        "/api/v1/sessions/{sid}/attendance.csv": {
            "get": _op(
                "Reconciled attendance as CSV",
                "attendance",
                _download("text/csv; charset=utf-8", "one row per record"),
                auth=admin,
                role="viewer",
                params=sid,
            )
        },
        "/api/v1/sessions/{sid}/attendance.xlsx": {
            "get": _op(
                "Reconciled attendance as a workbook",
                "attendance",
                _download(
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "the records, then the per-unit summary",
                ),
                auth=admin,
                role="viewer",
                params=sid,
            )
        },
        "/api/v1/sessions/{sid}/summary": {
            "get": _op(
                "The summary per unit",
                "attendance",
                _ok("each unit's subtree, and the total", _ref("UnitSummaries")),
                auth=admin,
                role="viewer",
                params=sid,
            )
        },
        "/api/v1/reports/absences": {
            "get": _op(
                "Members absent at closed sessions in a range",
                "attendance",
                _ok("for the annual evaluation", _ref("Absences")),
                auth=admin,
                role="viewer",
                errors=("400",),
                params=[
                    _query("from", STR, "a date (YYYY-MM-DD) or an RFC 3339 time", True),
                    _query("to", STR, "a date (included) or an RFC 3339 time", True),
                ],
            )
        },
        "/api/v1/reports/yearly": {
            "get": _op(
                "The yearly report: per member and per unit, closed sessions in a range",
                "attendance",
                _ok("restricted to the caller's scope", _ref("Yearly")),
                auth=admin,
                role="viewer",
                errors=("400",),
                params=_RANGE,
            )
        },
        "/api/v1/reports/yearly.csv": {
            "get": _op(
                "The yearly report's members as CSV",
                "attendance",
                _download("text/csv; charset=utf-8", "one row per member"),
                auth=admin,
                role="viewer",
                errors=("400",),
                params=_RANGE,
            )
        },
        "/api/v1/reports/yearly.xlsx": {
            "get": _op(
                "The yearly report as a workbook",
                "attendance",
                _download(
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "sheets members and units",
                ),
                auth=admin,
                role="viewer",
                errors=("400",),
                params=_RANGE,
            )
        },
        "/api/v1/sessions/{sid}/evidence": {
            "post": _op(
                "Record study evidence: reflections, quiz scores, self-study (upsert per member)",
                "sessions",
                _ok("applied", _ref("ImportResult")),
                auth=admin,
                role="organizer",
                params=sid,
                body=_list_of("evidence", _ref("NewEvidence")),
                csv_header="member,reflection,quiz_score",
                description=(
                    "All or nothing: bad rows -> `400 import_rejected`, rows with a member "
                    "outside the scope -> `403 forbidden`, each listing every such row. A CSV "
                    "header is matched loosely (a quiz platform's export as it is; see "
                    "docs/api.md). A field a row leaves out keeps what is stored."
                ),
            )
        },
        "/api/v1/sessions/{sid}/excuses/{member}": {
            "delete": _op(
                "Withdraw a member's excuse (recorded by mistake)",
                "sessions",
                {"204": {"description": "withdrawn"}},
                auth=admin,
                role="organizer",
                params=[SID, _path("member", STR, "the member's code")],
                description="`404 unknown_excuse` when the member has no excuse here.",
            )
        },
        "/api/v1/sessions/{sid}/sites/{site}/token": {
            "post": _op(
                "A new coordinator token for a site",
                "sites",
                _ok("the new token, shown once", _ref("SiteToken")),
                auth=admin,
                role="organizer",
                errors=("400",),
                params=[
                    SID,
                    _path(
                        "site",
                        {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                        "the site's id",
                    ),
                ],
                description=(
                    "The old token stops at once on every instance: its check-in websockets "
                    'get `{"type": "error", "code": "unauthorized"}` and are closed with 4401. '
                    "`404 unknown_site` for a site of another session."
                ),
            )
        },
        "/api/v1/sessions/{sid}/plans": {
            "get": _op(
                "The units that owe an action plan, and what they handed in",
                "plans",
                _ok("the rule and the owing units in the caller's scope", _ref("Plans")),
                auth=admin,
                role="viewer",
                params=sid,
                description="Units at the rule's depth inside the audience subtrees.",
            )
        },
        "/api/v1/sessions/{sid}/plans/{unit}/{kind}": {
            "put": _op(
                "Record a unit's action plan as handed in",
                "plans",
                _ok("recorded (a plan recorded before is replaced)", _ref("Plan")),
                auth=admin,
                role="organizer",
                params=plan_path,
                body=_ref("NewPlan"),
                description=(
                    "The body is optional. `404 unknown_unit` when the unit owes no plan of "
                    "this kind; a unit outside the scope `403`. Audit `plan_recorded`."
                ),
            ),
            "delete": _op(
                "Withdraw a unit's action plan (recorded by mistake)",
                "plans",
                {"204": {"description": "withdrawn"}},
                auth=admin,
                role="organizer",
                params=plan_path,
                description="`404 unknown_plan` when none is recorded. Audit `plan_withdrawn`.",
            ),
        },
        "/api/v1/sessions/{sid}/plans/missing": {
            "get": _op(
                "The owing units that had not handed in every plan by a moment",
                "plans",
                _ok("the moment and the units", _ref("PlansMissing")),
                auth=admin,
                role="viewer",
                errors=("400",),
                params=[SID, at],
            )
        },
        "/api/v1/sessions/{sid}/plans/missing.csv": {
            "get": _op(
                "The same units as CSV (`code,name,missing`)",
                "plans",
                _download("text/csv; charset=utf-8", "one row per unit, kinds joined with `;`"),
                auth=admin,
                role="viewer",
                errors=("400",),
                params=[SID, at],
            )
        },
        "/api/v1/auth/login": {
            "post": {
                **_op(
                    "Sign in with login and password",
                    "accounts",
                    {
                        "200": {
                            "description": "signed in: a token valid 12 hours",
                            "headers": {"Cache-Control": {"schema": {"const": "no-store"}}},
                            "content": _json(_ref("SignedIn")),
                        }
                    },
                    errors=("401", "429", "503"),
                    body=_ref("Login"),
                    description=(
                        "A wrong password and an unknown login get the same "
                        "`401 bad_credentials`. After 5 failures for one login, or 20 from one "
                        "address, within 15 minutes: `429 too_many_attempts` with Retry-After, "
                        "even for the right password (counted across every instance)."
                    ),
                ),
                "security": [],
            }
        },
        "/api/v1/auth/logout": {
            "post": _op(
                "Sign out: the token stops at once, on every instance",
                "accounts",
                {"204": {"description": "signed out"}},
                auth=admin,
                errors=("400",),
                description="Only a user's sign-in token can be signed out (the admin token: 400).",
            )
        },
        "/api/v1/auth/me": {
            "get": _op(
                "Who this token is: role, unit and user",
                "accounts",
                _ok("the caller", _ref("Me")),
                auth=admin,
            )
        },
        "/api/v1/users": {
            "get": _op(
                "The users in the caller's scope",
                "accounts",
                _ok("each user, never a password", _list_of("users", _ref("User"))),
                auth=admin,
                role="admin",
            ),
            "post": _op(
                "Add a user in the caller's scope",
                "accounts",
                _ok("created, without the password", _ref("User"), "201"),
                auth=admin,
                role="admin",
                errors=("404", "409"),
                body=_ref("NewUser"),
                description="`409 login_taken`; `404 unknown_unit`.",
            ),
        },
        "/api/v1/users/{login}": {
            "patch": _op(
                "Change a user's name, unit, role, password or whether they are active",
                "accounts",
                _ok("the changed user", _ref("User")),
                auth=admin,
                role="admin",
                params=[_path("login", STR, "the user's login")],
                body=_ref("UserChange"),
                description=(
                    "Deactivating a user or changing their password revokes their tokens at "
                    "once. `404 unknown_user` for an unknown login, `403 forbidden` for a user "
                    "outside the caller's scope. Any "
                    "signed-in user may change their own `full_name` and `password` (and "
                    "nothing else of their own)."
                ),
            )
        },
        "/api/v1/audit": {
            "get": _op(
                "The audit log about the caller's scope, newest first",
                "accounts",
                _ok(
                    "at most `limit` entries",
                    _list_of("entries", _ref("AuditEntry")),
                ),
                auth=admin,
                role="admin",
                errors=("400",),
                params=[
                    *AUDIT_FILTERS,
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 10_000},
                        "1000 if omitted",
                    ),
                ],
            )
        },
        "/api/v1/audit.csv": {
            "get": _op(
                "The audit log as CSV: every entry the filters keep",
                "accounts",
                _download(
                    "text/csv; charset=utf-8", "header at,user,action,session,target,detail,address"
                ),
                auth=admin,
                role="admin",
                errors=("400",),
                params=AUDIT_FILTERS,
            )
        },
        "/ws/checkin": {
            "get": _websocket(
                "The coordinators' check-in websocket",
                "Hello, events and acks as in the API reference (docs/api.md).",
                "site token",
                admission=True,
            )
        },
        "/ws/monitor": {
            "get": _websocket(
                "The organizers' live counts websocket",
                "Hello, a snapshot, then deltas as in the API reference (docs/api.md).",
                "admin token",
            )
        },
        "/": {"get": _page("The organizers' sessions page", "Sign-in and the sessions list.")},
        "/sessions/{sid}": {
            "get": _page(
                "One session's page",
                "Live dashboard, sites, excuses, closing and attendance.",
                [{**SID, "schema": {"type": "string", "pattern": "^[0-9]+$"}}],
            )
        },
        "/sessions/{sid}/evidence": {
            "get": _page(
                "One session's study evidence page",
                "Reflections ticked, self-study confirmed, a quiz file uploaded.",
                [{**SID, "schema": {"type": "string", "pattern": "^[0-9]+$"}}],
            )
        },
        "/sessions/{sid}/qr-sheet": {
            "get": _page(
                "The printable QR sheet of sites just uploaded",
                "One card per site; the tokens stay in the browser, never sent back.",
                [{**SID, "schema": {"type": "string", "pattern": "^[0-9]+$"}}],
            )
        },
        "/users": {"get": _page("The users page (admins)", "Add users, change roles, deactivate.")},
        "/audit": {
            "get": _page("The audit page (admins)", "The audit log with its filters and CSV.")
        },
        "/checkin": {
            "get": _page(
                "The coordinators' check-in page",
                "The site token travels in the URL fragment (`#token=`), never to the server.",
            )
        },
        PAGE_PATH: {
            "get": _page("This API, readable", "Rendered in the browser from this document.")
        },
        "/checkin-sw.js": {
            "get": {
                "summary": "The check-in page's service worker (served from the root)",
                "tags": ["pages"],
                "responses": {
                    "200": {"description": "JavaScript", "content": {"text/javascript": {}}}
                },
            }
        },
        "/static/{filename}": {
            "get": {
                "summary": "The pages' scripts, styles and vendored modules",
                "tags": ["pages"],
                "parameters": [{"name": "filename", "in": "path", "required": True, "schema": STR}],
                "responses": {
                    "200": {"description": "the file"},
                    "403": _static_error("a path outside the directory, or not a plain file"),
                    "404": _static_error("no such file"),
                },
            }
        },
    }


def _static_error(description: str) -> Schema:
    """aiohttp's file handler answers a file it cannot open with an empty body; a path it
    refuses before that gets the contract's error body."""
    return {
        "description": f"{description}: the error body, or an empty body",
        "content": {
            **_json(_ref("Error")),
            "application/octet-stream": {"schema": {"maxLength": 0}},
        },
    }


def _query(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def _path(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _download(content_type: str, description: str) -> dict[str, Schema]:
    return {
        "200": {
            "description": description,
            "headers": {"Content-Disposition": {"schema": STR}},
            "content": {content_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    }


_RANGE = [
    _query("from", STR, "a date (YYYY-MM-DD) or an RFC 3339 time", True),
    _query("to", STR, "a date (included) or an RFC 3339 time", True),
]


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document (built once: it does not change while the service runs)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "streamsvc",
            "version": streamsvc.__version__,
            "description": (
                "Live attendance for study sessions. Every error has the body "
                '`{"error": {"code", "message", "details"}}`. The websockets\' messages are '
                "described in docs/api.md."
            ),
        },
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                f"E{code}": {
                    "description": text,
                    "content": _json(_ref("Error")),
                    **(
                        {
                            "headers": {
                                "Retry-After": {
                                    "description": "whole seconds until a try counts again",
                                    "schema": {"type": "integer", "minimum": 1},
                                }
                            }
                        }
                        if code == "429"
                        else {}
                    ),
                }
                for code, text in ERRORS.items()
            },
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "A user's sign-in token (`POST /api/v1/auth/login`, valid 12 hours) "
                        "or the admin token (STREAMSVC_ADMIN_TOKEN, an admin of the whole "
                        "tree): the organizer API. What it may do depends on the user's role "
                        "and scope (the subtree of their unit)."
                    ),
                },
                "siteToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A site's coordinator token: check-ins for its own site only.",
                },
            },
        },
    }


@cache
def _document_bytes() -> bytes:
    return orjson.dumps(openapi_document())


@routes.get(SPEC_PATH)
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(
        body=_document_bytes(),
        content_type="application/json",
        headers={"Cache-Control": "no-cache"},
    )


@routes.get(PAGE_PATH)
async def api_page(request: web.Request) -> web.Response:
    """The API reference, drawn by `static/api.js` from the document above."""
    return web.Response(
        body=render("api.html"),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )
