"""`python -m tests.perf [pytest args]`: every benchmark in one run, on SQLite and PostgreSQL,
printing its figures next to the baselines measured in the same run (bare Flask, raw Redis, raw
INSERT, raw git). Same as `python -m pytest -m perf -s tests/perf`; extra arguments go to pytest
(e.g. `-k sse`). Needs what the test suite needs (PostgreSQL and Redis as in tests/conftest.py).
"""
import sys
from pathlib import Path

import pytest

if __name__ == "__main__":
    root = Path(__file__).resolve().parents[2]
    sys.exit(pytest.main(["-m", "perf", "-s", "-q", "-p", "no:cacheprovider",
                          "--rootdir", str(root), str(Path(__file__).parent), *sys.argv[1:]]))
