"""Every error Runner answers is RFC 7807 problem+json: routing, body, validation, rate limits, crashes."""
import json

from helpers import PASSWORD, assert_problem
from runner import config as runner_config

DEFAULT_BASE = "https://docs.runner.dev/errors/"


def test_unknown_api_route_is_a_404_problem(anon):
    body = assert_problem(anon.get("/api/nope"), 404, "not-found")
    assert body["type"] == DEFAULT_BASE + "not-found"
    assert body["instance"] == "/api/nope"


def test_unknown_route_outside_api_is_a_404_problem_too(anon):
    body = assert_problem(anon.get("/no/such/page"), 404, "not-found")
    assert body["instance"] == "/no/such/page"


def test_unknown_route_with_a_token_is_still_a_404_not_a_401(user_api):
    assert_problem(user_api.post("/api/nope", json={}), 404, "not-found")


def test_405_is_a_problem_that_keeps_the_allow_header(user_api):
    response = user_api.delete("/api/auth/me")
    body = assert_problem(response, 405, "method-not-allowed")
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert {"GET", "HEAD", "OPTIONS"} <= allowed and "DELETE" not in allowed
    assert "GET" in body["detail"]


def test_405_on_a_public_route_keeps_the_allow_header(anon):
    response = anon.get("/api/auth/token")
    assert_problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_a_400_malformed_json_problem(anon):
    response = anon.post("/api/auth/token", data='{"email": "a@b.c", "password": ', content_type="application/json")
    body = assert_problem(response, 400, "malformed-json")
    assert "JSON" in body["detail"]


def test_malformed_json_on_an_authenticated_route_is_400_too(user_api):
    response = user_api.open("POST", "/api/devices", data="{nope", content_type="application/json")
    assert_problem(response, 400, "malformed-json")


def test_a_body_that_is_not_json_is_a_415_problem(anon, user_api):
    form = anon.post("/api/auth/token", data={"email": "a@b.c", "password": "x"})
    body = assert_problem(form, 415, "unsupported-media-type")
    assert "application/x-www-form-urlencoded" in body["detail"]
    text = user_api.open("POST", "/api/devices", data="token=ab", content_type="text/plain")
    assert_problem(text, 415, "unsupported-media-type")
    # No Content-Type at all, but a body: still not JSON.
    bare = user_api.open("POST", "/api/devices", data=b'{"token": "ab"}')
    assert_problem(bare, 415, "unsupported-media-type")


