"""Fixtures for the workspaces tests: git isolated from the developer's own configuration."""
import pytest

from gitrepo import HTTP_TOKEN, HTTP_USER, GitHttpServer


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """A HOME of its own, so ~/.gitconfig (helpers, aliases, hooksPath) cannot change what git does."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


@pytest.fixture
def http_server(tmp_path):
    """A smart-HTTP git server over tmp_path/"served" that wants HTTP_USER and HTTP_TOKEN."""
    root = tmp_path / "served"
    root.mkdir()
    server = GitHttpServer(root, HTTP_USER, HTTP_TOKEN)
    yield server
    server.close()
