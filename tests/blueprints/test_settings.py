"""GET/PUT /api/settings/server-params and /api/settings/providers: merged, typed, masked, admin-only."""
import json
import stat

import pytest

from helpers import PASSWORD, ApiClient, assert_problem
from runner import auth, settings
from runner.extensions import db
from runner.models import AgentProvider, ServerParam, User

PARAMS = "/api/settings/server-params"
PROVIDERS = "/api/settings/providers"
SECRET = "sk-ant-test-0123456789abcdef"


def params_by_key(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return {item["key"]: item for item in response.get_json()["data"]}


def stored_rows(app):
    with app.app_context():
        return {row.key: row.value for row in db.session.scalars(db.select(ServerParam))}


@pytest.fixture
def demoted_api(app, client, make_user):
    """A non-admin holding settings:write, as if demoted after an elevation was issued."""
    user_id, _ = make_user()
    with app.app_context():
        _, plaintext = auth.issue_token(
            db.session.get(User, user_id), "demoted", ["settings:read", "settings:write"]
        )
        db.session.commit()
    return ApiClient(client, plaintext)


# --- GET /api/settings/server-params ------------------------------------------------------------


def test_every_registry_param_is_listed_with_its_default(user_api):
    params = params_by_key(user_api.get(PARAMS))
    assert list(params) == list(settings.REGISTRY)
    max_concurrent = params["runs.maxConcurrent"]
    assert max_concurrent == {
        "key": "runs.maxConcurrent",
        "type": "integer",
        "value": 2,
        "default": 2,
        "secret": False,
        "isSet": True,
        "source": "default",
        "description": settings.REGISTRY["runs.maxConcurrent"].description,
    }
    assert params["safety.autoGitPush"]["value"] is False
    assert params["safety.autoGitPush"]["type"] == "boolean"
    assert params["git.authorName"]["value"] == "Runner"
    for key, param in settings.REGISTRY.items():
        assert params[key]["type"] == param.type
        assert params[key]["secret"] is param.secret
        assert params[key]["source"] == "default"


def test_unset_secrets_show_null_and_is_set_false(user_api):
    params = params_by_key(user_api.get(PARAMS))
    secrets = [key for key, param in settings.REGISTRY.items() if param.secret]
    assert {"providers.anthropicApiKey", "providers.openaiApiKey", "git.httpsToken", "apns.privateKey"} <= set(
        secrets
    )
    for key in secrets:
        assert params[key]["value"] is None
        assert params[key]["isSet"] is False
        assert params[key]["default"] is None


def test_reading_needs_settings_read(anon, app, client, make_user):
    assert_problem(anon.get(PARAMS), 401, "unauthenticated")
    user_id, _ = make_user()
    with app.app_context():
        _, plaintext = auth.issue_token(db.session.get(User, user_id), "ci", ["projects:read"])
        db.session.commit()
    body = assert_problem(ApiClient(client, plaintext).get(PARAMS), 403, "missing-ability")
    assert body["requiredAbility"] == "settings:read"


def test_environment_overrides_the_default(user_api, monkeypatch):
    monkeypatch.setenv("RUNNER_RUNS_MAX_CONCURRENT", "7")
    monkeypatch.setenv("RUNNER_SAFETY_AUTO_GIT_PUSH", "true")
    monkeypatch.setenv("RUNNER_GIT_AUTHOR_NAME", "Build Bot")
    params = params_by_key(user_api.get(PARAMS))
    assert params["runs.maxConcurrent"]["value"] == 7
    assert params["runs.maxConcurrent"]["source"] == "environment"
    assert params["runs.maxConcurrent"]["default"] == 2
    assert params["safety.autoGitPush"]["value"] is True
    assert params["safety.autoGitPush"]["source"] == "environment"
    assert params["git.authorName"]["value"] == "Build Bot"
    assert params["runs.timeoutSeconds"]["source"] == "default"


def test_environment_values_of_the_wrong_type_are_ignored(user_api, monkeypatch):
    monkeypatch.setenv("RUNNER_RUNS_MAX_CONCURRENT", "lots")
    monkeypatch.setenv("RUNNER_RUNS_TIMEOUT_SECONDS", "0")  # below the minimum of 1
    monkeypatch.setenv("RUNNER_NOTIFICATIONS_ENABLED", "perhaps")
    params = params_by_key(user_api.get(PARAMS))
    for key, default in (("runs.maxConcurrent", 2), ("runs.timeoutSeconds", 3600), ("notifications.enabled", True)):
        assert params[key]["value"] == default, key
        assert params[key]["source"] == "default", key


def test_environment_false_values_turn_a_boolean_off(user_api, monkeypatch):
    monkeypatch.setenv("RUNNER_NOTIFICATIONS_ENABLED", "off")
    params = params_by_key(user_api.get(PARAMS))
    assert params["notifications.enabled"]["value"] is False
    assert params["notifications.enabled"]["source"] == "environment"


def test_a_secret_from_the_environment_is_masked(user_api, monkeypatch):
    monkeypatch.setenv("RUNNER_PROVIDERS_ANTHROPIC_API_KEY", SECRET)
    response = user_api.get(PARAMS)
    assert SECRET not in response.get_data(as_text=True)
    key = params_by_key(response)["providers.anthropicApiKey"]
    assert key["value"] == "••••"
    assert key["isSet"] is True
    assert key["source"] == "environment"
    assert key["default"] is None


def test_stored_values_beat_the_environment(admin_api, monkeypatch):
    monkeypatch.setenv("RUNNER_RUNS_MAX_CONCURRENT", "7")
    params = params_by_key(admin_api.put(PARAMS, json={"runs.maxConcurrent": 3}))
    assert params["runs.maxConcurrent"]["value"] == 3
    assert params["runs.maxConcurrent"]["source"] == "stored"
    # Resetting the stored value falls back to the environment, not straight to the default.
    params = params_by_key(admin_api.put(PARAMS, json={"runs.maxConcurrent": None}))
    assert params["runs.maxConcurrent"]["value"] == 7
    assert params["runs.maxConcurrent"]["source"] == "environment"


# --- PUT /api/settings/server-params ------------------------------------------------------------


def test_partial_update_changes_only_the_given_params(app, admin_api):
    response = admin_api.put(
        PARAMS,
        json={"runs.maxConcurrent": 4, "safety.autoGitPush": True, "git.authorEmail": "bot@example.com"},
    )
    params = params_by_key(response)
    assert params["runs.maxConcurrent"]["value"] == 4
    assert params["runs.maxConcurrent"]["source"] == "stored"
    assert params["safety.autoGitPush"]["value"] is True
    assert params["git.authorEmail"]["value"] == "bot@example.com"
    assert (params["git.authorName"]["value"], params["git.authorName"]["source"]) == ("Runner", "default")
    assert stored_rows(app) == {
        "runs.maxConcurrent": 4,
        "safety.autoGitPush": True,
        "git.authorEmail": "bot@example.com",
    }
    # A later partial update keeps what the earlier one set.
    params = params_by_key(admin_api.put(PARAMS, json={"runs.timeoutSeconds": 600}))
    assert params["runs.maxConcurrent"]["value"] == 4
    assert params["runs.timeoutSeconds"]["value"] == 600
    # And readers see the same merged view.
    assert params_by_key(admin_api.get(PARAMS))["runs.timeoutSeconds"]["value"] == 600
    with app.app_context():
        assert settings.get("runs.timeoutSeconds") == 600
        assert settings.get("safety.autoGitPush") is True


def test_stored_rows_remember_who_changed_them(app, admin_api):
    admin_api.put(PARAMS, json={"docs.folder": "notes/ai"})
    with app.app_context():
        row = db.session.get(ServerParam, "docs.folder")
        admin = db.session.scalar(db.select(User).where(User.email == admin_api.email))
        assert row.updated_by_id == admin.id


def test_secrets_are_write_only_and_encrypted_at_rest(app, admin_api):
    response = admin_api.put(PARAMS, json={"providers.anthropicApiKey": SECRET, "git.httpsToken": "ghp_abc123"})
    text = response.get_data(as_text=True)
    assert SECRET not in text and "ghp_abc123" not in text
    params = params_by_key(response)
    for key in ("providers.anthropicApiKey", "git.httpsToken"):
        assert params[key]["value"] == "••••"
        assert params[key]["isSet"] is True
        assert params[key]["source"] == "stored"
        assert params[key]["default"] is None
    assert params["providers.openaiApiKey"]["isSet"] is False
    # GET never shows it either.
    assert SECRET not in admin_api.get(PARAMS).get_data(as_text=True)
    rows = stored_rows(app)
    assert SECRET not in json.dumps(rows) and "ghp_abc123" not in json.dumps(rows)
    assert set(rows["providers.anthropicApiKey"]) == {"encrypted"}
    with app.app_context():
        # The server itself reads the plaintext back.
        assert settings.get("providers.anthropicApiKey") == SECRET
        assert settings.get("git.httpsToken") == "ghp_abc123"


def test_a_secret_is_unreadable_under_another_secret_key(admin_api, config):
    admin_api.put(PARAMS, json={"providers.openaiApiKey": SECRET})
    from runner import create_app

    config.SECRET_KEY = "a-different-secret-key"
    other = create_app(config)
    with other.app_context():
        try:
            # Not decryptable: the param reads as unset rather than as ciphertext or garbage.
            assert settings.get("providers.openaiApiKey") is None
        finally:
            db.session.remove()
            db.engine.dispose()


def test_null_resets_a_param_to_its_default(app, admin_api):
    admin_api.put(PARAMS, json={"runs.maxConcurrent": 5, "providers.anthropicApiKey": SECRET})
    params = params_by_key(admin_api.put(PARAMS, json={"runs.maxConcurrent": None, "providers.anthropicApiKey": None}))
    assert params["runs.maxConcurrent"]["value"] == 2
    assert params["runs.maxConcurrent"]["source"] == "default"
    assert params["providers.anthropicApiKey"]["value"] is None
    assert params["providers.anthropicApiKey"]["isSet"] is False
    assert stored_rows(app) == {}
    with app.app_context():
        assert settings.get("providers.anthropicApiKey") is None
    # Resetting what was never set is harmless.
    assert params_by_key(admin_api.put(PARAMS, json={"git.authorName": None}))["git.authorName"]["value"] == "Runner"


def test_an_empty_body_changes_nothing(app, admin_api):
    params = params_by_key(admin_api.put(PARAMS, json={}))
    assert params["runs.maxConcurrent"]["value"] == 2
    assert stored_rows(app) == {}


def test_unknown_keys_are_a_422_naming_the_key(app, admin_api):
    response = admin_api.put(PARAMS, json={"runs.maxConcurrent": 3, "runs.maxParallel": 3})
    body = assert_problem(response, 422, "validation-failed")
    assert list(body["errors"]) == ["runs.maxParallel"]
    assert stored_rows(app) == {}


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("safety.autoGitPush", "true", "boolean"),
        ("safety.autoGitPush", 1, "boolean"),
        ("notifications.enabled", 0, "boolean"),
        ("runs.maxConcurrent", True, "integer"),
        ("runs.maxConcurrent", "3", "integer"),
        ("runs.maxConcurrent", 2.5, "integer"),
        ("runs.maxConcurrent", 0, "at least 1"),
        ("runs.cancelGraceSeconds", -1, "at least 0"),
        ("git.authorName", 42, "string"),
        ("git.authorName", ["Runner"], "string"),
        ("providers.anthropicApiKey", 12345, "string"),
    ],
)
def test_wrong_types_are_a_422_naming_the_key(app, admin_api, key, value, message):
    response = admin_api.put(PARAMS, json={key: value})
    body = assert_problem(response, 422, "validation-failed")
    assert list(body["errors"]) == [key]
    assert message in " ".join(body["errors"][key])
    assert stored_rows(app) == {}


