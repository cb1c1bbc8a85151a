"""Serving the console: index.html for every page path (client-side routing), versioned assets
cached for a year, and the security headers every console response carries."""
import functools
import hashlib
from pathlib import Path

from flask import Blueprint, current_app, request, send_from_directory
from werkzeug.exceptions import NotFound

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_PREFIX = "/console/assets"

bp = Blueprint("console", __name__, url_prefix="/console")

# No inline script or style anywhere, and nothing from other origins: agent output that slipped
# through unescaped could still not run. `blob:` images are Mermaid diagrams, drawn as SVG images
# (an image runs no script).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The only token ever in a URL is a stream token, in EventSource URLs; no Referer carries it on.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Python 3.11's mimetypes does not know .mjs, and a module script needs a JavaScript type.
MIMETYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
    ".json": "application/json",
}
IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def assets_version(static_dir=STATIC_DIR):
    """A hash of every asset's path and content: part of the asset URLs, so a changed file gets a
    new URL and every URL can be cached for good."""
    digest = hashlib.sha256()
    for path in sorted(p for p in static_dir.rglob("*") if p.is_file() and p.name != "index.html"):
        digest.update(path.relative_to(static_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def _index_html(version):
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return html.replace("{{assets}}", f"{ASSETS_PREFIX}/{version}")


@bp.after_request
def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@bp.get("/", defaults={"path": ""})
@bp.get("/<path:path>")
def page(path):
    """Every console path is the one page; the browser's router picks what to show."""
    if path == "assets" or path.startswith("assets/"):
        raise NotFound()
    version = assets_version()
    response = current_app.response_class(_index_html(version), mimetype="text/html")
    # Always revalidated (cheaply: the ETag is the assets version), so a new release is seen at once.
    response.headers["Cache-Control"] = "no-cache"
    response.set_etag(version)
    return response.make_conditional(request)


@bp.get("/assets/<string:version>/<path:filename>")
def asset(version, filename):
    """A static file. Under the current version it never changes; under another (a page loaded
    before a release) it is served too, but not cached."""
    if Path(filename).name == "index.html":
        raise NotFound()
    response = send_from_directory(
        STATIC_DIR, filename, mimetype=MIMETYPES.get(Path(filename).suffix), max_age=None, conditional=True
    )
    response.headers["Cache-Control"] = IMMUTABLE if version == assets_version() else "no-cache"
    return response
