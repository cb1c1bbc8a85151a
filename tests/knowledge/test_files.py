"""Which files of a real repository the knowledge features read: git's view (.gitignore honoured),
minus binaries, vendored and generated folders, lock files, minified bundles and oversized files."""
import os

import pytest

from gitrepo import commit, git, make_repo, write
from runner.knowledge import files
from runner.knowledge.files import MAX_FILE_BYTES, RepoFile


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """No ~/.gitconfig (a global excludesFile would change what git lists)."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)


SOURCE = {
    "src/app.py": "def main():\n    return 1\n",
    "src/web/App.tsx": "export function App() { return null; }\n",
    "cmd/server/main.go": "package main\n\nfunc main() {}\n",
    "db/schema.prisma": "model User {\n  id Int @id\n}\n",
    "migrations/001.sql": "CREATE TABLE users (id integer);\n",
    "README.md": "# Demo\n",
    "Dockerfile": "FROM python:3.11\n",
    "LICENSE": "MIT\n",
}


@pytest.fixture
def repo(tmp_path):
    repo = make_repo(
        tmp_path / "repo",
        {
            **SOURCE,
            ".gitignore": "*.log\nsecrets/\n",
            # Tracked, but none of them source.
            "node_modules/left-pad/index.js": "module.exports = 1;\n",
            "web/node_modules/react/index.js": "module.exports = 2;\n",
            "vendor/github.com/lib/pq/conn.go": "package pq\n",
            "dist/bundle.js": "var a=1;\n",
            "build/out.txt": "built\n",
            "pkg/__pycache__/app.cpython-311.pyc": b"\x00\x01compiled",
            "package-lock.json": "{}\n",
            "web/yarn.lock": "# yarn\n",
            "poetry.lock": "[[package]]\n",
            "Cargo.lock": "version = 3\n",
            "composer.lock": "{}\n",
            "static/jquery.min.js": "!function(){}();\n",
            "static/bundle.js": ("var x=" + "1+" * 5000 + "1;") * 2,  # minified without saying so
            "assets/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
            "data/huge.txt": "line\n" * (MAX_FILE_BYTES // 5 + 1),
        },
    )
    # Untracked: one ignored by .gitignore, one not (listed although never committed).
    write(repo, {"debug.log": "noise\n", "secrets/key.py": "KEY = 1\n", "src/new_module.py": "x = 1\n"})
    return repo


def test_the_listing_is_the_source_git_knows_minus_noise(repo):
    listed = files.repository_files(repo)
    paths = [f.path for f in listed]
    assert paths == sorted(paths)
    assert set(paths) == {*SOURCE, ".gitignore", "src/new_module.py"}


def test_each_file_has_its_language_and_size(repo):
    listed = {f.path: f for f in files.repository_files(repo)}
    languages = {path: f.language for path, f in listed.items()}
    assert languages["src/app.py"] == "python"
    assert languages["src/web/App.tsx"] == "typescript"
    assert languages["cmd/server/main.go"] == "go"
    assert languages["db/schema.prisma"] == "prisma"
    assert languages["migrations/001.sql"] == "sql"
    assert languages["README.md"] == "markdown"
    assert languages["Dockerfile"] == "dockerfile"
    assert languages["LICENSE"] is None
    assert listed["src/app.py"] == RepoFile("src/app.py", "python", len(SOURCE["src/app.py"]))


def test_a_file_just_under_the_size_cap_is_kept_and_one_over_it_is_not(tmp_path):
    line = "x" * 99 + "\n"
    under = line * (MAX_FILE_BYTES // len(line))
    repo = make_repo(tmp_path / "sizes", {"under.txt": under, "over.txt": under + line})
    assert len(under) <= MAX_FILE_BYTES < len(under + line)
    assert [f.path for f in files.repository_files(repo)] == ["under.txt"]


def test_a_file_deleted_from_the_checkout_but_still_tracked_is_left_out(repo):
    os.remove(repo / "src" / "app.py")
    assert "src/app.py" not in {f.path for f in files.repository_files(repo)}


def test_symlinks_and_submodules_are_left_out(tmp_path, repo):
    os.symlink("/etc/passwd", repo / "src" / "passwd.py")
    inner = make_repo(tmp_path / "inner", {"inner.py": "y = 2\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", inner.as_uri(), "third/inner")
    listed = {f.path for f in files.repository_files(repo)}
    assert "src/passwd.py" not in listed
    assert not any(path.startswith("third/inner") for path in listed)


def test_one_path_is_judged_by_the_same_rules(repo):
    assert files.repo_file(repo, "src/app.py") == RepoFile("src/app.py", "python", len(SOURCE["src/app.py"]))
    for noise in ("node_modules/left-pad/index.js", "poetry.lock", "assets/logo.png", "data/huge.txt",
                  "static/bundle.js", "static/jquery.min.js", "src/missing.py"):
        assert files.repo_file(repo, noise) is None, noise


def test_text_that_is_not_utf8_is_read_with_replacement_characters(tmp_path):
    repo = make_repo(tmp_path / "latin", {"old.py": "name = 'caf\xe9'\n".encode("latin-1")})
    assert files.read_text(repo, "old.py") == "name = 'caf\ufffd'\n"


def test_changed_since_names_the_paths_changed_between_a_commit_and_head(repo):
    base = git(repo, "rev-parse", "HEAD").strip()
    commit(repo, {"src/app.py": "def main():\n    return 2\n", "README.md": None, "src/added.py": "z = 3\n"})
    # (`commit` adds everything: the untracked module is committed with the rest.)
    assert sorted(files.changed_since(repo, base)) == ["README.md", "src/added.py", "src/app.py", "src/new_module.py"]
    assert files.changed_since(repo, "0" * 40) is None  # unknown to the repository
    assert files.changed_since(repo, "--output=/tmp/x") is None
