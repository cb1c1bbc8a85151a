"""The code search index on real repositories: chunk boundaries per language, code-aware ranking,
atomic full builds and in-place incremental updates."""
import os
import textwrap

import pytest
import tantivy

from gitrepo import commit, make_repo
from runner.knowledge import files, index
from runner.knowledge.index import chunk_file


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)


def _sources(repo, paths=None):
    listed = files.repository_files(repo)
    return [(f, files.read_text(repo, f.path)) for f in listed if paths is None or f.path in paths]


def _spans(chunks):
    return [(c.start_line, c.end_line, c.symbol) for c in chunks]


# --- chunk boundaries -----------------------------------------------------------------------

PYTHON = textwrap.dedent(
    '''\
    """Users."""
    import os

    LIMIT = 10


    # Cached: the directory is slow.
    @functools.cache
    def get_user_name(user_id):
        return os.environ.get(f"USER_{user_id}")


    async def load(user_id):
        return await fetch(user_id)


    class UserStore:
        """Keeps users."""

        def save(self, user):
            self.users.append(user)
    '''
)


def test_python_is_cut_at_its_top_level_functions_and_classes():
    chunks = chunk_file("users.py", "python", PYTHON)
    assert _spans(chunks) == [
        (1, 4, None),  # module docstring, imports, constants
        (7, 10, "get_user_name"),  # with its decorator and the comment right above
        (13, 14, "load"),
        (17, 21, "UserStore"),
    ]
    assert chunks[1].text.startswith("# Cached: the directory is slow.\n@functools.cache\ndef get_user_name")
    assert chunks[1].path == "users.py"


def test_a_long_python_class_is_cut_into_its_methods():
    methods = "".join(f"\n    def method_{i}(self):\n        value = {i}\n        return value\n" for i in range(40))
    text = f"class Big:\n    \"\"\"A big class.\"\"\"\n    size = 40\n{methods}"
    chunks = chunk_file("big.py", "python", text)
    assert _spans(chunks)[0] == (1, 3, "Big")
    assert _spans(chunks)[1:3] == [(5, 7, "Big.method_0"), (9, 11, "Big.method_1")]
    assert [c.symbol for c in chunks[1:]] == [f"Big.method_{i}" for i in range(40)]


def test_python_that_does_not_parse_is_cut_at_its_column_zero_definitions():
    text = "def ok():\n    return 1\n\ndef broken(:\n    print 'python 2'\n\nclass Later:\n    pass\n"
    assert _spans(chunk_file("old.py", "python", text)) == [(1, 2, "ok"), (4, 5, "broken"), (7, 8, "Later")]


TYPESCRIPT = textwrap.dedent(
    """\
    import { api } from "./api";
    import type { User } from "./types";

    /**
     * Loads a user's name; "}" in strings and // comments { do not count.
     */
    export async function getUserName(id: string): Promise<string> {
      const open = "{";  // {
      const user = await api.get(`/users/${id}`);
      return user.name;
    }

    export const saveUser = async (user: User) => {
      await api.put("/users", user);
    };

    export class UserCache {
      private users = new Map<string, User>();

      get(id: string) {
        return this.users.get(id);
      }
    }

    export interface Settings {
      theme: string;
    }
    """
)


def test_a_brace_language_is_cut_at_its_top_level_definitions():
    chunks = chunk_file("src/users.ts", "typescript", TYPESCRIPT)
    assert _spans(chunks) == [
        (1, 2, None),
        (4, 11, "getUserName"),  # with its doc comment
        (13, 15, "saveUser"),
        (17, 23, "UserCache"),
        (25, 27, "Settings"),
    ]


GO = textwrap.dedent(
    """\
    package server

    import (
    \t"fmt"
    )

    // Server serves requests.
    type Server struct {
    \taddr string
    }

    func (s *Server) Start() error {
    \tfmt.Println("starting {")
    \treturn nil
    }

    func NewServer(addr string) *Server { return &Server{addr: addr} }
    """
)


def test_go_methods_types_and_one_line_functions_are_chunks():
    assert _spans(chunk_file("server.go", "go", GO)) == [
        (1, 5, None),
        (7, 10, "Server"),
        (12, 15, "Start"),
        (17, 17, "NewServer"),
    ]