def test_json_with_a_charset_parameter_is_accepted(anon, make_user):
    _, email = make_user()
    response = anon.post(
        "/api/auth/token",
        data=json.dumps({"email": email, "password": PASSWORD}),
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 201, response.get_json()


def test_an_action_without_a_body_needs_no_content_type(user_api):
    response = user_api.client.post(
        "/api/auth/logout", headers={"Authorization": f"Bearer {user_api.token}"}
    )
    assert response.status_code == 204
    assert response.request.headers.get("Content-Type") is None
    assert_problem(user_api.get("/api/auth/me"), 401)


def test_a_body_over_max_content_length_is_a_413_problem(app, anon):
    app.config["MAX_CONTENT_LENGTH"] = 200
    big = {"email": "a@b.c", "password": "x" * 500}
    body = assert_problem(anon.post("/api/auth/token", json=big), 413, "payload-too-large")
    assert "200" in body["detail"]
    # Under the limit the same route answers normally.
    assert anon.post("/api/auth/token", json={"email": "a@b.c", "password": "x"}).status_code == 401


def test_a_413_is_answered_on_authenticated_routes_too(app, user_api):
    app.config["MAX_CONTENT_LENGTH"] = 100
    response = user_api.post("/api/devices", json={"token": "ab" * 100, "environment": "sandbox"})
    assert_problem(response, 413, "payload-too-large")


def test_422_names_fields_in_camel_case(anon):
    response = anon.post("/api/auth/token", json={"email": "x", "password": "y", "deviceName": ""})
    body = assert_problem(response, 422, "validation-failed")
    assert set(body["errors"]) == {"deviceName"}
    assert isinstance(body["errors"]["deviceName"], list) and body["errors"]["deviceName"]


def test_422_lists_every_invalid_field_including_missing_ones(anon):
    body = assert_problem(anon.post("/api/auth/token", json={"deviceName": ""}), 422)
    assert set(body["errors"]) == {"email", "password", "deviceName"}


def test_422_names_an_unknown_field_as_sent(anon):
    response = anon.post("/api/auth/token", json={"email": "x", "password": "y", "favouriteColour": "teal"})
    body = assert_problem(response, 422, "validation-failed")
    assert set(body["errors"]) == {"favouriteColour"}
    # A snake_case spelling of a real field is unknown too: the wire is camelCase only.
    body = assert_problem(
        anon.post("/api/auth/token", json={"email": "x", "password": "y", "device_name": "phone"}), 422
    )
    assert set(body["errors"]) == {"device_name"}


def test_422_for_a_body_that_is_not_an_object(anon):
    for payload in ([1, 2], "text", 42, None):
        body = assert_problem(anon.post("/api/auth/token", json=payload), 422, "validation-failed")
        assert body["errors"]


def test_422_for_bad_query_parameters_names_them(user_api):
    body = assert_problem(user_api.get("/api/devices?limit=abc"), 422, "validation-failed")
    assert set(body["errors"]) == {"limit"}


def test_a_missing_required_body_is_a_422_not_an_empty_update(admin_api):
    # Without this, webargs reads no body as `{}`: a bodiless PUT would "succeed" changing nothing.
    for method, path in (
        ("PUT", "/api/settings/server-params"),
        ("PUT", "/api/settings/providers/command"),
        ("POST", "/api/devices"),
    ):
        body = assert_problem(admin_api.open(method, path), 422, "validation-failed")
        assert body["errors"] == {"_schema": ["A JSON body is required."]}


def test_an_unknown_query_parameter_is_a_422_naming_it(user_api):
    # A mistyped filter must not silently answer an unfiltered list.
    body = assert_problem(user_api.get("/api/devices?limt=5"), 422, "validation-failed")
    assert set(body["errors"]) == {"limt"}


def test_instance_is_the_path_as_a_uri_reference(anon):
    response = anon.get("/api/n%C3%B6pe/a%20b")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert response.get_json()["instance"] == "/api/n%C3%B6pe/a%20b"


def test_the_error_type_base_comes_from_the_environment(config, redis_conn, monkeypatch, make_app):
    monkeypatch.setenv("RUNNER_ERROR_TYPE_BASE", "https://errors.example.test/runner/")
    custom = runner_config.TestConfig()
    for name in ("SQLALCHEMY_DATABASE_URI", "REDIS_URL", "DATA_DIR"):
        setattr(custom, name, getattr(config, name))
    client = make_app(custom).test_client()
    response = client.get("/api/nope")
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "https://errors.example.test/runner/not-found"
    assert client.get("/api/auth/me").get_json()["type"] == "https://errors.example.test/runner/unauthenticated"


def test_the_error_type_base_follows_app_config(app, anon):
    app.config["ERROR_TYPE_BASE"] = "urn:runner:error:"
    assert anon.get("/api/nope").get_json()["type"] == "urn:runner:error:not-found"
    assert anon.post("/api/auth/token", json={}).get_json()["type"] == "urn:runner:error:validation-failed"


def test_an_unexpected_exception_is_a_500_problem_without_internals(app, anon, make_user, login, caplog):
    secret = "sk-live-5ecret-do-not-leak"

    def explode():
        raise RuntimeError(f"database password is {secret}")

    # A test-only route, added before the app serves its first request (Flask refuses later).
    app.add_url_rule("/api/test-explode", "test_explode", explode, methods=["GET"])
    _, email = make_user()
    api = login(email)
    response = api.get("/api/test-explode")
    body = assert_problem(response, 500, "internal-error")
    text = response.get_data(as_text=True)
    assert secret not in text and "Traceback" not in text and "RuntimeError" not in text
    assert set(body) == {"type", "title", "status", "detail", "instance"}
    # The details go to the server log instead, where an operator can find them.
    assert any(secret in (record.exc_text or "") or secret in str(record.exc_info) for record in caplog.records)


def test_an_unexpected_exception_outside_api_is_a_500_problem(app, anon):
    app.add_url_rule("/boom", "test_boom", lambda: 1 / 0)
    response = anon.get("/boom")
    assert_problem(response, 500, "internal-error")
    assert "ZeroDivisionError" not in response.get_data(as_text=True)


def _exhaust_me(api, count):
    return [api.get("/api/auth/me") for _ in range(count)]


def test_the_61st_request_in_a_minute_is_a_429_problem(user_api, make_user, login):
    responses = _exhaust_me(user_api, 61)
    assert all(r.status_code == 200 for r in responses[:60])
    first, last_ok, limited = responses[0], responses[59], responses[60]
    assert first.headers["X-RateLimit-Limit"] == "60"
    assert first.headers["X-RateLimit-Remaining"] == "59"
    assert last_ok.headers["X-RateLimit-Remaining"] == "0"
    assert int(first.headers["X-RateLimit-Reset"]) > 0

    body = assert_problem(limited, 429, "rate-limited")
    retry_after = int(limited.headers["Retry-After"])
    assert 0 < retry_after <= 60
    assert body["retryAfter"] == retry_after
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert name in limited.headers
    assert limited.headers["X-RateLimit-Remaining"] == "0"

    # The limit is per user: someone else is unaffected.
    _, other_email = make_user()
    other = login(other_email).get("/api/auth/me")
    assert other.status_code == 200
    assert other.headers["X-RateLimit-Remaining"] == "59"


def test_a_users_other_tokens_share_the_users_limit(user_api, login):
    _exhaust_me(user_api, 60)
    second_device = login(user_api.email)
    assert_problem(second_device.get("/api/auth/me"), 429, "rate-limited")


def test_anonymous_requests_are_limited_per_client_address(app, anon, make_user):
    # An empty body is refused by validation, cheaply, but every attempt is counted.
    answers = [anon.post("/api/auth/token", json={}).status_code for _ in range(60)]
    assert answers == [422] * 60
    body = assert_problem(anon.post("/api/auth/token", json={}), 429, "rate-limited")
    assert body["retryAfter"] > 0

    elsewhere = anon.post("/api/auth/token", json={}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert elsewhere.status_code == 422
    # A signed-in user at the exhausted address is counted as themselves. (The token is made
    # directly: logging in from this address is exactly what is now refused.)
    user_id, _ = make_user()
    with app.app_context():
        from runner import auth
        from runner.extensions import db
        from runner.models import User

        _, token = auth.issue_token(db.session.get(User, user_id), "phone", ["*"])
        db.session.commit()
    assert anon.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_successful_responses_carry_no_retry_after(user_api):
    # Flask-Limiter would add one to every limited response; only a 429 tells a client to wait.
    response = user_api.get("/api/auth/me")
    assert response.status_code == 200 and "X-RateLimit-Remaining" in response.headers
    assert "Retry-After" not in response.headers


def test_behind_a_trusted_proxy_anonymous_clients_are_told_apart(config, redis_conn, make_app):
    from helpers import ApiClient

    config.PROXY_COUNT = 1
    client = ApiClient(make_app(config).test_client())
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(60):
        client.post("/api/auth/token", json={}, headers={"X-Forwarded-For": "198.51.100.7"}, environ_base=proxy)
    limited = client.post("/api/auth/token", json={}, headers={"X-Forwarded-For": "198.51.100.7"}, environ_base=proxy)
    assert_problem(limited, 429, "rate-limited")
    # Another client behind the same proxy has its own budget.
    other = client.post("/api/auth/token", json={}, headers={"X-Forwarded-For": "198.51.100.8"}, environ_base=proxy)
    assert other.status_code == 422
