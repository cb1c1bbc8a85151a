"""POST /api/auth/token, /elevate, /logout and GET /api/auth/me: Sanctum-style tokens end to end."""
import datetime as dt
import hashlib

from helpers import PASSWORD, ApiClient, assert_problem
from runner.extensions import db
from runner.models import PersonalAccessToken, utcnow

MOBILE = ["projects:*", "runs:start", "runs:control", "git:commit", "settings:read"]


def test_token_has_id_and_secret_and_the_mobile_abilities_by_default(anon, make_user):
    _, email = make_user()
    response = anon.post("/api/auth/token", json={"email": email.upper(), "password": PASSWORD})
    assert response.status_code == 201
    body = response.get_json()
    token_id, _, secret = body["token"].partition("|")
    assert token_id.isdigit() and len(secret) == 40 and secret.isalnum()
    assert body["abilities"] == MOBILE
    assert body["expiresAt"] is None


def test_only_the_sha256_of_the_secret_is_stored(app, anon, make_user):
    _, email = make_user()
    token = anon.post("/api/auth/token", json={"email": email, "password": PASSWORD}).get_json()["token"]
    token_id, _, secret = token.partition("|")
    with app.app_context():
        row = db.session.get(PersonalAccessToken, int(token_id))
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        stored = [str(v) for v in (row.name, row.abilities, row.token_hash)]
        assert not any(secret in value for value in stored)


def test_wrong_password_and_unknown_email_get_the_same_401(anon, make_user):
    _, email = make_user()
    wrong = anon.post("/api/auth/token", json={"email": email, "password": "nope"})
    unknown = anon.post("/api/auth/token", json={"email": "ghost@example.com", "password": "nope"})
    assert_problem(wrong, 401, "invalid-credentials")
    assert_problem(unknown, 401, "invalid-credentials")
    assert wrong.get_json() == unknown.get_json()


def test_requested_abilities_are_granted_as_asked(anon, make_user):
    _, email = make_user()
    response = anon.post(
        "/api/auth/token", json={"email": email, "password": PASSWORD, "abilities": ["projects:read"]}
    )
    assert response.get_json()["abilities"] == ["projects:read"]
    api = ApiClient(anon.client, response.get_json()["token"])
    assert api.get("/api/auth/me").get_json()["abilities"] == ["projects:read"]
    # settings:read is not among them: the settings list is refused with the ability named.
    body = assert_problem(api.get("/api/settings/server-params"), 403, "missing-ability")
    assert body["requiredAbility"] == "settings:read"


def test_elevated_abilities_are_never_granted_by_the_token_endpoint(anon, make_user):
    _, email = make_user(admin=True)
    for abilities in (["git:push"], ["settings:write"], ["*"], ["git:*"], ["settings:*"]):
        response = anon.post(
            "/api/auth/token", json={"email": email, "password": PASSWORD, "abilities": abilities}
        )
        body = assert_problem(response, 422, "validation-failed")
        assert "abilities" in body["errors"]


def test_unknown_abilities_are_a_422(anon, make_user):
    _, email = make_user()
    response = anon.post(
        "/api/auth/token", json={"email": email, "password": PASSWORD, "abilities": ["projects:fly"]}
    )
    assert "projects:fly" in str(assert_problem(response, 422)["errors"]["abilities"])


def test_me_returns_the_user_and_token_abilities_in_camel_case(user_api):
    response = user_api.get("/api/auth/me")
    assert response.status_code == 200
    body = response.get_json()
    assert body["email"] == user_api.email
    assert body["isAdmin"] is False
    assert body["abilities"] == MOBILE
    assert body["createdAt"].endswith("Z")
    dt.datetime.fromisoformat(body["createdAt"].replace("Z", "+00:00"))
    assert body["token"]["lastUsedAt"].endswith("Z")


def test_missing_malformed_and_unknown_tokens_are_401(anon, user_api):
    for header in (None, "Bearer", "Basic abc", "Bearer 999|nothing", "Bearer abc|def", "Bearer plain"):
        headers = {"Authorization": header} if header else {}
        response = anon.get("/api/auth/me", headers=headers)
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    token_id, _, secret = user_api.token.partition("|")
    tampered = f"{token_id}|{secret[:-1]}{'a' if secret[-1] != 'a' else 'b'}"
    assert_problem(anon.get("/api/auth/me", headers={"Authorization": f"Bearer {tampered}"}), 401)


