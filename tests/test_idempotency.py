"""Idempotency-Key on POST: a retried request is answered from the first response, never run twice."""
import threading

from helpers import PASSWORD, ApiClient, assert_problem
from runner.extensions import db
from runner.models import Device

TOKEN = "ab" * 32


def _devices(app):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Device))


def test_a_retried_post_is_replayed_not_run_again(app, user_api):
    body = {"token": TOKEN, "environment": "sandbox", "name": "iPhone"}
    first = user_api.post("/api/devices", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    retry = user_api.post("/api/devices", json=body, headers={"Idempotency-Key": "k-1"})
    # Run again, the upsert would answer 200; the replay answers the first 201 verbatim.
    assert retry.status_code == 201
    assert retry.get_data() == first.get_data()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert _devices(app) == 1
    # Without the key the request runs: the device exists, so it is an update (200).
    assert user_api.post("/api/devices", json=body).status_code == 200


def test_the_same_key_with_another_body_is_a_422(user_api):
    headers = {"Idempotency-Key": "k-2"}
    user_api.post("/api/devices", json={"token": TOKEN, "environment": "sandbox"}, headers=headers)
    response = user_api.post("/api/devices", json={"token": TOKEN, "environment": "production"}, headers=headers)
    body = assert_problem(response, 422, "idempotency-key-reused")
    assert "Idempotency-Key" in body["errors"]


def test_json_key_order_does_not_make_a_different_request(user_api):
    headers = {"Idempotency-Key": "k-order", "Content-Type": "application/json"}
    spaced = '{"token": "%s", "environment": "sandbox"}' % TOKEN
    reordered = '{"environment":"sandbox","token":"%s"}' % TOKEN
    first = user_api.open("POST", "/api/devices", data=spaced, headers=headers)
    again = user_api.open("POST", "/api/devices", data=reordered, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"


def test_keys_belong_to_one_user(app, user_api, make_user, login):
    _, email = make_user()
    other = login(email)
    headers = {"Idempotency-Key": "shared"}
    mine = user_api.post("/api/devices", json={"token": TOKEN, "environment": "sandbox"}, headers=headers)
    # Another user's request under the same key is neither a replay of mine nor a "reused key".
    theirs = other.post("/api/devices", json={"token": "cd" * 32, "environment": "production"}, headers=headers)
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["token"] == "cd" * 32
    assert _devices(app) == 2


def test_the_answer_is_kept_for_24_hours(redis_conn, user_api):
    user_api.post("/api/devices", json={"token": TOKEN, "environment": "sandbox"}, headers={"Idempotency-Key": "ttl"})
    keys = redis_conn.keys("runner:idempotency:*")
    assert len(keys) == 1
    assert 24 * 3600 - 60 < redis_conn.ttl(keys[0]) <= 24 * 3600
    # The stored answer holds the response, not the request's bearer token.
    assert user_api.token.split("|")[1].encode() not in redis_conn.get(keys[0])


def test_concurrent_retries_run_the_request_once(app, user_api):
    body = {"token": TOKEN, "environment": "sandbox"}
    responses = []

    def post():
        # One client per thread: a Flask test client is not safe to share between threads.
        client = ApiClient(app.test_client(), user_api.token)
        responses.append(client.post("/api/devices", json=body, headers={"Idempotency-Key": "race"}))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in responses)
    # One ran (201); the others were replayed (201) or told it was still in progress (409).
    assert set(statuses) <= {201, 409} and 201 in statuses
    assert _devices(app) == 1
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "idempotency-key-in-use")


def test_a_bad_key_is_a_422(user_api):
    for key in ("", "x" * 256):
        response = user_api.post(
            "/api/devices", json={"token": TOKEN, "environment": "sandbox"}, headers={"Idempotency-Key": key}
        )
        assert "Idempotency-Key" in assert_problem(response, 422)["errors"]


def test_token_requests_are_not_replayed_so_no_token_is_stored(redis_conn, anon, make_user):
    _, email = make_user()
    headers = {"Idempotency-Key": "login-1"}
    first = anon.post("/api/auth/token", json={"email": email, "password": PASSWORD}, headers=headers)
    second = anon.post("/api/auth/token", json={"email": email, "password": PASSWORD}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["token"] != second.get_json()["token"]
    assert redis_conn.keys("runner:idempotency:*") == []
