"""The web console end to end, in Debian's chromium against `runner up`: an admin configures the
claude provider and toggles another, registers a repository, drafts and starts a run of the real
`claude` CLI against the scripted model server, watches its events arrive live while the server
cuts the stream twice (once within the stream token's life, once after), then approves and commits
it; and a user reads the managed docs (markdown and Mermaid, sanitized) and compares and restores
snapshots. Screenshots of the pages go to test-artifacts/console/."""
import threading
import time


from console_browser import model_server, one_database, sign_in
from gitrepo import git, origin_url
from helpers import PASSWORD

pytestmark = one_database

FINAL = 'All done. <img src=x onerror="window.__pwned=1"> stays text.'
STREAM_TOKEN_TTL = 30  # RUNNER_STREAM_TOKEN_TTL_SECONDS of the console_server fixture


def _gated(gate, turn):
    """A model turn answered only once the test opens `gate`: the run waits there, running."""

    def answer(workdir):
        assert gate.wait(180), "the test never released this turn"
        return turn(workdir)

    return answer


def _event_ids(app, run_id):
    from runner.extensions import db
    from runner.models import AgentEvent

    with app.app_context():
        ids = list(db.session.scalars(db.select(AgentEvent.id).where(AgentEvent.run_id == run_id).order_by(AgentEvent.id)))
        db.session.remove()
        return ids


def _run_row(app, run_id):
    from runner.extensions import db
    from runner.models import Run

    with app.app_context():
        run = db.session.get(Run, run_id)
        row = {"status": run.status, "commit_sha": run.commit_sha, "branch": run.branch}
        db.session.remove()
        return row


SHOWN_IDS = """async () => {
  // Every event id the virtualized timeline shows, read by scrolling it from top to bottom.
  const list = document.querySelector('.timeline');
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  const ids = new Set();
  list.scrollTop = 0;
  await frame();
  for (;;) {
    for (const row of list.querySelectorAll('.event:not([hidden])')) ids.add(Number(row.dataset.eventId));
    if (list.scrollTop + list.clientHeight >= list.scrollHeight - 1) break;
    list.scrollTop += list.clientHeight;
    await frame();
  }
  return [...ids].sort((a, b) => a - b);
}"""


def _stream(page):
    return page.eval_on_selector(".stream-state", "(el) => ({...el.dataset})")


def _wait_stream(page, **expected):
    """Wait until the stream indicator's data attributes hold `expected` (numbers compared as text)."""
    condition = " && ".join(f"el.dataset.{key} === '{value}'" for key, value in expected.items())
    try:
        page.wait_for_function(f"() => {{ const el = document.querySelector('.stream-state'); return el && {condition}; }}", timeout=60_000)
    except Exception as error:
        raise AssertionError(f"the stream never reached {expected}: it shows {_stream(page)}") from error


def _buttons(page):
    return page.eval_on_selector_all(".run-actions button[data-action]", "(els) => els.map((el) => el.dataset.action)")


