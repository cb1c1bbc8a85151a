"""Fixtures for the job tests: the real agent CLIs (installed once into a cache directory) and a
git repository in tmp for the agent to work in.

RUNNER_TEST_AGENTS_DIR: where `npm install` puts the CLIs (default ~/.cache/runner-test-agents;
`.ci/run` installs them there before the suite). On a machine without npm the tests that need the
real CLIs are skipped, saying so; an install that fails fails them: they are the proof that the
adapters speak the real CLIs' language.
"""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gitrepo import make_repo

PACKAGES = ("@anthropic-ai/claude-code", "@openai/codex")
AGENTS_DIR = Path(os.environ.get("RUNNER_TEST_AGENTS_DIR", "~/.cache/runner-test-agents")).expanduser()


@pytest.fixture(scope="session")
def agent_bin():
    """{"claude": path, "codex": path} of the real CLIs, installed with npm on first use."""
    bins = {name: AGENTS_DIR / "node_modules" / ".bin" / name for name in ("claude", "codex")}
    if not all(path.exists() for path in bins.values()):
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: skipping the tests that run the real claude and codex CLIs "
                        f"(they install {' and '.join(PACKAGES)} from the npm registry)")
        AGENTS_DIR.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        result = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(AGENTS_DIR), *PACKAGES],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0 or not all(path.exists() for path in bins.values()):
            pytest.fail(f"npm install {' '.join(PACKAGES)} failed:\n{result.stdout}\n{result.stderr}")
        print(f"installed the agent CLIs in {time.monotonic() - started:.1f}s")
    return {name: str(path) for name, path in bins.items()}


@pytest.fixture
def agent_home(tmp_path_factory):
    """A HOME of the agent's own: no user settings, sessions or credentials leak in or out."""
    return tmp_path_factory.mktemp("agent-home")


@pytest.fixture
def worktree(tmp_path):
    return make_repo(tmp_path / "work", {"README.md": "# demo\n"})