def test_an_empty_secret_is_a_422_not_a_way_to_hide_the_environment(admin_api, monkeypatch):
    monkeypatch.setenv("RUNNER_PROVIDERS_OPENAI_API_KEY", "sk-from-env")
    response = admin_api.put(PARAMS, json={"providers.openaiApiKey": ""})
    assert "null" in assert_problem(response, 422)["errors"]["providers.openaiApiKey"][0]
    listed = {p["key"]: p for p in admin_api.get(PARAMS).get_json()["data"]}
    assert listed["providers.openaiApiKey"]["source"] == "environment"
    assert listed["providers.openaiApiKey"]["isSet"] is True


def test_a_rejected_secret_is_not_echoed_in_the_error(admin_api):
    response = admin_api.put(PARAMS, json={"providers.anthropicApiKey": [SECRET]})
    assert_problem(response, 422)
    assert SECRET not in response.get_data(as_text=True)


def test_nothing_is_written_when_any_entry_is_bad(app, admin_api):
    admin_api.put(PARAMS, json={"git.authorName": "Before"})
    response = admin_api.put(
        PARAMS,
        json={
            "git.authorName": "After",
            "providers.anthropicApiKey": SECRET,
            "runs.maxConcurrent": 8,
            "runs.timeoutSeconds": "soon",
            "safety.autoGitPush": "yes",
            "runs.maxParallel": 2,
        },
    )
    body = assert_problem(response, 422)
    # Every bad entry is named at once, so one round trip shows all there is to fix.
    assert set(body["errors"]) == {"runs.timeoutSeconds", "safety.autoGitPush", "runs.maxParallel"}
    assert stored_rows(app) == {"git.authorName": "Before"}
    params = params_by_key(admin_api.get(PARAMS))
    assert params["git.authorName"]["value"] == "Before"
    assert params["providers.anthropicApiKey"]["isSet"] is False


