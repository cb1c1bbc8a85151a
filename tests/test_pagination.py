"""Cursor pagination: `{data, meta: {nextCursor}}`, signed keyset cursors, limit 1–200 (default 50)."""
from helpers import assert_problem
from runner.extensions import db
from runner.models import Device


def _add_devices(app, email, count, start=0):
    from runner.models import User

    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        for index in range(start, start + count):
            db.session.add(Device(user_id=user.id, token=f"{index:064x}", environment="sandbox"))
        db.session.commit()


def _tokens(response):
    return [item["token"] for item in response.get_json()["data"]]


def test_pages_of_50_by_default_newest_first_then_null_cursor(app, user_api):
    _add_devices(app, user_api.email, 120)
    seen, cursor, pages = [], None, 0
    while True:
        response = user_api.get("/api/devices", query_string={"cursor": cursor} if cursor else {})
        assert response.status_code == 200
        body = response.get_json()
        seen += _tokens(response)
        pages += 1
        cursor = body["meta"]["nextCursor"]
        if cursor is None:
            break
        assert len(body["data"]) == 50
    assert pages == 3
    assert seen == [f"{index:064x}" for index in reversed(range(120))]


def test_rows_inserted_while_paging_neither_shift_nor_repeat(app, user_api):
    _add_devices(app, user_api.email, 10)
    first = user_api.get("/api/devices?limit=4").get_json()
    _add_devices(app, user_api.email, 5, start=10)  # newer rows arrive between pages
    second = user_api.get("/api/devices", query_string={"limit": 4, "cursor": first["meta"]["nextCursor"]})
    assert [d["token"] for d in first["data"]] == [f"{i:064x}" for i in (9, 8, 7, 6)]
    assert _tokens(second) == [f"{i:064x}" for i in (5, 4, 3, 2)]


def test_limit_bounds_are_validated(user_api):
    for limit in (0, 201, -1, "many"):
        body = assert_problem(user_api.get("/api/devices", query_string={"limit": limit}), 422)
        assert "limit" in body["errors"]
    assert user_api.get("/api/devices?limit=200").status_code == 200


def test_a_tampered_cursor_is_a_400_problem(app, user_api):
    _add_devices(app, user_api.email, 3)
    cursor = user_api.get("/api/devices?limit=1").get_json()["meta"]["nextCursor"]
    for bad in (cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"), "garbage", cursor + "x"):
        assert_problem(user_api.get("/api/devices", query_string={"cursor": bad}), 400, "invalid-cursor")


def test_a_cursor_from_another_list_is_refused(app, user_api):
    _add_devices(app, user_api.email, 3)
    cursor = user_api.get("/api/devices?limit=1").get_json()["meta"]["nextCursor"]
    response = user_api.get("/api/settings/providers", query_string={"cursor": cursor})
    assert_problem(response, 400, "invalid-cursor")
