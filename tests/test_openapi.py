"""The OpenAPI document at /api/openapi.json: valid, complete, honest about auth and error shapes."""
import re

import pytest
from openapi_spec_validator import validate

from runner import api as runner_api

PROBLEM = "application/problem+json"
# Methods Flask adds to every rule by itself; the document need not list them.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
def spec(anon):
    response = anon.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def _api_rules(app):
    """(OpenAPI path, methods, endpoint) of every API route except the documentation itself."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint.startswith("api-docs."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        yield path, set(rule.methods) - IMPLICIT_METHODS, rule.endpoint


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _resolve(spec, obj):
    while "$ref" in obj:
        node = spec
        for part in obj["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def _is_public(app, path, method):
    endpoint = next(e for p, _, e in _api_rules(app) if p == path)
    with app.test_request_context():
        view = runner_api.view_function(endpoint, method.upper())
    return getattr(view, runner_api.PUBLIC_ATTR, False)


def test_the_document_is_public_and_valid_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    validate(spec)  # raises with the offending node when the document is not valid
    assert spec["info"]["title"] == "Runner"


def test_every_api_route_is_documented_with_its_methods(app, spec):
    documented = {path: {m.upper() for m in item if m in HTTP_METHODS} for path, item in spec["paths"].items()}
    routes = {}
    for path, methods, _ in _api_rules(app):
        routes.setdefault(path, set()).update(methods)
    assert routes, "no API routes found"
    assert documented == routes


def test_the_known_public_operations_are_declared_public(app, spec):
    public = {(path, method) for path, method, _ in _operations(spec) if _is_public(app, path, method)}
    assert {("/api/health", "get"), ("/api/ready", "get"), ("/api/auth/token", "post")} <= public
    assert ("/api/auth/me", "get") not in public


def test_bearer_auth_is_the_documented_scheme(spec):
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]


def test_protected_operations_document_bearer_auth_and_401_and_public_ones_no_security(app, spec):
    for path, method, operation in _operations(spec):
        security = operation.get("security", spec.get("security"))
        if _is_public(app, path, method):
            assert operation.get("security") == [], (method, path)
        else:
            assert security == [{"bearerAuth": []}], (method, path)
            assert "401" in operation["responses"], (method, path)


def test_operations_documented_as_protected_refuse_anonymous_callers(app, spec, anon):
    """What the document promises is what the guard does: no protected route is open by mistake."""
    for path, method, _operation in _operations(spec):
        if _is_public(app, path, method):
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = anon.open(method.upper(), url, json={} if method in ("post", "put", "patch") else None)
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.mimetype == PROBLEM


def test_operations_needing_an_ability_document_the_403(app, spec):
    for path, method, operation in _operations(spec):
        endpoint = next(e for p, _, e in _api_rules(app) if p == path)
        with app.test_request_context():
            view = runner_api.view_function(endpoint, method.upper())
        if getattr(view, runner_api.ABILITY_ATTR, None):
            assert "403" in operation["responses"], (method, path)


def test_every_error_response_is_documented_as_problem_json(spec):
    checked = 0
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status != "default" and int(status) < 400:
                continue
            content = _resolve(spec, response).get("content")
            assert content is not None, f"{method.upper()} {path} {status} documents no body"
            assert set(content) == {PROBLEM}, (method, path, status, set(content))
            schema = _resolve(spec, content[PROBLEM]["schema"])
            assert {"type", "title", "status", "instance"} <= set(schema["properties"])
            checked += 1
    assert checked


# The success answers that are not JSON: the Server-Sent Events stream, and command output.
NOT_JSON = {
    ("get", "/api/runs/{run_id}/events/stream"): "text/event-stream",
    ("get", "/api/runs/blobs/{token}"): "text/plain",
}


def test_success_responses_are_documented_as_json(spec):
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status == "default" or int(status) >= 300 or status == "204":
                continue
            content = _resolve(spec, response).get("content", {})
            expected = NOT_JSON.get((method, path), "application/json")
            assert set(content) == {expected}, (method, path, status)


def test_swagger_ui_page_is_served(anon):
    response = anon.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "swagger-ui" in page.lower()
    assert "/api/openapi.json" in page


def test_authenticated_posts_document_the_idempotency_key(app, spec):
    documented = {}
    for path, method, operation in _operations(spec):
        if method != "post":
            continue
        names = [_resolve(spec, p)["name"] for p in operation.get("parameters", [])]
        documented[path] = "Idempotency-Key" in names
        if documented[path]:
            assert "409" in operation["responses"]  # a retry while the first is still running
    assert documented["/api/devices"] is True
    # Token-issuing endpoints are never replayed (that would store a token), nor documented so.
    assert documented["/api/auth/token"] is False
    assert documented["/api/auth/elevate"] is False
