"""Fixtures of the benchmarks."""
import os

import pytest

from serving import REDIS_URL


@pytest.fixture
def runner_server_env(config, database_url):
    """The environment of a gunicorn serving this test's database, Redis and data directory."""
    return dict(
        os.environ,
        RUNNER_DATABASE_URL=database_url,
        RUNNER_REDIS_URL=REDIS_URL,
        RUNNER_DATA_DIR=str(config.DATA_DIR),
        RUNNER_SECRET_KEY=config.SECRET_KEY,
        RUNNER_STREAMS_PER_USER="1000",
        RUNNER_RATELIMIT_ENABLED="false",
        RATELIMIT_ENABLED="false",
        RUNNER_ENV="development",
        RUNNER_LOG_FORMAT="",
    )
