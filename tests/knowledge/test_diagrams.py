"""ARCHITECTURE_DIAGRAMS: the folder-level module graph and the ER diagram, checked by Mermaid's own
parser (npm `mermaid` under node), on real repositories and on names chosen to break naive output."""
import re
import textwrap

import pytest

from gitrepo import make_repo, origin_url
from runner.knowledge import diagrams
from runner.knowledge.map import build_map
from runner.knowledge.schema import build_schema

import test_map
import test_schema

_NODE = re.compile(r'^  (\w+)\["(.*)"\]$', re.M)
_EDGE = re.compile(r"^  (\w+) -->\|(\d+)\| (\w+)$", re.M)


def _graph(text):
    """({label}, {(from label, to label): count}) read back from a flowchart."""
    labels = dict(_NODE.findall(text))
    edges = {(labels[a], labels[b]): int(n) for a, n, b in _EDGE.findall(text)}
    return set(labels.values()), edges


def _valid(mermaid_errors, *texts):
    errors = mermaid_errors(texts)
    assert errors == [None] * len(texts), "\n\n".join(f"{e}\n---\n{t}" for e, t in zip(errors, texts) if e)


def test_the_module_graph_joins_folders_by_their_resolved_imports(tmp_path, mermaid_errors):
    repo = make_repo(tmp_path / "shop", test_map._files())
    text, stats = diagrams.module_graph(build_map(repo))
    assert text.startswith("flowchart LR\n")
    labels, edges = _graph(text)
    java = "java/src/main/java/com/acme"
    assert labels == {
        "app", "app/Http", "app/Models", "cmd/server", "internal/store", "internal/store/sql", java, f"{java}/model",
        f"{java}/util", "lib", "lib/shop", "scripts", "src", "src/util", "web/src", "web/src/helpers",
    }
    assert edges == {
        ("scripts", "app"): 1,
        ("web/src", "web/src/helpers"): 1,
        ("cmd/server", "internal/store"): 1,
        ("cmd/server", "internal/store/sql"): 1,
        (java, f"{java}/model"): 2,
        (java, f"{java}/util"): 1,
        ("app/Http", "app/Models"): 2,
        ("lib", "lib/shop"): 1,
        ("src", "src/util"): 3,
    }
    assert stats["merged"] is False
    _valid(mermaid_errors, text)


@pytest.mark.parametrize("fixture", ["SQL", "SQLALCHEMY", "DJANGO", "LARAVEL", "PRISMA"])
def test_the_er_diagram_of_each_schema_source_is_valid_mermaid(tmp_path, mermaid_errors, fixture):
    files = {name: textwrap.dedent(text) for name, text in getattr(test_schema, fixture).items()}
    schema = build_schema(make_repo(tmp_path / "repo", files))
    text = diagrams.er_diagram(schema)
    assert text.startswith("erDiagram\n")
    # One relationship line per foreign key, and one entity block per table.
    assert len(re.findall(r"^  \w+ [|}][|o]--[o|][|{] \w+ : ", text, re.M)) == len(schema["relations"])
    assert len(re.findall(r"^  \w+\[\"[^\"]*\"\] \{$", text, re.M)) == len(schema["tables"])
    _valid(mermaid_errors, text)


def test_er_cardinalities_follow_the_keys(tmp_path, mermaid_errors):
    schema = build_schema(make_repo(tmp_path / "repo", {n: textwrap.dedent(t) for n, t in test_schema.PRISMA.items()}))
    text = diagrams.er_diagram(schema)
    users, profile, post = (diagrams._id("t", name) for name in ("users", "Profile", "Post"))
    # A profile belongs to exactly one user, and a user has at most one profile (user_id is unique).
    assert f'  {users} ||--o| {profile} : "user_id"' in text.splitlines()
    # A post may have no author (authorId is optional); an author has any number of posts.
    assert f'  {users} |o--o{{ {post} : "authorId"' in text.splitlines()
    assert '    Int id PK' in text and '    Int user_id FK, UK' in text and '    Int authorId FK "nullable"' in text
    _valid(mermaid_errors, text)


