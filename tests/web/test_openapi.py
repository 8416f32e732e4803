"""`/api/v1/openapi.json` describes exactly the routes the app answers to, and the API page
is drawn from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from streamsvc.config import Settings
from streamsvc.web.app import create_app
from streamsvc.web.openapi import AUDIT_ACTIONS, ERROR_CODES, openapi_document

DOCS = Path(__file__).resolve().parents[2] / "docs"

# aiohttp's static resource is one prefix; the document names the file as a parameter.
STATIC_PATH = "/static/{filename}"
SIGN_IN = {"/api/v1/auth/login"}


def app_operations(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route the app registered; HEAD comes with each GET."""
    found = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path is None:
            assert info.get("prefix") == "/static", info
            path = STATIC_PATH
        for route in resource:
            if route.method != "HEAD":
                found.add((route.method.lower(), path))
    return found


def document_operations() -> set[tuple[str, str]]:
    return {(method, path) for path, item in openapi_document()["paths"].items() for method in item}


def test_the_document_is_valid_openapi_3_1():
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_route_is_described_and_nothing_else(tmp_path):
    app = create_app(Settings(database=f"sqlite:///{tmp_path / 'x.db'}", admin_token="t"))
    registered, described = app_operations(app), document_operations()
    assert registered - described == set(), "routes missing from the OpenAPI document"
    assert described - registered == set(), "the document describes routes the app lacks"


def test_every_api_operation_documents_its_errors_in_the_contract_shape():
    doc = openapi_document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if not path.startswith("/api/v1/") or path.endswith("openapi.json"):
                continue
            if path in SIGN_IN:
                # the one operation without a token: bad credentials, the limits, the store
                assert op["security"] == [], path
                assert {"401", "429", "503"} <= set(op["responses"]), path
            else:
                assert {"401", "403", "503"} <= set(op["responses"]), (method, path)
                assert op["security"] in ([{"adminToken": []}], [{"siteToken": []}]), (
                    method,
                    path,
                )
            for status, answer in op["responses"].items():
                if int(status) >= 400:
                    assert answer == {"$ref": f"#/components/responses/E{status}"}
    for answer in doc["components"]["responses"].values():
        assert answer["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/api/v1/units", {"application/json", "text/csv"}),
        ("/api/v1/members", {"application/json", "text/csv"}),
        ("/api/v1/sessions", {"application/json"}),
    ],
)
def test_imports_take_json_and_csv_where_the_service_does(path, content):
    op = openapi_document()["paths"][path]["post"]
    assert set(op["requestBody"]["content"]) == content


async def test_openapi_json_is_served_without_a_token(client):
    r = await client.get("/api/v1/openapi.json")
    assert r.status == 200
    assert r.content_type == "application/json"
    assert await r.json() == openapi_document()


async def test_the_api_page_loads_its_own_module_and_labels(client):
    r = await client.get("/api")
    html = await r.text()
    assert r.status == 200 and r.content_type == "text/html"
    assert '<script type="module" src="/static/api.js"></script>' in html
    assert "__LABELS__" not in html and '"api":{' in html
    assert re.search(r"<script>|\son\w+=|style=", html) is None, "inline script or style"
    js = await client.get("/static/api.js")
    assert js.status == 200 and "openapi.json" in await js.text()


def test_the_bearer_scheme_names_both_kinds_of_token():
    text = openapi_document()["components"]["securitySchemes"]["adminToken"]["description"]
    assert "sign-in token" in text and "admin token" in text


def test_the_sign_in_limit_answer_carries_retry_after():
    answer = openapi_document()["components"]["responses"]["E429"]
    assert answer["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert openapi_document()["paths"]["/api/v1/auth/login"]["post"]["responses"]["429"]


@pytest.mark.parametrize(
    ("path", "method", "role"),
    [
        ("/api/v1/users", "post", "admin"),
        ("/api/v1/audit", "get", "admin"),
        ("/api/v1/sessions", "post", "organizer"),
        ("/api/v1/sessions/{sid}/sites/{site}/token", "post", "organizer"),
        ("/api/v1/sessions/{sid}/excuses/{member}", "delete", "organizer"),
        ("/api/v1/sessions/{sid}/live", "get", "viewer"),
    ],
)
def test_each_operation_says_the_role_it_needs(path, method, role):
    op = openapi_document()["paths"][path][method]
    assert f"`{role}`" in op["description"]


def test_every_error_code_and_audit_action_is_in_the_api_reference():
    text = (DOCS / "api.md").read_text()
    missing = [c for c in (*ERROR_CODES, *AUDIT_ACTIONS) if f"`{c}`" not in text]
    assert missing == [], "add these to docs/api.md"
    assert "`GET /api/v1/auth/me`" in text and "STREAMSVC_TRUSTED_PROXIES" in text
    assert "STREAMSVC_TRUSTED_PROXIES" in (DOCS / "operations.md").read_text()