def test_a_claude_run_from_sign_in_to_commit_in_the_browser(app, make_user, console_server, page, screenshot, tmp_path, agent_bin):
    from runner.extensions import db
    from runner.models import AgentProvider

    _, email = make_user(admin=True)
    origin = origin_url(tmp_path / "origin")
    gates = [threading.Event(), threading.Event()]
    server = model_server.ScriptedModelServer([
        lambda wd: ("tool", "Write", {"file_path": f"{wd}/hello.txt", "content": "hello\n"}),
        _gated(gates[0], lambda wd: ("tool", "Edit", {"file_path": f"{wd}/hello.txt", "old_string": "hello", "new_string": "hello world"})),
        _gated(gates[1], lambda wd: ("tool", "Bash", {"command": "ls", "description": "List files"})),
        lambda wd: ("text", FINAL),
    ], "anthropic")
    try:
        sign_in(page, console_server, email)

        # --- admin: elevate, point the claude provider at the model server, toggle a provider ---
        page.click("header a:text('Admin')")
        page.wait_for_selector("main[data-page=admin] .providers form")
        assert page.is_disabled("form[data-provider=codex] input[name=enabled]")  # read only before elevating
        page.click("[data-action=elevate]")
        page.fill("dialog input[name=password]", PASSWORD)
        page.click("dialog button[type=submit]")
        page.wait_for_selector("header .elevated")
        page.wait_for_selector("form[data-provider=codex] input[name=enabled]:not([disabled])")

        def set_param(key, value):
            row = f"tr[data-param='{key}']"
            page.fill(f"{row} input", value)
            page.click(f"{row} button[data-param='{key}']")
            page.wait_for_selector(f"{row} td:text-is('stored')")

        set_param("providers.anthropicBaseUrl", server.url)
        set_param("providers.anthropicApiKey", "sk-ant-console-secret")
        secret_input = "tr[data-param='providers.anthropicApiKey'] input"
        assert page.input_value(secret_input) == ""  # write-only: never shown back
        assert "•••• set" in page.get_attribute(secret_input, "placeholder")
        assert "sk-ant-console-secret" not in page.content()

        command = "\n".join([agent_bin["claude"], "-p", "{prompt}", "--output-format", "stream-json", "--verbose"])
        page.fill("form[data-provider=claude-code] textarea[name=command]", command)
        page.click("form[data-provider=claude-code] button[type=submit]")
        page.wait_for_selector("form[data-provider=claude-code] .badge-available")

        def provider_enabled(key):
            with app.app_context():
                enabled = db.session.scalar(db.select(AgentProvider.enabled).where(AgentProvider.key == key))
                db.session.remove()
                return enabled

        page.uncheck("form[data-provider=codex] input[name=enabled]")
        page.wait_for_selector(".toast:text('Codex: disabled')")
        assert provider_enabled("codex") is False
        page.check("form[data-provider=codex] input[name=enabled]")
        page.wait_for_selector(".toast:text('Codex: enabled')")
        assert provider_enabled("codex") is True
        # Enabling a provider without a command is refused; the page says why and shows what holds.
        page.check("form[data-provider=command] input[name=enabled]")
        page.wait_for_selector(".toast-error:has-text('An enabled provider needs a command')")
        assert not page.is_checked("form[data-provider=command] input[name=enabled]")
        assert provider_enabled("command") is False
        screenshot(page, "admin")

        # --- a project from a file:// origin ---
        page.click("header a:text('Projects')")
        page.fill("form.new-project input[name=name]", "demo")
        page.fill("form.new-project input[name=repositoryUrl]", origin)
        page.click("form.new-project button[type=submit]")
        page.wait_for_selector(".project-header .badge-ready", timeout=90_000)

        # --- draft and start a run of the real claude CLI ---
        page.fill("form input[name=title]", "Hello file")
        page.fill("form textarea[name=prompt]", "Write hello.txt")
        page.select_option("select[name=selectedAgent]", "claude-code")
        page.select_option("select[name=selectedModel]", "sonnet")
        page.click(".new-run button[type=submit]")
        page.wait_for_selector("main[data-page=runs] .run-status .badge-draft")
        run_id = int(page.url.rstrip("/").split("/")[-1])
        _wait_stream(page, state="live", opens="1", tokenFetches="1")
        first_token_at = time.monotonic()
        assert _buttons(page) == ["start", "cancel"]
        page.click("[data-action=start]")

        # Events arrive live: the Write happened; the Edit waits for the test.
        page.wait_for_selector(".timeline .event.type-file_created", timeout=120_000)
        page.wait_for_selector(".run-status .badge-running")
        assert _buttons(page) == ["pause", "cancel"]
        screenshot(page, "run-live")

        # --- cut 1: the server's side drops the stream while the token is fresh. The browser's
        # own reconnect (Last-Event-ID header, same URL) resumes it; no new token is fetched.
        assert time.monotonic() - first_token_at < STREAM_TOKEN_TTL - 3, "too slow to test a fresh-token reconnect"
        console_server.kill_http_workers()
        gates[0].set()
        page.wait_for_selector(".timeline .event.type-file_updated", timeout=60_000)
        _wait_stream(page, state="live", opens="2", tokenFetches="1")

        # --- cut 2, once the token has expired: EventSource gives up on the 401, and the page
        # fetches a fresh token and resumes after the last id it shows (lastEventId=).
        time.sleep(max(0.0, first_token_at + STREAM_TOKEN_TTL + 1 - time.monotonic()))
        console_server.kill_http_workers()
        gates[1].set()
        page.wait_for_selector(".run-status .badge-completed", timeout=120_000)
        _wait_stream(page, state="ended", tokenFetches="2", duplicates="0")
        assert _stream(page)["opens"] == "3"

        # Every event of the run is shown once, in order: nothing lost or repeated across the cuts.
        assert page.evaluate(SHOWN_IDS) == _event_ids(app, run_id)
        types = page.eval_on_selector_all(".timeline .event", "(els) => els.map((el) => el.className)")
        assert any("type-command_finished" in name for name in types)
        # Agent output is text, never markup.
        page.evaluate("document.querySelector('.timeline').scrollTop = 1e9")
        message = page.locator(".timeline .event.type-agent_message .event-message").last
        assert message.text_content() == FINAL
        assert page.evaluate("window.__pwned") is None
        assert page.locator(".timeline img").count() == 0
        assert set(_buttons(page)) == {"approve", "reject"}

        # --- what the run did: diff, command output through its signed link, summary ---
        page.click("[data-tab=files]")
        page.click(".panel button.link:text('hello.txt')")
        page.wait_for_selector("pre.diff .diff-add:text('+hello world')")
        page.click("[data-tab=commands]")
        page.click(".panel button.link:has(code:text-is('ls'))")
        page.wait_for_selector("pre.stdout:has-text('hello.txt')")
        page.click("[data-tab=summary]")
        page.wait_for_selector(".panel table code:text-is('hello.txt')")
        page.click("[data-tab=timeline]")
        screenshot(page, "run-completed")

        # --- approve, then commit ---
        page.click("[data-action=approve]")
        page.fill("form.review textarea[name=notes]", "Looks right.")
        page.click("[data-action=approve-submit]")
        page.wait_for_selector("[data-action=commit]")
        assert set(_buttons(page)) == {"reject", "commit"}
        page.click("[data-action=commit]")
        page.wait_for_selector(".commit-sha code")
        row = _run_row(app, run_id)
        assert row["commit_sha"] and page.get_attribute(".commit-sha code", "title") == row["commit_sha"]
        from jobs.runs import worktree_path
        from runner.models import Run

        with app.app_context():
            worktree = worktree_path(db.session.get(Run, run_id))
            db.session.remove()
        assert git(worktree, "rev-parse", "HEAD").strip() == row["commit_sha"]
        assert git(worktree, "show", "HEAD:hello.txt") == "hello world\n"
        # The review and the commit reach the timeline too (the page read what the ended run added).
        page.wait_for_selector(".timeline .event.type-commit_created", state="attached")
        page.wait_for_function("() => document.querySelector('.stream-state').dataset.state === 'ended'")
        assert page.evaluate(SHOWN_IDS) == _event_ids(app, run_id)
        # Elevated for settings:write only: no push button, an offer to elevate for git:push instead.
        assert "push" not in _buttons(page)
        assert page.is_visible(".run-actions button:text('Elevate to push…')")
        screenshot(page, "run-committed")

        assert page.csp_violations() == []
        assert page.errors == []
    finally:
        for gate in gates:
            gate.set()
        server.close()


