"""The Codex CLI (`codex exec --json PROMPT`) as an agent provider.

Its JSONL events: `thread.started`, `turn.started`, `item.started`/`item.completed` (items of type
`agent_message`, `reasoning`, `command_execution`, `file_change`, `mcp_tool_call`, `web_search`,
`todo_list`, `error`), `turn.completed` with usage, `turn.failed`, and top-level `error`.
Codex ignores OPENAI_BASE_URL, so a custom endpoint becomes a `local` model provider on the argv.
"""
import json
import os

from jobs.providers.base import Adapter, agent_environ, event, loads, substitute

FILE_EVENTS = {"add": "file_created", "update": "file_updated", "delete": "file_deleted"}


class CodexAdapter(Adapter):
    kind = "codex"

    def __init__(self, cwd=None):
        self.cwd = cwd  # file_change paths are absolute; events carry them relative to this
        self.started = set()  # command item ids already announced
        self.failed = None

    def argv(self, command, prompt, model=None, safe_mode=False, base_url=None):
        command = list(command) or ["codex", "exec", "--json", "{prompt}"]
        has_prompt = any("{prompt}" in str(arg) for arg in command)
        # The prompt goes last, after `--`, so a prompt such as "review" or "-x" stays a prompt.
        argv = substitute([arg for arg in command if arg != "{prompt}"], prompt, model)
        if "exec" not in argv:
            argv.insert(1, "exec")
        if "--json" not in argv:
            argv.append("--json")
        argv.append("--skip-git-repo-check")
        if model and "-m" not in argv and "--model" not in argv:
            argv += ["-m", model]
        if base_url:
            provider = {"name": "local", "base_url": base_url.rstrip("/"), "env_key": "OPENAI_API_KEY",
                        "wire_api": "responses"}
            inline = ", ".join(f"{key} = {json.dumps(value)}" for key, value in provider.items())
            argv += ["-c", f"model_providers.local={{{inline}}}", "-c", "model_provider=local"]
        if safe_mode:
            # Files in the workspace only; no shell tool at all, no network, no web search.
            argv += ["--sandbox", "workspace-write", "--disable", "shell_tool", "--disable", "unified_exec",
                     "-c", 'web_search="disabled"', "-c", "sandbox_workspace_write.network_access=false"]
        else:
            # The worktree is the boundary (the server's own machine or container); no prompts.
            argv.append("--dangerously-bypass-approvals-and-sandbox")
        if "{prompt}" in command or not has_prompt:
            argv += ["--", prompt]
        return argv

    def env(self, base_env, api_key=None, base_url=None):
        env = agent_environ(base_env)
        if api_key:
            env["OPENAI_API_KEY"] = api_key
        # Codex needs a CODEX_HOME that exists (its sessions, logs and auth live there).
        home = env.get("CODEX_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".codex")
        os.makedirs(home, exist_ok=True)
        env["CODEX_HOME"] = home
        return env

    def parse_line(self, line):
        message = loads(line)
        if message is None:
            return super().parse_line(line)
        try:
            kind = str(message.get("type"))
            if kind in ("thread.started", "turn.started"):
                return [event("log", f"codex: {kind}", "debug", thread_id=message.get("thread_id"))]
            if kind in ("item.started", "item.updated", "item.completed"):
                return self._item(kind.split(".")[1], message.get("item") or {})
            if kind == "turn.completed":
                usage = message.get("usage") or {}
                return [event("token_usage",
                              f"{usage.get('input_tokens', 0)} input / {usage.get('output_tokens', 0)} output tokens",
                              "debug", usage=usage, input_tokens=usage.get("input_tokens", 0),
                              output_tokens=usage.get("output_tokens", 0))]
            if kind == "turn.failed":
                error = message.get("error") or {}
                self.failed = error.get("message") if isinstance(error, dict) else str(error)
                return [event("error", self.failed or "The turn failed.", "error", error=error)]
            if kind == "error":
                self.failed = message.get("message") or "Codex reported an error."
                return [event("error", self.failed, "error")]
            return [event("log", f"codex: {kind}", "debug", raw=message)]
        except Exception as exc:  # a shape we did not expect must not stop the run
            return [event("log", f"Unparsed agent output ({type(exc).__name__}): {line[:500]}", "warning")]

    def _item(self, phase, item):
        kind, item_id = item.get("type"), item.get("id")
        if kind == "command_execution":
            events = []
            if item_id not in self.started:
                self.started.add(item_id)
                events.append(event("command_started", item.get("command", ""), item_id=item_id,
                                    command=item.get("command", "")))
            if phase == "completed":
                exit_code = item.get("exit_code")
                output = item.get("aggregated_output", "")
                events.append(event("command_finished", f"{item.get('command', '')} → exit {exit_code}",
                                    "info" if exit_code == 0 else "warning", item_id=item_id,
                                    command=item.get("command", ""), exit_code=exit_code, stdout=output,
                                    stderr="", status=item.get("status")))
            return events
        if phase != "completed":
            return []
        if kind == "agent_message":
            text = item.get("text", "")
            return [event("agent_message", text, text=text)] if text.strip() else []
        if kind == "reasoning":
            return [event("log", item.get("text", ""), "debug", reasoning=True)]
        if kind == "file_change":
            return [
                event(FILE_EVENTS.get(change.get("kind"), "file_updated"),
                      f"{change.get('kind')} {self._relative(change.get('path'))}",
                      path=self._relative(change.get("path")),
                      item_id=item_id, status=item.get("status"))
                for change in item.get("changes") or () if isinstance(change, dict)
            ]
        if kind in ("mcp_tool_call", "web_search"):
            label = item.get("tool") or item.get("query") or kind
            return [event("tool_call", f"{kind} {label}", item_id=item_id, item=item)]
        if kind == "error":
            return [event("log", item.get("message", ""), "warning", item_id=item_id)]
        return [event("log", f"codex item: {kind}", "debug", item=item)]

    def outcome(self, exit_code, events_seen):
        status, summary = super().outcome(exit_code, events_seen)
        if status == "completed" and self.failed:
            return "failed", self.failed
        return status, summary

    def _relative(self, path):
        if self.cwd and isinstance(path, str) and os.path.isabs(path):
            rel = os.path.relpath(path, self.cwd)
            if not rel.startswith(".."):
                return rel
        return path
