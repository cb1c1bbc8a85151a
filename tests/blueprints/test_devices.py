"""POST/GET /api/devices and DELETE /api/devices/{id}: the caller's APNs registrations, upserted per user."""
import pytest

from helpers import assert_problem
from runner.extensions import db
from runner.models import Device

DEVICES = "/api/devices"
TOKEN = "a1b2c3d4" * 8  # 64 hex digits: a real APNs token is 32 bytes


def device_rows(app):
    with app.app_context():
        return [
            (row.user_id, row.token, row.environment, row.name, row.active)
            for row in db.session.scalars(db.select(Device).order_by(Device.id))
        ]


def test_register_a_device(app, user_api):
    response = user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox", "name": "Ada's iPhone"})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "token", "environment", "name", "active", "disabledReason", "createdAt", "updatedAt"}
    assert isinstance(body["id"], int)
    assert body["token"] == TOKEN
    assert body["environment"] == "sandbox"
    assert body["name"] == "Ada's iPhone"
    assert body["active"] is True
    assert body["disabledReason"] is None
    assert body["createdAt"].endswith("Z") and body["updatedAt"].endswith("Z")
    assert [row[1:] for row in device_rows(app)] == [(TOKEN, "sandbox", "Ada's iPhone", True)]


def test_name_is_optional(user_api):
    response = user_api.post(DEVICES, json={"token": TOKEN, "environment": "production"})
    assert response.status_code == 201
    assert response.get_json()["name"] is None
    assert response.get_json()["environment"] == "production"


def test_registering_the_same_token_again_updates_it(app, user_api):
    first = user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox", "name": "Old"}).get_json()
    response = user_api.post(DEVICES, json={"token": TOKEN, "environment": "production", "name": "New"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == first["id"]
    assert body["environment"] == "production"
    assert body["name"] == "New"
    assert body["createdAt"] == first["createdAt"]
    assert [row[1:] for row in device_rows(app)] == [(TOKEN, "production", "New", True)]


def test_re_registering_without_a_name_keeps_the_name(user_api):
    user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox", "name": "Kitchen iPad"})
    body = user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox"}).get_json()
    assert body["name"] == "Kitchen iPad"


def test_tokens_are_case_insensitive_and_stored_lowercase(app, user_api):
    upper = user_api.post(DEVICES, json={"token": TOKEN.upper(), "environment": "sandbox"})
    assert upper.status_code == 201
    assert upper.get_json()["token"] == TOKEN
    lower = user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox"})
    assert lower.status_code == 200
    assert lower.get_json()["id"] == upper.get_json()["id"]
    mixed = user_api.post(DEVICES, json={"token": TOKEN[:32].upper() + TOKEN[32:], "environment": "sandbox"})
    assert mixed.get_json()["id"] == upper.get_json()["id"]
    assert [row[1] for row in device_rows(app)] == [TOKEN]


def test_re_registering_reactivates_a_disabled_device(app, user_api):
    device_id = user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox"}).get_json()["id"]
    with app.app_context():
        # As the push sender does after APNs answers 410 / BadDeviceToken.
        device = db.session.get(Device, device_id)
        device.active, device.disabled_reason = False, "BadDeviceToken"
        db.session.commit()
    listed = user_api.get(DEVICES).get_json()["data"]
    assert (listed[0]["active"], listed[0]["disabledReason"]) == (False, "BadDeviceToken")
    body = user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox"}).get_json()
    assert body["id"] == device_id
    assert body["active"] is True
    assert body["disabledReason"] is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "ab" * 31,  # 62 digits: too short
        "ab" * 32 + "a",  # 65 digits: odd
        "a" * 63,  # odd
        "ab" * 101,  # 202 digits: too long
        "zz" * 32,  # not hexadecimal
        "ab" * 16 + " " + "ab" * 16,
        "<" + "ab" * 32 + ">",  # the way NSData prints it
        "ab" * 32 + "\n",
        "\n" + "ab" * 32,
        "0x" + "ab" * 32,
        12345,
        None,
    ],
)
def test_invalid_tokens_are_a_422(app, user_api, token):
    response = user_api.post(DEVICES, json={"token": token, "environment": "sandbox"})
    body = assert_problem(response, 422, "validation-failed")
    assert list(body["errors"]) == ["token"]
    assert device_rows(app) == []