DIAGRAMS_DOC = """# Architecture

Text by people. <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>
[a link](javascript:window.__pwned=3)

```mermaid
flowchart LR
  web[Web console] --> api[API]
  api --> db[(Database)]
```
"""


def test_docs_render_safely_with_diagrams_and_snapshots_compare_and_restore(app, make_user, console_server, page, screenshot, tmp_path):
    from runner import projects

    _, email = make_user()
    origin = origin_url(tmp_path / "origin", {"README.md": "# demo\n", "docs/ai/ARCHITECTURE_DIAGRAMS.md": DIAGRAMS_DOC})
    sign_in(page, console_server, email)
    page.fill("form.new-project input[name=name]", "docs demo")
    page.fill("form.new-project input[name=repositoryUrl]", origin)
    page.click("form.new-project button[type=submit]")
    page.wait_for_selector(".project-header .badge-ready", timeout=90_000)
    project_id = int(page.url.rstrip("/").split("/")[-1])
    assert "Admin" in page.inner_text("header")  # settings:read is in the default token
    assert page.locator("header .elevated").count() == 0

    # --- managed docs: markdown rendered, its HTML sanitized, the Mermaid diagram drawn ---
    page.click(".project-header a:text('Docs')")
    page.click("button[data-doc=architecture-diagrams]")
    page.wait_for_selector("article.doc figure.mermaid img.diagram")
    page.wait_for_function("() => document.querySelector('img.diagram').naturalWidth > 100")
    assert page.inner_text("article.doc h1") == "Architecture"
    assert "Text by people." in page.inner_text("article.doc")
    assert page.locator("article.doc script, article.doc img[onerror], article.doc a[href^='javascript:']").count() == 0
    assert page.get_attribute("article.doc a:text('a link')", "href") is None
    assert page.evaluate("window.__pwned") is None
    screenshot(page, "docs")
    # The diagrams computed now from the checkout, also drawn.
    page.click("button[data-doc=diagrams]")
    page.wait_for_selector("article.doc figure.mermaid img.diagram")
    # The CSP blocked what it saw inline: the handlers of the untrusted markup while DOMPurify parsed
    # it (inert anyway), and the inline styles Mermaid measures its drawing with (the image it
    # makes keeps its own). Nothing was ever loaded from anywhere else, and no injected script ran.
    violations = page.csp_violations()
    assert {v["directive"] for v in violations} <= {"script-src-attr", "style-src-attr", "style-src-elem"}, violations
    assert {v["blocked"] for v in violations} <= {"inline"}, violations
    assert page.evaluate("window.__pwned") is None

    # --- snapshots: take one, change the checkout, compare, restore ---
    page.goto(console_server.url(f"projects/{project_id}/snapshots"))
    page.fill("input[name=description]", "before the change")
    page.click("form button:text('Take snapshot')")
    row = page.locator("tr[data-snapshot-id]:has-text('before the change')")
    row.wait_for()
    with app.app_context():
        checkout = projects.repo_dir(project_id)
    (checkout / "README.md").write_text("# demo, changed by hand\n")
    row.locator("[data-action=compare]").click()
    page.wait_for_selector(".compare-result pre.diff .diff-add:text('+# demo, changed by hand')")
    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("[data-action=restore]").click()
    page.wait_for_selector("tr[data-snapshot-id]:has-text('restore checkpoint')")
    assert (checkout / "README.md").read_text() == "# demo\n"
    screenshot(page, "snapshots")
    assert page.errors == []


