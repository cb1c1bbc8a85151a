"""The web console over HTTP: one page for every console path, its security headers, versioned
assets cached for good, vendored libraries as pinned, and nothing of it in the API document."""
import json
import re
from html.parser import HTMLParser

import pytest

from blueprints.console import routes
from helpers import assert_problem

STATIC = routes.STATIC_DIR
CONSOLE_DIR = STATIC.parent


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(html):
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def _get(client, path, **kwargs):
    # Buffered: a streamed static file would otherwise be left open by the test client.
    return client.get(path, buffered=True, **kwargs)


def _assets(html):
    return [attrs.get("src") or attrs.get("href") for tag, attrs in _tags(html) if tag in ("script", "link")]


def test_every_console_path_is_the_one_page_with_a_strict_csp(client):
    index = _get(client, "/console/")
    assert index.status_code == 200
    assert index.mimetype == "text/html"
    csp = index.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert index.headers["X-Content-Type-Options"] == "nosniff"
    assert index.headers["Referrer-Policy"] == "no-referrer"
    assert index.headers["Cache-Control"] == "no-cache"

    html = index.get_data(as_text=True)
    tags = _tags(html)
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts), "an inline script would be blocked by the CSP"
    assert not [tag for tag, _ in tags if tag == "style"]
    assert not [attrs for _, attrs in tags if "style" in attrs or any(name.startswith("on") for name in attrs)]

    # Deep links are the same page: the browser's router shows the run, the docs, the admin page.
    for path in ("/console/runs/12", "/console/projects/3/docs?doc=project-map", "/console/admin", "/console/no/such/page"):
        deep = _get(client, path)
        assert deep.status_code == 200, path
        assert deep.get_data(as_text=True) == html
        assert deep.headers["Content-Security-Policy"] == csp

    assert _get(client, "/console").status_code in (301, 308)  # to /console/
    # Revalidation is cheap: the ETag is the assets' version.
    assert _get(client, "/console/", headers={"If-None-Match": index.headers["ETag"]}).status_code == 304


def test_assets_are_versioned_cached_for_good_and_served_as_modules(client):
    html = _get(client, "/console/runs/1").get_data(as_text=True)
    version = routes.assets_version()
    app_js = next(url for url in _assets(html) if url.endswith("/app.js"))
    assert app_js == f"/console/assets/{version}/app.js"

    response = _get(client, app_js)
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Content-Security-Policy" in response.headers
    # A vendored .mjs chunk is a JavaScript module too (Python 3.11 does not know .mjs).
    mermaid = _get(client, f"/console/assets/{version}/vendor/mermaid/mermaid.esm.min.mjs")
    assert (mermaid.status_code, mermaid.mimetype) == (200, "text/javascript")
    css = _get(client, f"/console/assets/{version}/console.css")
    assert (css.status_code, css.mimetype) == (200, "text/css")
    # A page loaded before a release asks with the old version: served, but not kept.
    stale = _get(client, "/console/assets/0123456789ab/app.js")
    assert stale.status_code == 200 and stale.headers["Cache-Control"] == "no-cache"
    # Conditional requests work as for any static file.
    assert _get(client, app_js, headers={"If-None-Match": response.headers["ETag"]}).status_code == 304

    assert_problem(_get(client, f"/console/assets/{version}/no-such.js"), 404)
    assert_problem(_get(client, f"/console/assets/{version}/index.html"), 404)  # only ever rendered
    assert_problem(_get(client, f"/console/assets/{version}/../routes.py"), 404)


def test_the_version_changes_with_any_asset(tmp_path):
    (tmp_path / "a.js").write_text("one")
    first = routes.assets_version.__wrapped__(tmp_path)
    (tmp_path / "a.js").write_text("two")
    assert routes.assets_version.__wrapped__(tmp_path) != first


def test_every_module_import_of_the_console_resolves(client):
    """Plain ES modules with no build step: each relative import must name a file that is served."""
    version = routes.assets_version()
    sources = [path for path in STATIC.rglob("*.js") if "vendor" not in path.parts]
    assert len(sources) >= 10
    pattern = re.compile(r"""(?:import|from)\s*\(?\s*['"](\.{1,2}/[^'"]+)['"]""")
    for source in sources:
        for target in pattern.findall(source.read_text()):
            resolved = (source.parent / target).resolve()
            assert resolved.is_file(), f"{source.name} imports {target}, which does not exist"
            url = f"/console/assets/{version}/{resolved.relative_to(STATIC).as_posix()}"
            assert _get(client, url).status_code == 200, url


def test_no_console_code_writes_untrusted_strings_as_html():
    """Agent output, paths, diffs and messages reach the page as text only. The one HTML sink is the
    markdown renderer, whose HTML comes out of DOMPurify on the line before."""
    sink = re.compile(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|createContextualFragment")
    found = {}
    for source in STATIC.rglob("*.js"):
        if "vendor" in source.parts:
            continue
        for number, line in enumerate(source.read_text().splitlines(), 1):
            if sink.search(line):
                found[f"{source.relative_to(STATIC)}:{number}"] = line.strip()
    assert list(found) == [next(key for key in found if key.startswith("markdown.js:"))], found
    [line] = found.values()
    assert "toSafeHtml(" in line
    assert "DOMPurify.sanitize(" in (STATIC / "markdown.js").read_text()


def test_the_vendored_libraries_are_the_pinned_ones_with_their_licences():
    pins = json.loads((CONSOLE_DIR / "package.json").read_text())["dependencies"]
    lock = json.loads((CONSOLE_DIR / "package-lock.json").read_text())
    listed = {}
    for line in (STATIC / "vendor" / "VERSIONS.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version, _ = line.split(" ", 2)
            listed[name] = version
    assert listed == pins
    for name, version in pins.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
        assert lock["packages"][f"node_modules/{name}"]["integrity"].startswith("sha512-")
        assert (STATIC / "vendor" / name / "LICENSE").is_file(), name
    assert (CONSOLE_DIR / "vendor.sh").stat().st_mode & 0o111


def test_console_files_are_not_rate_limited_and_not_in_the_api_document(client, config):
    config_limit = int(config.RATELIMIT_DEFAULT.split("/")[0])
    version = routes.assets_version()
    for _ in range(config_limit + 5):
        response = _get(client, f"/console/assets/{version}/dom.js")
        assert response.status_code == 200
    assert "X-RateLimit-Limit" not in response.headers
    paths = _get(client, "/api/openapi.json").get_json()["paths"]
    assert not [path for path in paths if not path.startswith("/api/")]


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_the_console_only_answers_reads(client, method):
    response = getattr(client, method)("/console/runs/1")
    assert_problem(response, 405)