@pytest.mark.parametrize("body", [[{"runs.maxConcurrent": 3}], "runs.maxConcurrent=3", 3, None])
def test_a_body_that_is_not_an_object_is_a_422(app, admin_api, body):
    response = admin_api.open("PUT", PARAMS, data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert_problem(response, 422, "validation-failed")
    assert stored_rows(app) == {}


def test_malformed_json_is_a_400(admin_api):
    response = admin_api.open("PUT", PARAMS, data="{not json", headers={"Content-Type": "application/json"})
    assert_problem(response, 400)


def test_writing_needs_settings_write(app, user_api):
    body = assert_problem(user_api.put(PARAMS, json={"runs.maxConcurrent": 3}), 403, "missing-ability")
    assert body["requiredAbility"] == "settings:write"
    assert stored_rows(app) == {}


def test_writing_needs_an_admin_even_with_settings_write(app, demoted_api):
    assert demoted_api.get(PARAMS).status_code == 200
    assert_problem(demoted_api.put(PARAMS, json={"runs.maxConcurrent": 3}), 403, "admin-required")
    assert stored_rows(app) == {}


def test_a_non_admin_is_refused_before_the_body_is_looked_at(demoted_api):
    # As with a missing ability: a non-admin learns nothing about what a valid body would be.
    assert_problem(demoted_api.put(PARAMS, json={"runs.maxConcurrent": "x"}), 403, "admin-required")
    assert_problem(demoted_api.put(PROVIDERS + "/codex", json={"enabled": "x"}), 403, "admin-required")


def test_writing_needs_a_token(anon, app):
    assert_problem(anon.put(PARAMS, json={"runs.maxConcurrent": 3}), 401)
    assert stored_rows(app) == {}


# --- GET /api/settings/providers ----------------------------------------------------------------


@pytest.fixture
def fake_claude(tmp_path, monkeypatch):
    """A directory on PATH holding an executable named `claude` (and nothing else)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    claude = bin_dir / "claude"
    claude.write_text("#!/bin/sh\nexit 0\n")
    claude.chmod(claude.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    return claude


def test_providers_are_the_seeded_three_in_order(user_api):
    response = user_api.get(PROVIDERS)
    assert response.status_code == 200
    body = response.get_json()
    assert body["meta"] == {"nextCursor": None}
    assert [p["key"] for p in body["data"]] == ["claude-code", "codex", "command"]
    claude, codex, command = body["data"]
    assert claude["name"] == "Claude Code" and claude["kind"] == "claude-code"
    assert claude["enabled"] is True and codex["enabled"] is True
    assert claude["command"][0] == "claude" and "sonnet" in claude["models"]
    assert codex["command"][0] == "codex"
    assert command["enabled"] is False and command["command"] == [] and command["models"] == []
    assert isinstance(claude["id"], int)
    assert claude["updatedAt"].endswith("Z")


def test_providers_page_with_a_cursor(user_api):
    first = user_api.get(PROVIDERS + "?limit=2").get_json()
    assert [p["key"] for p in first["data"]] == ["claude-code", "codex"]
    cursor = first["meta"]["nextCursor"]
    assert cursor
    second = user_api.get(PROVIDERS, query_string={"limit": 2, "cursor": cursor}).get_json()
    assert [p["key"] for p in second["data"]] == ["command"]
    assert second["meta"]["nextCursor"] is None
    assert_problem(user_api.get(PROVIDERS, query_string={"cursor": cursor + "x"}), 400, "invalid-cursor")


def test_available_tells_whether_the_executable_is_on_path(user_api, fake_claude):
    providers = {p["key"]: p for p in user_api.get(PROVIDERS).get_json()["data"]}
    assert providers["claude-code"]["available"] is True
    assert providers["codex"]["available"] is False  # not in our PATH
    assert providers["command"]["available"] is False  # no command at all


def test_available_is_false_without_the_executable(user_api, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    providers = user_api.get(PROVIDERS).get_json()["data"]
    assert [p["available"] for p in providers] == [False, False, False]


def test_a_file_without_the_execute_bit_is_not_available(user_api, fake_claude):
    fake_claude.chmod(0o644)
    providers = {p["key"]: p for p in user_api.get(PROVIDERS).get_json()["data"]}
    assert providers["claude-code"]["available"] is False


def test_listing_providers_needs_settings_read(anon, app, client, make_user):
    assert_problem(anon.get(PROVIDERS), 401)
    user_id, _ = make_user()
    with app.app_context():
        _, plaintext = auth.issue_token(db.session.get(User, user_id), "ci", ["projects:*"])
        db.session.commit()
    body = assert_problem(ApiClient(client, plaintext).get(PROVIDERS), 403, "missing-ability")
    assert body["requiredAbility"] == "settings:read"


# --- PUT /api/settings/providers/{key} ----------------------------------------------------------


def test_disable_a_provider(admin_api):
    response = admin_api.put(PROVIDERS + "/codex", json={"enabled": False})
    assert response.status_code == 200
    body = response.get_json()
    assert body["key"] == "codex" and body["enabled"] is False
    assert body["command"][0] == "codex"  # untouched
    listed = {p["key"]: p for p in admin_api.get(PROVIDERS).get_json()["data"]}
    assert listed["codex"]["enabled"] is False
    assert listed["claude-code"]["enabled"] is True


def test_configure_and_enable_the_command_provider(app, admin_api, fake_claude):
    argv = [str(fake_claude), "--print", "{prompt}", "--model", "{model}"]
    response = admin_api.put(PROVIDERS + "/command", json={"enabled": True, "command": argv, "models": ["m1", "m2"]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["enabled"] is True
    assert body["command"] == argv
    assert body["models"] == ["m1", "m2"]
    assert body["available"] is True  # an absolute path to an executable counts
    with app.app_context():
        row = db.session.scalar(db.select(AgentProvider).where(AgentProvider.key == "command"))
        assert (row.enabled, row.command, row.models) == (True, argv, ["m1", "m2"])


def test_change_models_only(admin_api):
    body = admin_api.put(PROVIDERS + "/claude-code", json={"models": ["opus"]}).get_json()
    assert body["models"] == ["opus"]
    assert body["enabled"] is True
    assert body["command"][0] == "claude"


def test_unknown_provider_is_a_404(admin_api):
    body = assert_problem(admin_api.put(PROVIDERS + "/gemini", json={"enabled": True}), 404, "not-found")
    assert "gemini" in body["detail"]


def test_enabling_the_command_provider_without_a_command_is_a_422(app, admin_api):
    body = assert_problem(admin_api.put(PROVIDERS + "/command", json={"enabled": True}), 422, "validation-failed")
    assert "command" in body["errors"]
    body = assert_problem(
        admin_api.put(PROVIDERS + "/command", json={"enabled": True, "command": []}), 422, "validation-failed"
    )
    assert "command" in body["errors"]
    # Emptying the command of an enabled provider is refused the same way.
    body = assert_problem(admin_api.put(PROVIDERS + "/claude-code", json={"command": []}), 422)
    assert "command" in body["errors"]
    with app.app_context():
        rows = {p.key: p for p in db.session.scalars(db.select(AgentProvider))}
        assert rows["command"].enabled is False
        assert rows["claude-code"].command[0] == "claude"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"enabled": "yes"}, "enabled"),
        ({"enabled": 1}, "enabled"),
        ({"enabled": None}, "enabled"),
        ({"command": "ls"}, "command"),
        ({"command": ["ls", 3]}, "command"),
        ({"command": ["ls", ""]}, "command"),
        ({"models": "opus"}, "models"),
        ({"name": "Renamed"}, "name"),
    ],
)
def test_provider_fields_of_the_wrong_type_are_a_422(app, admin_api, body, field):
    response = admin_api.put(PROVIDERS + "/codex", json=body)
    assert field in assert_problem(response, 422, "validation-failed")["errors"]
    with app.app_context():
        row = db.session.scalar(db.select(AgentProvider).where(AgentProvider.key == "codex"))
        assert (row.name, row.enabled, row.command[0], row.models) == ("Codex", True, "codex", ["gpt-5-codex", "gpt-5"])


def test_changing_a_provider_needs_settings_write_and_an_admin(app, anon, user_api, demoted_api):
    assert_problem(anon.put(PROVIDERS + "/codex", json={"enabled": False}), 401)
    body = assert_problem(user_api.put(PROVIDERS + "/codex", json={"enabled": False}), 403, "missing-ability")
    assert body["requiredAbility"] == "settings:write"
    assert_problem(demoted_api.put(PROVIDERS + "/codex", json={"enabled": False}), 403, "admin-required")
    with app.app_context():
        assert db.session.scalar(db.select(AgentProvider.enabled).where(AgentProvider.key == "codex")) is True


# --- rate limit of settings writes --------------------------------------------------------------


def test_settings_writes_are_limited_to_20_a_minute_per_user(admin_api):
    first = admin_api.put(PARAMS, json={"runs.maxConcurrent": 3})
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "20"
    assert first.headers["X-RateLimit-Remaining"] == "19"
    assert int(first.headers["X-RateLimit-Reset"]) > 0
    for n in range(2, 21):
        response = admin_api.put(PARAMS, json={"runs.maxConcurrent": n})
        assert response.status_code == 200, (n, response.get_json())
        assert response.headers["X-RateLimit-Remaining"] == str(20 - n)
    limited = admin_api.put(PARAMS, json={"runs.maxConcurrent": 99})
    body = assert_problem(limited, 429, "rate-limited")
    assert limited.headers["X-RateLimit-Limit"] == "20"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) > 0
    retry_after = int(limited.headers["Retry-After"])
    assert 0 < retry_after <= 61  # at most one minute's window, rounded up
    assert body["retryAfter"] == retry_after
    # The refused write did not happen.
    assert params_by_key(admin_api.get(PARAMS))["runs.maxConcurrent"]["value"] == 20


def test_the_settings_write_limit_is_shared_by_params_and_providers(admin_api):
    for n in range(10):
        assert admin_api.put(PARAMS, json={"runs.maxConcurrent": n + 1}).status_code == 200
        assert admin_api.put(PROVIDERS + "/codex", json={"enabled": n % 2 == 0}).status_code == 200
    assert_problem(admin_api.put(PROVIDERS + "/codex", json={"enabled": True}), 429, "rate-limited")
    assert_problem(admin_api.put(PARAMS, json={"runs.maxConcurrent": 1}), 429, "rate-limited")
    # Reads are not settings writes: they stay under the default limit.
    assert admin_api.get(PARAMS).status_code == 200


def test_the_settings_write_limit_is_per_user(admin_api, make_user, login):
    for n in range(20):
        assert admin_api.put(PARAMS, json={"runs.maxConcurrent": n + 1}).status_code == 200
    assert admin_api.put(PARAMS, json={"runs.maxConcurrent": 1}).status_code == 429
    _, email = make_user(admin=True)
    other = login(email)
    elevated = other.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["settings:write"]})
    other = ApiClient(other.client, elevated.get_json()["token"])
    response = other.put(PARAMS, json={"runs.maxConcurrent": 5})
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "19"
