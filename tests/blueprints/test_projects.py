"""Projects over HTTP with a real RQ worker and real git repositories cloned over file://."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitrepo import commit, git, head, origin_url
from helpers import ApiClient, assert_problem, worker_env
from runner.extensions import db
from runner.models import Project, ProjectMember

PROJECTS = "/api/projects"


@pytest.fixture
def origin(tmp_path):
    url = origin_url(tmp_path / "origin")
    return Path(tmp_path / "origin"), url


def _create(api, url, **body):
    response = api.post(PROJECTS, json={"name": "demo", "repositoryUrl": url, **body})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def _repo(app, project_id):
    from runner import projects

    with app.app_context():
        return projects.repo_dir(project_id)


def test_a_new_project_is_cloned_by_a_worker_and_becomes_ready(app, user_api, origin, run_jobs):
    origin_path, url = origin
    created = _create(user_api, url)
    assert created["status"] == "pending"
    assert created["jobId"].startswith(f"project-{created['id']}-clone-")
    assert created["defaultBranch"] is None and created["createdAt"].endswith("Z")

    run_jobs()
    project = user_api.get(f"{PROJECTS}/{created['id']}").get_json()
    assert project["status"] == "ready", project
    assert project["defaultBranch"] == "main"  # detected from the remote
    assert project["headSha"] == head(origin_path)
    assert project["statusDetail"] is None and project["progress"] is None
    repo = _repo(app, created["id"])
    assert (repo / "src" / "app.py").read_text() == "print('hi')\n"


def test_the_given_default_branch_is_the_one_cloned(user_api, tmp_path, run_jobs):
    url = origin_url(tmp_path / "trunk-origin", branch="trunk")
    git(tmp_path / "trunk-origin", "checkout", "-q", "-b", "release")
    commit(tmp_path / "trunk-origin", {"RELEASE": "1\n"})
    project = _create(user_api, url, defaultBranch="release")
    run_jobs()
    project = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
    assert project["status"] == "ready" and project["defaultBranch"] == "release"


def test_the_detected_default_branch_is_the_remotes(user_api, tmp_path, run_jobs):
    url = origin_url(tmp_path / "trunk-only", branch="trunk")
    project = _create(user_api, url)
    run_jobs()
    assert user_api.get(f"{PROJECTS}/{project['id']}").get_json()["defaultBranch"] == "trunk"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "", "repositoryUrl": "https://example.com/r.git"}, "name"),
        ({"name": "   ", "repositoryUrl": "https://example.com/r.git"}, "name"),
        ({"name": "a\x07b", "repositoryUrl": "https://example.com/r.git"}, "name"),
        ({"name": "x" * 101, "repositoryUrl": "https://example.com/r.git"}, "name"),
        ({"name": "ok", "repositoryUrl": "ftp://example.com/r.git"}, "repositoryUrl"),
        ({"name": "ok", "repositoryUrl": "http://example.com/r.git"}, "repositoryUrl"),
        ({"name": "ok", "repositoryUrl": "https://me:secret@example.com/r.git"}, "repositoryUrl"),
        ({"name": "ok", "repositoryUrl": "-uhack"}, "repositoryUrl"),
        ({"name": "ok", "repositoryUrl": "https://example.com/r.git", "defaultBranch": "a..b"}, "defaultBranch"),
        ({"name": "ok", "repositoryUrl": "https://example.com/r.git", "defaultBranch": "-x"}, "defaultBranch"),
        ({"repositoryUrl": "https://example.com/r.git"}, "name"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(app, user_api, body, field):
    response = user_api.post(PROJECTS, json=body)
    assert field in assert_problem(response, 422, "validation-failed")["errors"]
    assert "secret" not in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Project)) == 0


def test_local_repositories_are_refused_when_not_allowed(app, user_api, origin):
    origin_path, url = origin
    app.config["ALLOW_LOCAL_REPOS"] = False
    for local in (url, str(origin_path)):
        body = assert_problem(user_api.post(PROJECTS, json={"name": "x", "repositoryUrl": local}), 422)
        assert "repositoryUrl" in body["errors"]
    assert user_api.post(PROJECTS, json={"name": "x", "repositoryUrl": "git@github.com:me/r.git"}).status_code == 202


def test_an_unreachable_repository_ends_in_error_with_gits_message(user_api, tmp_path, run_jobs):
    project = _create(user_api, (tmp_path / "missing").as_uri())
    run_jobs()
    project = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
    assert project["status"] == "error"
    assert "missing" in project["statusDetail"] or "not" in project["statusDetail"].lower()


def test_clone_again_only_from_error_or_archived(user_api, tmp_path, run_jobs):
    origin_path = tmp_path / "late"
    project = _create(user_api, origin_path.as_uri())
    run_jobs()
    assert user_api.get(f"{PROJECTS}/{project['id']}").get_json()["status"] == "error"
    origin_url(origin_path)  # the repository appears: a re-clone now works
    response = user_api.post(f"{PROJECTS}/{project['id']}/clone")
    assert response.status_code == 202 and response.get_json()["status"] == "pending"
    run_jobs()
    assert user_api.get(f"{PROJECTS}/{project['id']}").get_json()["status"] == "ready"

    body = assert_problem(user_api.post(f"{PROJECTS}/{project['id']}/clone"), 409, "project-not-cloneable")
    assert body["currentStatus"] == "ready"
    assert body["allowedFrom"] == ["error", "archived"]
    assert body["projectId"] == project["id"]


def test_pull_fast_forwards_the_default_branch(app, user_api, origin, run_jobs):
    origin_path, url = origin
    project = _create(user_api, url)
    run_jobs()
    new_head = commit(origin_path, {"src/new.py": "x = 1\n"}, "upstream work")
    response = user_api.post(f"{PROJECTS}/{project['id']}/pull")
    assert response.status_code == 202 and response.get_json()["jobId"]
    run_jobs()
    pulled = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
    assert pulled["status"] == "ready" and pulled["headSha"] == new_head
    assert pulled["statusDetail"] == "pulled 1 changed file"
    assert (_repo(app, project["id"]) / "src" / "new.py").exists()


def test_a_diverged_default_branch_is_an_error_never_a_merge(app, user_api, origin, run_jobs):
    origin_path, url = origin
    project = _create(user_api, url)
    run_jobs()
    repo = _repo(app, project["id"])
    local_head = commit(repo, {"local.txt": "mine\n"}, "local commit")
    commit(origin_path, {"remote.txt": "theirs\n"}, "remote commit")
    user_api.post(f"{PROJECTS}/{project['id']}/pull")
    run_jobs()
    failed = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
    assert failed["status"] == "error"
    assert "diverged" in failed["statusDetail"].lower()
    assert head(repo) == local_head
    assert not (repo / "remote.txt").exists()


def test_a_repository_deleted_under_us_makes_pull_an_error(app, user_api, origin, run_jobs):
    project = _create(user_api, origin[1])
    run_jobs()
    shutil.rmtree(_repo(app, project["id"]))
    user_api.post(f"{PROJECTS}/{project['id']}/pull")
    run_jobs()
    assert user_api.get(f"{PROJECTS}/{project['id']}").get_json()["status"] == "error"


def test_pull_and_index_need_a_ready_project(user_api, origin):
    project = _create(user_api, origin[1])  # still pending: no worker ran
    for action, slug in (("pull", "project-not-pullable"), ("index-rag", "project-not-indexable")):
        body = assert_problem(user_api.post(f"{PROJECTS}/{project['id']}/{action}"), 409, slug)
        assert body["currentStatus"] == "pending" and body["allowedFrom"] == ["ready"]


def test_index_rag_queues_a_job_and_returns_to_ready(user_api, origin, run_jobs):
    project = _create(user_api, origin[1])
    run_jobs()
    response = user_api.post(f"{PROJECTS}/{project['id']}/index-rag")
    assert response.status_code == 202 and response.get_json()["status"] == "indexing"
    run_jobs()
    assert user_api.get(f"{PROJECTS}/{project['id']}").get_json()["status"] == "ready"


def test_archive_hides_the_project_moves_the_workspace_and_allows_a_re_clone(app, user_api, origin, run_jobs):
    project = _create(user_api, origin[1])
    run_jobs()
    repo = _repo(app, project["id"])
    response = user_api.delete(f"{PROJECTS}/{project['id']}")
    assert response.status_code == 204 and response.data == b""
    run_jobs()
    assert not repo.exists()
    archived = list((repo.parent.parent.parent / "archive").iterdir())
    assert len(archived) == 1 and (archived[0] / "repo" / "README.md").exists()

    detail = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
    assert detail["status"] == "archived" and detail["archivedAt"].endswith("Z")
    assert user_api.get(PROJECTS).get_json()["data"] == []
    assert_problem(user_api.put(f"{PROJECTS}/{project['id']}", json={"name": "x"}), 409, "project-not-editable")
    assert_problem(user_api.delete(f"{PROJECTS}/{project['id']}"), 409, "project-not-archivable")

    assert user_api.post(f"{PROJECTS}/{project['id']}/clone").status_code == 202
    run_jobs()
    again = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
    assert again["status"] == "ready" and again["archivedAt"] is None
    assert (repo / "README.md").exists()


def test_a_project_archived_while_its_clone_waits_stays_archived(user_api, origin, run_jobs):
    project = _create(user_api, origin[1])
    assert user_api.delete(f"{PROJECTS}/{project['id']}").status_code == 204
    run_jobs()  # the clone job finds the project archived and does nothing
    assert user_api.get(f"{PROJECTS}/{project['id']}").get_json()["status"] == "archived"


def test_update_changes_name_description_and_defaults(user_api, origin):
    project = _create(user_api, origin[1])
    response = user_api.put(
        f"{PROJECTS}/{project['id']}",
        json={"name": "renamed", "description": "d", "defaultAgent": "codex", "defaultModel": "gpt-5"},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["description"], body["defaultAgent"], body["defaultModel"]) == (
        "renamed", "d", "codex", "gpt-5",
    )


def test_other_users_projects_are_404_and_members_and_admins_see_them(app, user_api, make_user, login, origin):
    project = _create(user_api, origin[1])
    _, stranger_email = make_user()
    stranger = login(stranger_email)
    for method, suffix in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("POST", "/pull"), ("POST", "/clone")):
        body = {"name": "x"} if method == "PUT" else None
        response = stranger.open(method, f"{PROJECTS}/{project['id']}{suffix}", json=body)
        assert_problem(response, 404, "not-found")
    assert stranger.get(PROJECTS).get_json()["data"] == []

    member_id, member_email = make_user()
    with app.app_context():
        db.session.add(ProjectMember(project_id=project["id"], user_id=member_id))
        db.session.commit()
    member = login(member_email)
    assert [p["id"] for p in member.get(PROJECTS).get_json()["data"]] == [project["id"]]

    _, admin_email = make_user(admin=True)
    assert [p["id"] for p in login(admin_email).get(PROJECTS).get_json()["data"]] == [project["id"]]


def test_writing_needs_projects_write(anon, make_user, origin):
    _, email = make_user()
    token = anon.post(
        "/api/auth/token", json={"email": email, "password": "correct horse battery", "abilities": ["projects:read"]}
    ).get_json()["token"]
    reader = ApiClient(anon.client, token)
    body = assert_problem(reader.post(PROJECTS, json={"name": "x", "repositoryUrl": origin[1]}), 403)
    assert body["requiredAbility"] == "projects:write"
    assert reader.get(PROJECTS).status_code == 200


def test_list_filters_by_status(user_api, origin, tmp_path, run_jobs):
    ready = _create(user_api, origin[1])
    run_jobs()
    _create(user_api, (tmp_path / "nowhere").as_uri())  # stays pending: no worker runs
    listed = user_api.get(PROJECTS, query_string={"status": "ready"}).get_json()["data"]
    assert [p["id"] for p in listed] == [ready["id"]]
    assert_problem(user_api.get(PROJECTS, query_string={"status": "archived"}), 422)


def test_concurrent_jobs_on_one_project_are_serialized(app, config, user_api, origin, run_jobs):
    origin_path, url = origin
    project = _create(user_api, url)
    run_jobs()
    commit(origin_path, {"a.txt": "a\n"})
    assert user_api.post(f"{PROJECTS}/{project['id']}/pull").status_code == 202
    assert user_api.post(f"{PROJECTS}/{project['id']}/pull").status_code == 202

    # Two real worker processes take one pull each, at the same time.
    env = worker_env(config)
    workers = [
        subprocess.Popen([sys.executable, "-m", "runner", "worker", "--burst"], env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr.decode()
    final = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
    assert final["status"] == "ready" and final["headSha"] == head(origin_path)
    git(_repo(app, project["id"]), "fsck", "--strict")


def test_clone_progress_is_visible_on_the_project(app, user_api, origin):
    from jobs.projects import _Progress
    from runner import states

    project = _create(user_api, origin[1])
    with app.app_context():
        states.transition(Project, project["id"], states.PROJECT_STEPS["cloning"])
        db.session.commit()
        _Progress(project["id"])("Receiving objects", 45)
    seen = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
    assert (seen["status"], seen["progress"], seen["statusDetail"]) == ("cloning", 45, "Receiving objects 45%")


def test_a_private_repository_is_cloned_with_the_https_token_which_is_never_stored(
    app, user_api, admin_api, tmp_path, run_jobs
):
    from gitrepo import HTTP_TOKEN, HTTP_USER, GitHttpServer, make_repo

    served = tmp_path / "served"
    make_repo(served / "private.git", {"secret-project.txt": "hello\n"})
    server = GitHttpServer(served, HTTP_USER, HTTP_TOKEN)
    try:
        host = server.url("").split("/")[2]
        assert admin_api.put("/api/settings/server-params", json={
            "git.httpsToken": HTTP_TOKEN, "git.httpsTokenHosts": f"github.com, http://{host}"}).status_code == 200
        project = _create(user_api, "https://git.example.com/private.git")
        # The test server speaks plain http on loopback, which the API rightly refuses; point the
        # row at it directly, as if TLS were there.
        with app.app_context():
            db.session.get(Project, project["id"]).repository_url = server.url("private.git")
            db.session.commit()
        run_jobs()
        cloned = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
        assert cloned["status"] == "ready", cloned
        assert any(auth and auth.startswith("Basic ") for auth in server.authorizations)
    finally:
        server.close()
    repo = _repo(app, project["id"])
    assert (repo / "secret-project.txt").read_text() == "hello\n"
    for path in (repo / ".git").rglob("*"):
        if path.is_file():
            assert HTTP_TOKEN.encode() not in path.read_bytes(), path
    assert HTTP_TOKEN not in user_api.get(f"{PROJECTS}/{project['id']}").get_data(as_text=True)


def test_the_https_token_goes_only_to_the_hosts_it_is_meant_for(app, user_api, admin_api, tmp_path, run_jobs):
    """A user's project URL may name any server, theirs included: it must not be handed the token."""
    from gitrepo import HTTP_TOKEN, HTTP_USER, GitHttpServer, make_repo

    served = tmp_path / "served"
    make_repo(served / "bait.git", {"x.txt": "x\n"})
    server = GitHttpServer(served, HTTP_USER, HTTP_TOKEN)  # asks for credentials, like a real one
    try:
        for hosts in (None, "github.com, git.example.com"):  # unset, or other hosts only
            assert admin_api.put("/api/settings/server-params", json={
                "git.httpsToken": HTTP_TOKEN, "git.httpsTokenHosts": hosts}).status_code == 200
            project = _create(user_api, "https://git.example.com/bait.git")
            with app.app_context():
                db.session.get(Project, project["id"]).repository_url = server.url("bait.git")
                db.session.commit()
            run_jobs()
            failed = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
            assert failed["status"] == "error", failed
            assert server.authorizations and not any(server.authorizations), server.authorizations
    finally:
        server.close()
