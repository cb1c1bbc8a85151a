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


def bare_run(app, email):
    """A draft run (with its first event) on a project row of the user `email`: enough to stream
    events, no repository needed. Returns the run id."""
    from runner import events
    from runner.extensions import db
    from runner.models import Project, Run, User

    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        project = Project(owner_id=user.id, name="p", repository_url="https://example.com/r.git", status="ready")
        db.session.add(project)
        db.session.flush()
        run = Run(project_id=project.id, user_id=user.id, title="t", prompt="p", selected_agent="command")
        db.session.add(run)
        db.session.flush()
        events.add(run.id, "status_changed", "created", data={"from": None, "to": "draft"})
        db.session.commit()
        return run.id


def add_events(app, run_id, *messages, finish=None):
    """Commit `log` events with `messages`; with `finish`, end the run in that status too."""
    from runner import events, states
    from runner.extensions import db
    from runner.models import Run

    with app.app_context():
        for message in messages:
            events.add(run_id, "log", message)
        if finish:
            previous = db.session.scalar(db.select(Run.status).where(Run.id == run_id))
            states.transition(Run, run_id, states.Action(states.RUN_STATUSES, finish))
            events.status_changed(run_id, previous, finish)
        db.session.commit()


def sse_frames(chunks):
    """Split streamed SSE text (str/bytes chunks) into frames: dicts of field -> value (comments
    under ':')."""
    text = "".join(chunk.decode() if isinstance(chunk, bytes) else chunk for chunk in chunks)
    frames = []
    for block in text.split("\n\n"):
        if not block:
            continue
        fields = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            fields[name or ":"] = value.lstrip(" ")
        frames.append(fields)
    return frames