def test_run_actions_offered_match_the_state_machine_and_abilities(app, console_server, page, make_user):
    """The console's table of actions, run in the browser against every status and ability set,
    agrees with runner.states.RUN_ACTIONS and the abilities each route requires."""
    from runner import states

    _, email = make_user()
    sign_in(page, console_server, email)
    module = page.evaluate("document.querySelector('script[type=module]').src.replace(/app\\.js$/, 'pages/run.js')")
    ability_of = {"start": "runs:start", "pause": "runs:control", "resume": "runs:control", "cancel": "runs:control", "retry": "runs:control"}
    ability_sets = [[], ["projects:read"], ["runs:start"], ["runs:control"], ["runs:*", "git:commit"], ["*"]]
    offered = page.evaluate(
        """async ([module, statuses, abilitySets]) => {
          const { allowedActions } = await import(module);
          const out = {};
          for (const status of statuses) for (const abilities of abilitySets) {
            out[`${status}|${abilities.join(',')}`] = allowedActions({ status, reviewStatus: null, commitSha: null }, abilities).map((a) => a.name);
          }
          return out;
        }""",
        [module, list(states.RUN_STATUSES), ability_sets],
    )
    for status in states.RUN_STATUSES:
        for abilities in ability_sets:
            held = lambda ability: any(g == "*" or g == ability or (g.endswith(":*") and ability.startswith(g[:-1])) for g in abilities)  # noqa: E731
            expected = {name for name, ability in ability_of.items() if status in states.RUN_ACTIONS[name].allowed_from and held(ability)}
            if status in states.RUN_ACTIONS["review"].allowed_from and held("runs:control"):
                expected |= {"approve", "reject"}  # not reviewed yet
            assert set(offered[f"{status}|{','.join(abilities)}"]) == expected, (status, abilities)
    # Commit and push follow the review: approved, then committed, then pushed.
    approved = page.evaluate(
        """async (module) => {
          const { allowedActions } = await import(module);
          const run = { status: 'completed', reviewStatus: 'approved', commitSha: null, pushedSha: null };
          const names = (r, abilities) => allowedActions(r, abilities).map((a) => a.name).sort();
          return {
            approved: names(run, ['*']),
            committed: names({ ...run, commitSha: 'abc' }, ['*']),
            pushed: names({ ...run, commitSha: 'abc', pushedSha: 'abc' }, ['*']),
            noPush: names({ ...run, commitSha: 'abc' }, ['runs:control', 'git:commit']),
          };
        }""",
        module,
    )
    assert approved == {"approved": ["commit", "reject"], "committed": ["push", "reject"], "pushed": ["reject"], "noPush": ["reject"]}
