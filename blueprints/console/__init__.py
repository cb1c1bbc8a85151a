"""The web console: a single-page app at /console/, served by the app itself from `static/`.

A plain Flask blueprint, not a flask-smorest one: the console is no part of the API or its
OpenAPI document, and it speaks to Runner only through that public API. Its libraries are
vendored built files (see vendor.sh), so serving it needs no Node.js.
"""
from blueprints.console.routes import bp


def init_app(app):
    from runner.extensions import limiter

    app.register_blueprint(bp)
    # Static files are no API work: a page load fetches a dozen modules, which must not eat the
    # caller's per-address request budget (the API calls the page then makes are limited as usual).
    limiter.exempt(bp)
