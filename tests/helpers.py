"""Helpers shared by the tests: a token-carrying client and the problem+json assertion."""

PASSWORD = "correct horse battery"


class ApiClient:
    """The test client with a bearer token and JSON by default."""

    def __init__(self, client, token=None):
        self.client, self.token = client, token

    def open(self, method, path, json=None, headers=None, **kwargs):
        headers = dict(headers or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.client.open(path, method=method, json=json, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self.open("GET", path, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.open("POST", path, json=json, **kwargs)

    def put(self, path, json=None, **kwargs):
        return self.open("PUT", path, json=json, **kwargs)

    def delete(self, path, **kwargs):
        return self.open("DELETE", path, **kwargs)


def assert_problem(response, status, slug=None):
    """The response is an RFC 7807 problem with `status` (and the `slug` type, when given)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json", response.mimetype
    body = response.get_json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"].startswith("https://docs.runner.dev/errors/")
    assert body["instance"] == response.request.path
    if slug:
        assert body["type"].endswith("/" + slug), body["type"]
    return body


def count_users():
    """An RQ job for the worker tests: it needs the app context and the database to answer."""
    from runner.extensions import db
    from runner.models import User

    return db.session.scalar(db.select(db.func.count()).select_from(User))


def wait_for(predicate, timeout=30):
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout` s."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s")


def worker_env(config):
    """The environment a `runner worker` subprocess needs to share the test's database and Redis."""
    import os

    return {
        **os.environ,
        "RUNNER_DATABASE_URL": config.SQLALCHEMY_DATABASE_URI,
        "RUNNER_REDIS_URL": config.REDIS_URL,
        "RUNNER_DATA_DIR": config.DATA_DIR,
        "RUNNER_SECRET_KEY": config.SECRET_KEY,
    }
