"""The `runner` command's users, tokens and worker subcommands, run against the test app."""
import pytest
from rq.job import Job

from helpers import PASSWORD, ApiClient, assert_problem
from runner import queue
from runner.cli import main
from runner.extensions import redis_client

MOBILE = ["projects:*", "runs:start", "runs:control", "git:commit", "settings:read"]


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args, input=None):
        return runner.invoke(main, list(args), input=input)

    return invoke


def _me(client, token):
    response = ApiClient(client, token).get("/api/auth/me")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# users create


def test_users_create_prompts_for_the_password_twice_and_the_user_can_log_in(cli, anon, login):
    # A mismatched confirmation asks again instead of creating the user with a typo.
    typed = f"{PASSWORD}\n{PASSWORD}x\n{PASSWORD}\n{PASSWORD}\n"
    result = cli("users", "create", "Dev@Example.com", input=typed)
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    me = login("dev@example.com").get("/api/auth/me").get_json()
    assert me["email"] == "dev@example.com"
    assert me["isAdmin"] is False


def test_users_create_admin_can_elevate_to_settings_write(cli, login):
    result = cli("users", "create", "boss@example.com", "--admin", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    assert "(admin)" in result.output
    api = login("boss@example.com")
    assert api.get("/api/auth/me").get_json()["isAdmin"] is True
    response = api.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["settings:write"]})
    assert response.status_code == 201, response.get_json()


def test_users_create_refuses_a_duplicate_email(cli, login):
    assert cli("users", "create", "dev@example.com", "--password", PASSWORD).exit_code == 0
    result = cli("users", "create", "DEV@example.com", "--password", "another password")
    assert result.exit_code == 1
    assert "a user dev@example.com already exists" in result.output
    login("dev@example.com")  # the first password still works


def test_users_create_refuses_a_short_password_and_creates_nobody(cli, anon):
    result = cli("users", "create", "dev@example.com", "--password", "short")
    assert result.exit_code == 1
    assert "at least 8 characters" in result.output
    response = anon.post("/api/auth/token", json={"email": "dev@example.com", "password": "short"})
    assert_problem(response, 401, "invalid-credentials")


def test_users_create_refuses_what_is_not_an_email(cli):
    result = cli("users", "create", "dev", "--password", PASSWORD)
    assert result.exit_code == 1
    assert "not an email address" in result.output


# tokens create


def test_tokens_create_prints_a_token_with_the_mobile_abilities(cli, client, make_user):
    _, email = make_user()
    result = cli("tokens", "create", email)
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    me = _me(client, token)
    assert me["email"] == email
    assert me["abilities"] == MOBILE


def test_tokens_create_grants_the_listed_abilities_elevated_ones_included(cli, client, make_user):
    _, email = make_user()
    result = cli("tokens", "create", email, "--abilities", "projects:read, git:push")
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert _me(client, token)["abilities"] == ["projects:read", "git:push"]
    body = assert_problem(ApiClient(client, token).get("/api/settings/server-params"), 403, "missing-ability")
    assert body["requiredAbility"] == "settings:read"


def test_tokens_create_refuses_unknown_abilities(cli, make_user):
    _, email = make_user()
    result = cli("tokens", "create", email, "--abilities", "projects:read,projects:fly")
    assert result.exit_code == 1
    assert "unknown abilities: projects:fly" in result.output


def test_tokens_create_gives_settings_write_to_admins_only(cli, client, make_user):
    _, email = make_user()
    for abilities in ("settings:write", "settings:*", "*"):
        result = cli("tokens", "create", email, "--abilities", abilities)
        assert result.exit_code == 1, abilities
        assert "settings:write needs an admin user" in result.output
    _, admin_email = make_user(admin=True)
    result = cli("tokens", "create", admin_email, "--abilities", "settings:write")
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    response = ApiClient(client, token).put("/api/settings/server-params", json={"git.authorName": "Ops"})
    assert response.status_code == 200, response.get_json()


def test_tokens_create_for_an_unknown_user_fails(cli):
    result = cli("tokens", "create", "ghost@example.com")
    assert result.exit_code == 1
    assert "no user ghost@example.com" in result.output


# worker


def test_worker_burst_runs_queued_jobs_in_the_app_context_then_stops(app, cli, make_user):
    make_user()
    make_user()
    with app.app_context():
        runs_job = queue.get_queue("runs").enqueue("helpers.count_users")
        default_job = queue.get_queue("default").enqueue("helpers.count_users")
    result = cli("worker", "--burst")
    assert result.exit_code == 0, result.output
    with app.app_context():
        for job_id in (runs_job.id, default_job.id):
            job = Job.fetch(job_id, connection=redis_client.connection)
            assert job.get_status() == "finished", job.latest_result()
            assert job.return_value() == 2


def test_worker_takes_only_the_queues_it_is_given(app, cli):
    with app.app_context():
        runs_job = queue.get_queue("runs").enqueue("helpers.count_users")
        default_job = queue.get_queue("default").enqueue("helpers.count_users")
    result = cli("worker", "--burst", "--queues", "runs")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert Job.fetch(runs_job.id, connection=redis_client.connection).get_status() == "finished"
        assert Job.fetch(default_job.id, connection=redis_client.connection).get_status() == "queued"