@pytest.mark.parametrize("digits", [64, 100, 200])
def test_tokens_of_64_to_200_hex_digits_are_accepted(user_api, digits):
    token = ("0123456789abcdef" * 13)[:digits]
    response = user_api.post(DEVICES, json={"token": token, "environment": "sandbox"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["token"] == token


@pytest.mark.parametrize("environment", ["development", "Production", "", None, 1])
def test_invalid_environments_are_a_422(app, user_api, environment):
    response = user_api.post(DEVICES, json={"token": TOKEN, "environment": environment})
    body = assert_problem(response, 422, "validation-failed")
    assert list(body["errors"]) == ["environment"]
    assert device_rows(app) == []


def test_missing_fields_are_each_named(user_api):
    body = assert_problem(user_api.post(DEVICES, json={}), 422, "validation-failed")
    assert set(body["errors"]) == {"token", "environment"}


def test_an_overlong_name_or_an_unknown_field_is_a_422(app, user_api):
    body = assert_problem(
        user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox", "name": "x" * 201}), 422
    )
    assert list(body["errors"]) == ["name"]
    body = assert_problem(
        user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox", "platform": "ios"}), 422
    )
    assert list(body["errors"]) == ["platform"]
    assert device_rows(app) == []


def test_list_shows_only_the_callers_devices(make_user, login, user_api):
    _, other_email = make_user()
    other = login(other_email)
    other_token = "ff" * 32
    other.post(DEVICES, json={"token": other_token, "environment": "production", "name": "Not yours"})
    mine = [
        user_api.post(DEVICES, json={"token": token, "environment": "sandbox", "name": name}).get_json()
        for token, name in ((TOKEN, "Phone"), ("0d" * 40, "Tablet"))
    ]
    response = user_api.get(DEVICES)
    assert response.status_code == 200
    body = response.get_json()
    assert body["meta"] == {"nextCursor": None}
    assert sorted(d["id"] for d in body["data"]) == sorted(d["id"] for d in mine)
    assert {d["name"] for d in body["data"]} == {"Phone", "Tablet"}
    assert all(d["active"] is True for d in body["data"])
    assert other_token not in response.get_data(as_text=True)
    assert [d["token"] for d in other.get(DEVICES).get_json()["data"]] == [other_token]


def test_list_is_empty_without_devices(user_api):
    assert user_api.get(DEVICES).get_json() == {"data": [], "meta": {"nextCursor": None}}


def test_list_pages_with_a_cursor(user_api):
    tokens = [f"{n:02x}" * 32 for n in range(3)]
    for token in tokens:
        user_api.post(DEVICES, json={"token": token, "environment": "sandbox"})
    first = user_api.get(DEVICES, query_string={"limit": 2}).get_json()
    second = user_api.get(DEVICES, query_string={"limit": 2, "cursor": first["meta"]["nextCursor"]}).get_json()
    assert second["meta"]["nextCursor"] is None
    assert sorted(d["token"] for d in first["data"] + second["data"]) == sorted(tokens)


def test_delete_unregisters_a_device(app, user_api):
    device_id = user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox"}).get_json()["id"]
    response = user_api.delete(f"{DEVICES}/{device_id}")
    assert response.status_code == 204
    assert response.data == b""
    assert user_api.get(DEVICES).get_json()["data"] == []
    assert device_rows(app) == []
    assert_problem(user_api.delete(f"{DEVICES}/{device_id}"), 404, "not-found")


def test_another_users_device_is_a_404_and_survives(app, make_user, login, user_api):
    _, owner_email = make_user()
    owner = login(owner_email)
    device_id = owner.post(DEVICES, json={"token": TOKEN, "environment": "sandbox"}).get_json()["id"]
    missing = assert_problem(user_api.delete(f"{DEVICES}/{device_id + 1000}"), 404, "not-found")
    theirs = assert_problem(user_api.delete(f"{DEVICES}/{device_id}"), 404, "not-found")
    # The same answer as for a device that does not exist: nothing tells it apart.
    assert theirs["detail"].replace(str(device_id), "N") == missing["detail"].replace(str(device_id + 1000), "N")
    assert [d["id"] for d in owner.get(DEVICES).get_json()["data"]] == [device_id]
    assert len(device_rows(app)) == 1


def test_devices_need_a_token(app, anon, user_api):
    device_id = user_api.post(DEVICES, json={"token": TOKEN, "environment": "sandbox"}).get_json()["id"]
    assert_problem(anon.get(DEVICES), 401, "unauthenticated")
    assert_problem(anon.post(DEVICES, json={"token": "ee" * 32, "environment": "sandbox"}), 401, "unauthenticated")
    assert_problem(anon.delete(f"{DEVICES}/{device_id}"), 401, "unauthenticated")
    assert [row[1] for row in device_rows(app)] == [TOKEN]


def test_a_phone_registered_by_another_user_moves_to_the_new_user(app, make_user, login, user_api):
    _, before_email = make_user()
    before = login(before_email)
    before.post(DEVICES, json={"token": TOKEN, "environment": "production", "name": "Shared iPhone"})
    # Someone else signs in on the same phone: its APNs token is now theirs alone.
    response = user_api.post(DEVICES, json={"token": TOKEN.upper(), "environment": "production"})
    assert response.status_code == 201
    assert before.get(DEVICES).get_json()["data"] == []
    assert [d["token"] for d in user_api.get(DEVICES).get_json()["data"]] == [TOKEN]
    assert len(device_rows(app)) == 1
