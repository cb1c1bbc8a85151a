"""Fixtures for the knowledge tests.

`mermaid_errors`: Mermaid's own parser (the `mermaid` package from the npm registry, run under node
with jsdom standing in for the browser it expects), installed once into a cache directory like the
agent CLIs of tests/jobs/conftest.py. RUNNER_TEST_MERMAID_DIR: where (default
~/.cache/runner-test-mermaid). Without npm these tests are skipped, saying so; a failed install fails.
"""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

# jsdom 29: the last major that runs on Node 20 (30+ pulls an undici that needs Node 22).
MERMAID_PACKAGES = ("mermaid@12", "jsdom@29")
MERMAID_DIR = Path(os.environ.get("RUNNER_TEST_MERMAID_DIR", "~/.cache/runner-test-mermaid")).expanduser()

# Reads a JSON list of diagram texts on stdin; prints a JSON list: null for a diagram Mermaid
# accepts, else its error message.
_PARSE_SCRIPT = """
import { JSDOM } from 'jsdom';
const dom = new JSDOM('<!DOCTYPE html><body></body>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
let input = '';
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const text of JSON.parse(input)) {
  try {
    await mermaid.parse(text);
    results.push(null);
  } catch (error) {
    results.push(String(error && error.message || error));
  }
}
process.stdout.write(JSON.stringify(results));
"""


def _loads(node):
    """Whether the cache directory holds a mermaid and a jsdom that load under this node."""
    if not (MERMAID_DIR / "node_modules" / "mermaid").is_dir():
        return False
    check = "await import('jsdom'); await import('mermaid');"
    result = subprocess.run([node, "--input-type=module", "-e", check], cwd=MERMAID_DIR, capture_output=True, check=False)
    return result.returncode == 0


@pytest.fixture(scope="session")
def mermaid_errors():
    """`mermaid_errors([text, ...])` -> [None or Mermaid's error message, ...]."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm are not installed: the Mermaid validity checks need Mermaid's own parser")
    if not _loads(node):
        MERMAID_DIR.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(MERMAID_DIR), *MERMAID_PACKAGES],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0 or not _loads(node):
            pytest.fail(f"npm install {' '.join(MERMAID_PACKAGES)} failed:\n{result.stdout}\n{result.stderr}")
        print(f"installed mermaid in {time.monotonic() - started:.1f}s")

    def parse(texts):
        result = subprocess.run(
            [node, "--input-type=module", "-e", _PARSE_SCRIPT],
            input=json.dumps(list(texts)), capture_output=True, text=True, cwd=MERMAID_DIR, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return parse
