"""Configuration: one `Config` read from `RUNNER_*` environment variables, and `TestConfig`.

Nothing here touches the disk or the network; `create_app` resolves what needs resolving.
"""
import os


def env(name, default=None):
    return os.environ.get(f"RUNNER_{name}", default)


def env_bool(name, default):
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_int(name, default):
    value = env(name)
    return default if value in (None, "") else int(value)


class Config:
    """Read at construction, so the environment of `create_app` time counts, not of import time."""

    def __init__(self):
        self.ENV_NAME = env("ENV", "development")
        self.DATA_DIR = env("DATA_DIR", "var")
        # Unset: a random key generated once and kept in DATA_DIR/secret_key (mode 0600).
        self.SECRET_KEY = env("SECRET_KEY")
        # Unset: SQLite file DATA_DIR/runner.db.
        self.SQLALCHEMY_DATABASE_URI = env("DATABASE_URL")
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        # Unset: `runner up` starts an embedded redis-server and sets it for its children; other
        # commands use that one while it runs (DATA_DIR/redis/url), else redis://127.0.0.1:6379/0.
        self.REDIS_URL = env("REDIS_URL")

        # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted (0: none).
        # Behind one, without this every anonymous client shares the proxy's rate-limit bucket.
        self.PROXY_COUNT = env_int("PROXY_COUNT", 0)
        self.ERROR_TYPE_BASE = env("ERROR_TYPE_BASE", "https://docs.runner.dev/errors/")
        self.MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 1024 * 1024)

        # argon2id parameters: a profile of argon2.profiles.
        self.PASSWORD_HASH_PROFILE = env("PASSWORD_HASH_PROFILE", "RFC_9106_LOW_MEMORY")
        # Tokens. None: personal access tokens do not expire unless revoked.
        self.TOKEN_TTL_SECONDS = env_int("TOKEN_TTL_SECONDS", 0) or None
        self.ELEVATION_TTL_SECONDS = env_int("ELEVATION_TTL_SECONDS", 15 * 60)
        # Stream tokens (for EventSource, which cannot send headers) must be used this soon: they
        # open a stream, which then lasts; a reconnect after that asks for a new one.
        self.STREAM_TOKEN_TTL_SECONDS = env_int("STREAM_TOKEN_TTL_SECONDS", 60)
        self.STREAMS_PER_USER = env_int("STREAMS_PER_USER", 4)
        # Signed links to a command's stdout/stderr (served without a bearer token) live this long.
        self.BLOB_URL_TTL_SECONDS = env_int("BLOB_URL_TTL_SECONDS", 15 * 60)
        # lastUsedAt is written at most this often per token, so reads stay reads.
        self.TOKEN_TOUCH_SECONDS = env_int("TOKEN_TOUCH_SECONDS", 60)

        # Logs: "json" (a JSON object a line, with request and run ids), "text", or "" (leave
        # logging as the host process set it up).
        self.LOG_FORMAT = env("LOG_FORMAT", "json")
        self.LOG_LEVEL = env("LOG_LEVEL", "INFO")

        self.PAGE_DEFAULT_LIMIT = 50
        self.PAGE_MAX_LIMIT = 200
        self.IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60

        self.RATELIMIT_DEFAULT = env("RATELIMIT_DEFAULT", "60/minute")
        self.RATELIMIT_RUN_START = env("RATELIMIT_RUN_START", "6/minute")
        self.RATELIMIT_SETTINGS_WRITE = env("RATELIMIT_SETTINGS_WRITE", "20/minute")
        self.RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_HEADERS_ENABLED = True
        self.RATELIMIT_KEY_PREFIX = env("RATELIMIT_KEY_PREFIX", "runner-limits")
        # Redis away: limits are kept in each process's memory meanwhile, so reads keep working.
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True

        # Clone and fetch give up after this long; a job's hard limit is a little longer.
        self.GIT_TIMEOUT_SECONDS = env_int("GIT_TIMEOUT_SECONDS", 600)
        # A run finding every runs.maxConcurrent slot taken tries again after this long.
        self.RUN_SLOT_RETRY_SECONDS = env_int("RUN_SLOT_RETRY_SECONDS", 5)
        # How long an API request waits for a repository another operation holds.
        self.REPOSITORY_LOCK_WAIT_SECONDS = env_int("REPOSITORY_LOCK_WAIT_SECONDS", 10)

        # Local paths as repository URLs: on in development, off in production.
        self.ALLOW_LOCAL_REPOS = env_bool("ALLOW_LOCAL_REPOS", self.ENV_NAME != "production")

        self.API_TITLE = "Runner"
        self.API_VERSION = "1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/api"
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.OPENAPI_SWAGGER_UI_PATH = "/docs"
        self.OPENAPI_SWAGGER_UI_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist/"


class TestConfig(Config):
    def __init__(self):
        super().__init__()
        self.TESTING = True
        self.ENV_NAME = "test"
        self.SECRET_KEY = "test-secret-key-not-for-production"
        self.ALLOW_LOCAL_REPOS = True
        # Hashing cost is not what the suite tests; the production profile is covered by test_up.
        self.PASSWORD_HASH_PROFILE = "CHEAPEST"
        self.LOG_FORMAT = ""  # pytest captures logging as it is