def test_a_long_java_class_is_cut_into_its_members():
    methods = "".join(
        f"\n    @Override\n    public int method{i}(int a) {{\n        if (a > 0) {{\n            return a * {i};\n"
        f"        }}\n        return {i};\n    }}\n"
        for i in range(20)
    )
    text = f"package shop;\n\npublic class OrderService extends Base {{\n    private final Repo repo;\n{methods}}}\n"
    chunks = chunk_file("OrderService.java", "java", text)
    assert _spans(chunks)[:3] == [(1, 1, None), (3, 4, "OrderService"), (6, 12, "OrderService.method0")]
    assert [c.symbol for c in chunks[2:]] == [f"OrderService.method{i}" for i in range(20)]
    assert chunks[2].text.splitlines()[:2] == ["    @Override", "    public int method0(int a) {"]


def test_unbalanced_braces_fall_back_to_line_windows():
    text = "function broken() {\n" + "  call();\n" * 100
    assert _spans(chunk_file("broken.js", "javascript", text)) == [(1, 60, None), (51, 101, None)]


def test_markdown_is_cut_at_its_headings_ignoring_code_fences():
    text = "Intro line\n\n# Install\n\nRun it.\n\n```sh\n# not a heading\n```\n\n## Configure\n\nSet things.\n"
    assert _spans(chunk_file("README.md", "markdown", text)) == [
        (1, 1, None),
        (3, 10, "Install"),
        (11, 13, "Configure"),
    ]


def test_other_files_are_cut_in_overlapping_windows_of_60_lines():
    text = "".join(f"key{i} = {i}\n" for i in range(150))
    assert _spans(chunk_file("settings.ini", "ini", text)) == [(1, 60, None), (51, 110, None), (101, 150, None)]


def test_an_overlong_definition_without_members_is_cut_in_windows_that_keep_its_name():
    body = "".join(f"  step{i}();\n" for i in range(130))
    text = f"function run() {{\n{body}}}\n"
    assert _spans(chunk_file("run.js", "javascript", text)) == [(1, 60, "run"), (51, 110, "run"), (101, 132, "run")]


# --- ranking --------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path):
    """A repository where the words of each identifier are everywhere, the identifiers in one place."""
    decoys = {
        f"src/module{i}.py": textwrap.dedent(
            f"""\
            def get_item{i}(user, name):
                # get the user name for item {i}; parse the http request; rate it
                return user.get(name)
            """
        )
        for i in range(40)
    }
    repo = make_repo(
        tmp_path / "repo",
        {
            **decoys,
            "src/users.ts": TYPESCRIPT,
            "src/accounts.py": "def get_user_name(account):\n    return account.owner.display\n",
            "src/http.py": "def parse_http_request(raw):\n    return raw.split(b'\\r\\n')\n",
            "src/caller.py": "from accounts import get_user_name\n\n\ndef show(a):\n    print(get_user_name(a))\n",
            "docs/guide.md": "# Guide\n\nRead this.\n\n## Rate limiting\n\nRequests are throttled per user.\n",
        },
    )
    path = tmp_path / "index" / "search-index"
    stats = index.build(path, _sources(repo), commit="c0")
    assert stats.files == 45 and stats.commit == "c0"
    return repo, path


@pytest.mark.parametrize(
    "query, path, symbol",
    [
        ("getUserName", "src/users.ts", "getUserName"),
        ("get_user_name", "src/accounts.py", "get_user_name"),
        ("parseHttpRequest", "src/http.py", "parse_http_request"),
        ("UserCache", "src/users.ts", "UserCache"),
        ("rate limiting", "docs/guide.md", "Rate limiting"),
        ("where is saveUser defined?", "src/users.ts", "saveUser"),
    ],
)
def test_identifier_queries_find_the_defining_chunk_first(project, query, path, symbol):
    hits = index.search(project[1], query, 5)
    assert (hits[0].path, hits[0].symbol) == (path, symbol), [(h.path, h.symbol) for h in hits]
    assert hits[0].score > hits[1].score > 0


def test_a_hit_carries_its_lines_and_a_snippet_around_the_best_line(project):
    hit = index.search(project[1], "getUserName", 1)[0]
    assert (hit.start_line, hit.end_line) == (4, 11)
    assert "export async function getUserName" in hit.snippet
    assert len(hit.snippet.splitlines()) == index.SNIPPET_LINES
    first_line = hit.snippet.splitlines()[0]
    assert TYPESCRIPT.splitlines()[hit.snippet_start_line - 1] == first_line
    assert hit.text.startswith("/**\n * Loads a user's name")


@pytest.mark.parametrize(
    "query",
    ['"', '""', "*", "get*", "AND", "user AND", "(", "(user", ")", "-", "-user", "NEAR", "NEAR(user name, 2)",
     "user: name", "^user", "{symbol path}: user", "a OR", "NOT", "'", "\\", "\x00", "ünïcödé", "user " * 500],
)
def test_fts_syntax_in_a_query_is_just_text(project, query):
    hits = index.search(project[1], query, 10)
    assert isinstance(hits, list)
    if "user" in query:
        assert hits  # the word in it still counts


