"""WSGI entry point for production: `gunicorn -k gevent wsgi:app` (configuration from RUNNER_*)."""
from runner import create_app

app = create_app()
