"""Code search over HTTP: a real worker clones and indexes real repositories (one of a few thousand
generated files), pull re-indexes what changed, and POST /api/projects/{id}/search ranks chunks."""
import os
import random
import shutil

import pytest

from gitrepo import commit, head, make_repo, origin_url
from helpers import PASSWORD, assert_problem
from runner.models import Project

PROJECTS = "/api/projects"
WORDS = "account invoice token access refresh total compute order payment user session cache report".split()
VERBS = "get set load save compute refresh build render".split()
TARGETS = {
    "src/auth/tokenRefresher.ts": (
        "import { http } from './http';\n\n"
        "/** Swaps the refresh token for a new access token. */\n"
        "export async function refreshAccessToken(refreshToken: string): Promise<string> {\n"
        "  const response = await http.post('/oauth/token', { refreshToken });\n"
        "  return response.accessToken;\n"
        "}\n"
    ),
    "src/billing/invoice_totals.py": (
        '"""Invoice totals."""\n\n\n'
        "def compute_invoice_total(invoice, tax_rate):\n"
        "    subtotal = sum(line.amount for line in invoice.lines)\n"
        "    return subtotal * (1 + tax_rate)\n"
    ),
}


def _generated(rng, i):
    a, b = rng.sample(WORDS, 2)
    verb = rng.choice(VERBS)
    if i % 2:
        return f"pkg{i % 40}/{a}_{i}.py", (
            f"def {verb}_{a}_{b}_{i}({a}, {b}):\n    # {verb} the {a} {b} token total\n    return {a}.{b}\n\n\n"
            f"class {a.title()}{b.title()}{i}:\n    def {verb}(self):\n        return self.{a}\n"
        )
    return f"web{i % 40}/{a}{b.title()}{i}.ts", (
        f"export function {verb}{a.title()}{b.title()}{i}({a}: string) {{\n  return {a}.{b};  // access token\n}}\n"
    )


@pytest.fixture(scope="module")
def big_origin(tmp_path_factory):
    """An origin of 3,002 files: 3,000 generated decoys full of the targets' words, and the two targets."""
    rng = random.Random(6)
    files = dict(_generated(rng, i) for i in range(3000))
    path = tmp_path_factory.mktemp("big") / "origin"
    make_repo(path, {**files, **TARGETS})
    return path


def _create(api, url):
    response = api.post(PROJECTS, json={"name": "demo", "repositoryUrl": url})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def _search(api, project_id, query, **body):
    return api.post(f"{PROJECTS}/{project_id}/search", json={"query": query, **body})


def _generation(app, project_id):
    from runner.knowledge import index

    with app.app_context():
        return os.readlink(index.project_index_path(project_id))


def test_clone_indexes_a_repository_of_thousands_of_files_and_search_ranks_it(user_api, big_origin, run_jobs):
    project = _create(user_api, big_origin.as_uri())
    run_jobs()
    ready = user_api.get(f"{PROJECTS}/{project['id']}").get_json()
    assert ready["status"] == "ready" and ready["statusDetail"] is None and ready["progress"] is None
    assert ready["indexedCommit"] == head(big_origin) and ready["indexFiles"] == 3002
    assert ready["indexChunks"] >= 3002 and ready["indexedAt"].endswith("Z")

    for query, path, symbol in [
        ("refreshAccessToken", "src/auth/tokenRefresher.ts", "refreshAccessToken"),
        ("compute_invoice_total", "src/billing/invoice_totals.py", "compute_invoice_total"),
        ("how is the invoice total computed with tax?", "src/billing/invoice_totals.py", "compute_invoice_total"),
    ]:
        response = _search(user_api, project["id"], query)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        hits = body["data"]
        assert (hits[0]["path"], hits[0]["symbol"]) == (path, symbol), query
        assert len(hits) == 10  # the default limit: the decoys share the words
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        assert body["meta"] == {"indexedCommit": ready["indexedCommit"], "indexedAt": ready["indexedAt"]}

    best = _search(user_api, project["id"], "refreshAccessToken", limit=3).get_json()["data"]
    assert len(best) == 3
    assert best[0]["startLine"] == 3 and best[0]["endLine"] == 7  # the function with its doc comment
    assert "export async function refreshAccessToken" in best[0]["snippet"]
    assert best[0]["snippetStartLine"] >= best[0]["startLine"]
    assert set(best[0]) == {"path", "startLine", "endLine", "score", "snippet", "snippetStartLine", "symbol"}


@pytest.fixture
def small_project(app, user_api, tmp_path, run_jobs):
    origin = tmp_path / "origin"
    url = origin_url(
        origin,
        {
            "src/accounts.py": "def get_user_name(account):\n    return account.owner\n",
            "src/http.py": "def parse_http_request(raw):\n    return raw.split()\n",
            "README.md": "# Demo\n\nUser accounts.\n",
        },
    )
    project = _create(user_api, url)
    run_jobs()
    assert user_api.get(f"{PROJECTS}/{project['id']}").get_json()["status"] == "ready"
    return origin, project["id"]