def test_logout_revokes_only_the_calling_token(anon, make_user, login):
    _, email = make_user()
    phone, tablet = login(email), login(email)
    response = phone.post("/api/auth/logout")
    assert response.status_code == 204 and response.data == b""
    assert_problem(phone.get("/api/auth/me"), 401)
    assert tablet.get("/api/auth/me").status_code == 200


def test_expired_tokens_are_401(app, user_api):
    token_id = int(user_api.token.split("|")[0])
    with app.app_context():
        db.session.get(PersonalAccessToken, token_id).expires_at = utcnow() - dt.timedelta(seconds=1)
        db.session.commit()
    assert_problem(user_api.get("/api/auth/me"), 401)


def test_configured_token_lifetime_sets_expires_at(app, anon, make_user):
    app.config["TOKEN_TTL_SECONDS"] = 3600
    _, email = make_user()
    body = anon.post("/api/auth/token", json={"email": email, "password": PASSWORD}).get_json()
    expires = dt.datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00"))
    assert dt.timedelta(minutes=59) < expires - utcnow() <= dt.timedelta(hours=1)


def test_last_used_at_is_recorded_and_refreshed_once_a_minute(app, user_api):
    token_id = int(user_api.token.split("|")[0])
    first = user_api.get("/api/auth/me").get_json()["token"]["lastUsedAt"]
    assert first is not None
    # Within the touch interval a read stays a read.
    assert user_api.get("/api/auth/me").get_json()["token"]["lastUsedAt"] == first
    hour_ago = utcnow() - dt.timedelta(hours=1)
    with app.app_context():
        db.session.get(PersonalAccessToken, token_id).last_used_at = hour_ago
        db.session.commit()
    refreshed = user_api.get("/api/auth/me").get_json()["token"]["lastUsedAt"]
    assert dt.datetime.fromisoformat(refreshed.replace("Z", "+00:00")) > hour_ago + dt.timedelta(minutes=59)


def test_elevation_adds_git_push_for_a_short_time(user_api):
    response = user_api.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["git:push"]})
    assert response.status_code == 201
    body = response.get_json()
    assert body["abilities"] == MOBILE + ["git:push"]
    expires = dt.datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00"))
    assert dt.timedelta(minutes=14) < expires - utcnow() <= dt.timedelta(minutes=15)
    elevated = ApiClient(user_api.client, body["token"])
    assert "git:push" in elevated.get("/api/auth/me").get_json()["abilities"]
    # The caller's own token is unchanged.
    assert "git:push" not in user_api.get("/api/auth/me").get_json()["abilities"]


def test_elevation_rechecks_the_password(user_api):
    response = user_api.post("/api/auth/elevate", json={"password": "wrong", "abilities": ["git:push"]})
    assert "password" in assert_problem(response, 422, "validation-failed")["errors"]


def test_settings_write_elevation_needs_an_admin(user_api, make_user, login):
    response = user_api.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["settings:write"]})
    assert_problem(response, 403, "admin-required")
    _, admin_email = make_user(admin=True)
    admin = login(admin_email)
    response = admin.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["settings:write"]})
    assert response.status_code == 201
    assert "settings:write" in response.get_json()["abilities"]


def test_elevation_only_grants_elevated_abilities(user_api):
    response = user_api.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["projects:write"]})
    assert "abilities" in assert_problem(response, 422)["errors"]


def test_elevation_needs_a_token(anon):
    assert_problem(anon.post("/api/auth/elevate", json={"password": "x", "abilities": ["git:push"]}), 401)


def test_a_password_hashed_under_older_parameters_is_rehashed_on_login(app, anon, make_user):
    from runner.models import User

    user_id, email = make_user()  # hashed with the test profile
    app.config["PASSWORD_HASH_PROFILE"] = "RFC_9106_LOW_MEMORY"
    assert anon.post("/api/auth/token", json={"email": email, "password": PASSWORD}).status_code == 201
    with app.app_context():
        stored = db.session.get(User, user_id).password_hash
    assert stored.startswith("$argon2id$") and "m=65536,t=3,p=4" in stored
    # And the upgraded hash still lets the user in.
    assert anon.post("/api/auth/token", json={"email": email, "password": PASSWORD}).status_code == 201