def test_awkward_names_still_give_valid_diagrams(mermaid_errors):
    folders = ["end", "a-b", "a_b", 'we"ird', "#hash;", "spaces here", "ünïcode", "graph", "subgraph", "class", "x/y"]
    rows = [{"path": f"{folder}/m.py", "language": "python", "lines": 1, "symbols": [], "imports": []} for folder in folders]
    rows[0]["imports"] = [{"module": m, "path": f"{folder}/m.py"} for m, folder in zip("abcdefghij", folders[1:])]
    text, _ = diagrams.module_graph(rows)
    labels, edges = _graph(text)
    assert len(labels) == len(folders)  # a-b and a_b stay two nodes
    assert len(edges) == len(folders) - 1
    columns = [
        {"name": name, "type": type_, "nullable": True, "default": None, "unique": False}
        for name, type_ in [("2fa", "DECIMAL(10, 2)"), ("first name", "enum('a', 'b')"), ("end", "VARCHAR(255)[]"),
                            ("ok", ""), ("quote\"d", "character varying(20)"), ("ünï", "INT(11) UNSIGNED")]
    ]
    schema = {
        "tables": [
            {"name": name, "columns": columns, "primary_key": ["2fa"], "source": "x.sql",
             "foreign_keys": [{"name": None, "columns": ["ok"], "references_table": "elsewhere.users",
                               "references_columns": ["id"], "on_delete": None}]}
            for name in ("order", "user-data", "schema.table", "end")
        ],
        "sources": [{"path": "x.sql", "kind": "sql"}],
        "reason": None,
    }
    schema["relations"] = [{"from_table": t["name"], "from_columns": ["ok"], "to_table": "elsewhere.users",
                            "to_columns": ["id"], "kind": "many-to-one"} for t in schema["tables"]]
    _valid(mermaid_errors, text, diagrams.er_diagram(schema))


def test_a_large_tree_is_merged_to_a_readable_depth(mermaid_errors):
    rows = []
    for top in range(8):
        for sub in range(12):
            path = f"pkg{top}/mod{sub}/leaf/file.py"
            target = f"pkg{(top + 1) % 8}/mod{sub}/leaf/file.py"
            rows.append({"path": path, "language": "python", "lines": 1, "symbols": [],
                         "imports": [{"module": "x", "path": target}]})
    text, stats = diagrams.module_graph(rows)
    labels, edges = _graph(text)
    assert stats["merged"] and stats["depth"] == 1
    assert labels == {f"pkg{i}" for i in range(8)}
    assert edges == {(f"pkg{i}", f"pkg{(i + 1) % 8}"): 12 for i in range(8)}
    _valid(mermaid_errors, text)


def test_nothing_to_draw_is_still_valid_and_says_why(tmp_path, mermaid_errors):
    repo = make_repo(tmp_path / "docs-only", {"README.md": "# docs\n"})
    rows, schema = build_map(repo), build_schema(repo)
    text, stats = diagrams.module_graph(rows)
    assert stats["nodes"] == 0
    markdown = diagrams.markdown(rows, schema)
    assert "erDiagram" not in markdown
    assert f"No ER diagram: {schema['reason']}" in markdown
    _valid(mermaid_errors, text)


def test_the_diagrams_endpoint_returns_valid_mermaid_in_markdown(user_api, run_jobs, tmp_path, mermaid_errors):
    files = {**test_map._files(), **{n: textwrap.dedent(t) for n, t in test_schema.SQL.items()}}
    url = origin_url(tmp_path / "origin", files)
    project_id = user_api.post("/api/projects", json={"name": "p", "repositoryUrl": url}).get_json()["id"]
    run_jobs()
    response = user_api.get(f"/api/projects/{project_id}/diagrams")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [d["name"] for d in body["diagrams"]] == ["modules", "schema"]
    blocks = re.findall(r"```mermaid\n(.*?)```", body["markdown"], re.S)
    assert blocks == [d["mermaid"] for d in body["diagrams"]]
    assert blocks[0].startswith("flowchart LR") and blocks[1].startswith("erDiagram")
    assert "## Module dependencies" in body["markdown"] and "## Database schema" in body["markdown"]
    assert len(body["commit"]) == 40
    _valid(mermaid_errors, *blocks)


def test_the_checker_rejects_what_mermaid_cannot_draw(mermaid_errors):
    """The validity checks above mean something: Mermaid's parser refuses a bare keyword as a node id
    and an attribute name starting with a digit, which the generator's ids and names never are."""
    errors = mermaid_errors(["flowchart LR\n  end --> b\n", "erDiagram\n  a {\n    int 2col\n  }\n", "flowchart LR\n  a --> b\n"])
    assert errors[0] and errors[1] and errors[2] is None