def test_a_query_of_no_searchable_words_finds_nothing(project):
    assert index.search(project[1], "!!! ... a I", 10) == []
    assert index.search(project[1], "zyxwvut", 10) == []


# --- builds and updates ---------------------------------------------------------------------


def test_an_update_re_indexes_only_the_changed_paths_in_place(project):
    repo, path = project
    generation = os.readlink(path)
    untouched = [(h.path, h.start_line, h.score) for h in index.search(path, "get_item7", 3)]
    commit(
        repo,
        {
            "src/accounts.py": "def get_user_name(account):\n    return account.nickname\n\n\ndef rename_account(a):\n    pass\n",
            "src/billing.py": "def chargeCustomerCard(card):\n    return card\n",
            "src/http.py": None,
        },
    )
    changed = ["src/accounts.py", "src/billing.py", "src/http.py"]
    stats = index.update(path, _sources(repo, changed), changed, commit="c1")

    assert os.readlink(path) == generation  # the same index, not a rebuild
    assert (stats.files, stats.commit) == (45, "c1")  # one added, one deleted
    assert index.search(path, "chargeCustomerCard", 1)[0].path == "src/billing.py"
    assert index.search(path, "rename_account", 1)[0].symbol == "rename_account"
    assert "nickname" in index.search(path, "get_user_name", 1)[0].text
    assert len([h for h in index.search(path, "get_user_name", 50) if h.symbol == "get_user_name"]) == 1  # no stale copy
    assert not [h for h in index.search(path, "parse_http_request", 50) if h.path == "src/http.py"]
    assert [(h.path, h.start_line) for h in index.search(path, "get_item7", 3)] == [u[:2] for u in untouched]
    assert index.stats(path) == stats


def test_a_full_build_swaps_the_index_whole_while_open_searches_keep_the_old_one(project):
    repo, path = project
    first = os.readlink(path)
    open_search = tantivy.Index.open(str(path)).searcher()
    before = open_search.num_docs
    commit(repo, {f"src/extra{i}.py": f"def extra_{i}():\n    pass\n" for i in range(5)})
    stats = index.build(path, _sources(repo), commit="c2")
    assert os.readlink(path) != first
    assert open_search.num_docs == before  # the old generation is still there for it
    assert stats.files == 50 and index.stats(path) == stats
    assert index.search(path, "extra_3", 1)[0].path == "src/extra3.py"

    index.build(path, _sources(repo), commit="c3")
    # The generation replaced two builds ago is gone; the one replaced last stays one more build.
    assert not (path.parent / first).exists()
    assert len(list(path.parent.glob("search-index.gen-*"))) == 2


def test_a_build_that_fails_leaves_the_old_index_as_it_was(project):
    repo, path = project
    before, generation = index.stats(path), os.readlink(path)
    sources = _sources(repo)
    sources.insert(10, (files.RepoFile("src/broken.py", "python", 1), None))  # text None: chunking fails

    with pytest.raises(AttributeError):
        index.build(path, sources, commit="broken")
    assert os.readlink(path) == generation and index.stats(path) == before
    assert index.search(path, "getUserName", 1)[0].symbol == "getUserName"
    assert sorted(p.name for p in path.parent.iterdir()) == ["search-index", generation]


def test_an_update_that_fails_changes_nothing(project):
    repo, path = project
    before = index.stats(path)
    commit(repo, {"src/accounts.py": None})
    bad = [(files.RepoFile("src/accounts.py", "python", 1), None)]
    with pytest.raises(AttributeError):
        index.update(path, bad, ["src/accounts.py"], commit="c3")
    assert index.stats(path) == before
    assert index.search(path, "get_user_name", 1)[0].path == "src/accounts.py"


def test_a_missing_foreign_or_damaged_index_is_reported_as_missing(tmp_path):
    with pytest.raises(index.IndexMissing):
        index.search(tmp_path / "none", "user", 10)
    with pytest.raises(index.IndexMissing):
        index.update(tmp_path / "none", [], ["a.py"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(index.IndexMissing):
        index.stats(empty)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "meta.json").write_text("{not json")
    with pytest.raises(index.IndexMissing):
        index.search(damaged, "user", 10)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("title", stored=True)
    writer = tantivy.Index(builder.build(), path=str(foreign)).writer(15_000_000, 1)
    writer.add_document(tantivy.Document(title="another program's index"))
    writer.commit()
    with pytest.raises(index.IndexMissing):
        index.search(foreign, "user", 10)