def test_pull_re_indexes_only_what_changed(app, user_api, small_project, run_jobs):
    origin, project_id = small_project
    generation = _generation(app, project_id)
    new_head = commit(
        origin,
        {
            "src/accounts.py": "def get_user_name(account):\n    return account.nickname\n",
            "src/billing.py": "def chargeCustomerCard(card):\n    return card\n",
            "src/http.py": None,
        },
    )
    assert user_api.post(f"{PROJECTS}/{project_id}/pull").status_code == 202
    run_jobs()
    pulled = user_api.get(f"{PROJECTS}/{project_id}").get_json()
    assert pulled["status"] == "ready" and pulled["statusDetail"] == "pulled 3 changed files"
    assert pulled["indexedCommit"] == new_head and pulled["indexFiles"] == 3
    assert _generation(app, project_id) == generation  # updated in place, not rebuilt

    assert _search(user_api, project_id, "chargeCustomerCard").get_json()["data"][0]["path"] == "src/billing.py"
    assert "nickname" in _search(user_api, project_id, "get_user_name").get_json()["data"][0]["snippet"]
    assert _search(user_api, project_id, "parse_http_request").get_json()["data"] == []


def test_index_rag_rebuilds_the_index_whole(app, user_api, small_project, run_jobs):
    _, project_id = small_project
    before = user_api.get(f"{PROJECTS}/{project_id}").get_json()
    generation = _generation(app, project_id)
    response = user_api.post(f"{PROJECTS}/{project_id}/index-rag")
    assert response.status_code == 202 and response.get_json()["status"] == "indexing"
    # Meanwhile the old index still answers.
    assert _search(user_api, project_id, "get_user_name").get_json()["data"][0]["path"] == "src/accounts.py"
    run_jobs()
    after = user_api.get(f"{PROJECTS}/{project_id}").get_json()
    assert after["status"] == "ready" and after["statusDetail"] is None
    assert after["indexedAt"] > before["indexedAt"] and after["indexChunks"] == before["indexChunks"]
    assert _generation(app, project_id) != generation


def test_a_pull_without_an_index_builds_it_whole(app, user_api, small_project, run_jobs):
    from runner.knowledge import index

    origin, project_id = small_project
    with app.app_context():
        link = index.project_index_path(project_id)
        shutil.rmtree(link.resolve())
        link.unlink()
    commit(origin, {"src/new.py": "def brandNewThing():\n    pass\n"})
    assert user_api.post(f"{PROJECTS}/{project_id}/pull").status_code == 202
    run_jobs()
    pulled = user_api.get(f"{PROJECTS}/{project_id}").get_json()
    assert pulled["status"] == "ready" and pulled["indexFiles"] == 4
    assert _search(user_api, project_id, "get_user_name").get_json()["data"][0]["path"] == "src/accounts.py"


def test_an_index_that_cannot_be_written_puts_the_project_in_error_saying_why(app, user_api, small_project, run_jobs):
    from runner.knowledge import index

    _, project_id = small_project
    with app.app_context():
        link = index.project_index_path(project_id)
        link.unlink()
        (link / "in-the-way").mkdir(parents=True)  # a directory where the index link must go
    assert user_api.post(f"{PROJECTS}/{project_id}/index-rag").status_code == 202
    run_jobs()
    failed = user_api.get(f"{PROJECTS}/{project_id}").get_json()
    assert failed["status"] == "error"
    assert failed["statusDetail"].startswith("Could not build the search index: Is a directory")
    assert failed["progress"] is None


def test_indexing_progress_is_visible_on_the_project(app, user_api, small_project):
    from jobs.knowledge import _Progress
    from runner import states
    from runner.extensions import db

    _, project_id = small_project
    with app.app_context():
        states.transition(Project, project_id, states.PROJECT_STEPS["indexing"])
        db.session.commit()
        _Progress(project_id)(750, 3000)
    seen = user_api.get(f"{PROJECTS}/{project_id}").get_json()
    assert (seen["status"], seen["progress"], seen["statusDetail"]) == ("indexing", 25, "indexing 750/3000 files")


@pytest.mark.parametrize(
    "query",
    ['"', "get_user_name*", "AND", "user AND", "(", ")", "-account", "NEAR(user name)", "NOT user", "a:b", "^", "{", "'"],
)
def test_fts_and_query_syntax_in_a_query_is_plain_text(user_api, small_project, query):
    response = _search(user_api, small_project[1], query)
    assert response.status_code == 200, response.get_json()
    if "user" in query:
        assert response.get_json()["data"][0]["path"] == "src/accounts.py"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"query": ""}, "query"),
        ({"query": "   \n"}, "query"),
        ({}, "query"),
        ({"query": "x" * 1001}, "query"),
        ({"query": 5}, "query"),
        ({"query": "user", "limit": 0}, "limit"),
        ({"query": "user", "limit": 51}, "limit"),
        ({"query": "user", "limit": "5"}, "limit"),
        ({"query": "user", "fuzzy": True}, "fuzzy"),
    ],
)
def test_a_bad_search_body_is_a_422_naming_the_field(user_api, small_project, body, field):
    response = user_api.post(f"{PROJECTS}/{small_project[1]}/search", json=body)
    assert field in assert_problem(response, 422)["errors"]


def test_searching_before_the_first_index_is_a_409(user_api, tmp_path):
    project = _create(user_api, origin_url(tmp_path / "origin"))  # queued, never cloned
    body = assert_problem(_search(user_api, project["id"], "user"), 409, "index-missing")
    assert body["projectId"] == project["id"] and "index-rag" in body["detail"]


def test_only_visible_projects_can_be_searched_and_with_projects_read(
    user_api, small_project, make_user, login, anon
):
    _, project_id = small_project
    _, stranger = make_user()
    assert_problem(_search(login(stranger), project_id, "user"), 404)
    assert_problem(_search(user_api, 999_999, "user"), 404)
    assert_problem(_search(anon, project_id, "user"), 401)
    runs_only = login(user_api.email, PASSWORD, abilities=["runs:start"])
    assert assert_problem(_search(runs_only, project_id, "user"), 403)["requiredAbility"] == "projects:read"
