"""The Claude Code CLI (`claude -p PROMPT --output-format stream-json --verbose`) as an agent provider.

Its stream-json lines: `system/init`, `assistant` messages (content blocks `text`, `tool_use`),
`user` messages carrying `tool_result` blocks plus a `tool_use_result` object describing what the
tool did, and a final `result` with usage and cost. File events come from `tool_use_result` (it says
whether a Write created or replaced the file, and it only exists once the tool really ran).
"""
import os
import re

from jobs.providers.base import Adapter, agent_environ, event, loads, substitute

# As root `--dangerously-skip-permissions` is refused; acceptEdits plus an explicit allow list runs
# the tools without prompts. Safe mode takes the shell and the network tools away entirely.
SHELL_AND_NETWORK_TOOLS = ("Bash", "BashOutput", "KillShell", "KillBash", "WebFetch", "WebSearch")
EXIT_CODE = re.compile(r"exit code:?\s*(-?\d+)", re.IGNORECASE)


class ClaudeCodeAdapter(Adapter):
    kind = "claude-code"

    def __init__(self, cwd=None):
        self.cwd = cwd  # replaced by the CLI's own cwd from system/init
        self.tools = {}  # tool_use_id -> {"name", "input"}
        self.failed = None

    def argv(self, command, prompt, model=None, safe_mode=False, base_url=None):
        command = list(command) or ["claude"]
        argv = substitute(command, prompt, model)
        if "{prompt}" not in " ".join(map(str, command)):
            argv[1:1] = ["-p", prompt]
        elif "-p" not in argv and "--print" not in argv:
            argv.insert(1, "-p")
        if "--output-format" not in argv:
            argv += ["--output-format", "stream-json"]
        if "--verbose" not in argv:
            argv.append("--verbose")
        if model and "--model" not in argv:
            argv += ["--model", model]
        if "--permission-mode" not in argv:
            argv += ["--permission-mode", "acceptEdits"]
        # Variadic options last, so they cannot swallow the prompt.
        if safe_mode:
            argv += ["--disallowedTools", ",".join(SHELL_AND_NETWORK_TOOLS)]
        else:
            argv += ["--allowedTools", "Bash,WebFetch,WebSearch"]
        return argv

    def env(self, base_env, api_key=None, base_url=None):
        env = agent_environ(base_env)
        env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
        if api_key:
            env["ANTHROPIC_API_KEY"] = api_key
            env.pop("ANTHROPIC_AUTH_TOKEN", None)
        if base_url:
            env["ANTHROPIC_BASE_URL"] = base_url.rstrip("/")
        return env

    # -- output -----------------------------------------------------------------------------------
    def parse_line(self, line):
        message = loads(line)
        if message is None:
            return super().parse_line(line)
        try:
            handler = getattr(self, "_" + str(message.get("type")), None)
            if handler is None:
                return [event("log", f"claude: {message.get('type')}", "debug", raw=message)]
            return handler(message)
        except Exception as exc:  # a shape we did not expect must not stop the run
            return [event("log", f"Unparsed agent output ({type(exc).__name__}): {line[:500]}", "warning")]

    def _system(self, message):
        if message.get("subtype") == "init":
            self.cwd = message.get("cwd") or self.cwd
            return [event(
                "log", f"Claude Code session started (model {message.get('model')})", "debug",
                session_id=message.get("session_id"), model=message.get("model"), cwd=message.get("cwd"),
                tools=message.get("tools"), permission_mode=message.get("permissionMode"),
                version=message.get("claude_code_version"),
            )]
        return [event("log", f"claude system: {message.get('subtype')}", "debug", raw=message)]

    def _assistant(self, message):
        events = []
        for block in _content(message.get("message")):
            kind = block.get("type")
            if kind == "text" and block.get("text", "").strip():
                events.append(event("agent_message", block["text"], text=block["text"]))
            elif kind == "thinking" and block.get("thinking"):
                events.append(event("log", block["thinking"], "debug", thinking=True))
            elif kind == "tool_use":
                events += self._tool_use(block)
        return events

    def _tool_use(self, block):
        name, tool_input, tool_id = block.get("name"), block.get("input") or {}, block.get("id")
        self.tools[tool_id] = {"name": name, "input": tool_input}
        path = self._relative(tool_input.get("file_path") or tool_input.get("notebook_path") or tool_input.get("path"))
        label = tool_input.get("command") if name == "Bash" else path or tool_input.get("pattern") or tool_input.get("url")
        events = [event("tool_call", f"{name} {label}" if label else str(name), path=path,
                        tool_use_id=tool_id, name=name, input=tool_input)]
        if name == "Bash":
            events.append(event("command_started", tool_input.get("command", ""), tool_use_id=tool_id,
                                command=tool_input.get("command", ""), description=tool_input.get("description"),
                                cwd=self.cwd))
        return events

    def _user(self, message):
        events = []
        use_result = message.get("tool_use_result")
        for block in _content(message.get("message")):
            if block.get("type") != "tool_result":
                continue
            tool_id = block.get("tool_use_id")
            tool = self.tools.get(tool_id, {})
            name, tool_input = tool.get("name"), tool.get("input", {})
            is_error = bool(block.get("is_error"))
            text = _text(block.get("content"))
            path = self._relative(tool_input.get("file_path") or tool_input.get("notebook_path"))
            events.append(event("tool_result", text, "warning" if is_error else "info", path=path,
                                tool_use_id=tool_id, name=name, is_error=is_error, content=text))
            if name == "Bash":
                events.append(self._command_finished(tool_id, tool_input, text, is_error, use_result))
            elif not is_error and isinstance(use_result, dict):
                events += self._file_events(name, tool_input, use_result)
        return events

    def _command_finished(self, tool_id, tool_input, text, is_error, result):
        result = result if isinstance(result, dict) else {}
        if is_error and (text or "").lstrip().startswith("<tool_use_error>"):
            # Refused before it ran (not allowed, e.g. safe mode, or bad input): no exit code.
            return event("command_finished", f"{tool_input.get('command', '')} → not run", "warning",
                         tool_use_id=tool_id, command=tool_input.get("command", ""), exit_code=None,
                         refused=True, stdout="", stderr=text, interrupted=False, cwd=self.cwd)
        found = EXIT_CODE.search(text or "")
        exit_code = int(found.group(1)) if found else (1 if is_error else 0)
        if result.get("interrupted"):
            exit_code = exit_code or -1
        stdout = result.get("stdout", text if not is_error else "")
        stderr = result.get("stderr", text if is_error else "")
        return event("command_finished", f"{tool_input.get('command', '')} → exit {exit_code}",
                     "warning" if exit_code else "info", tool_use_id=tool_id,
                     command=tool_input.get("command", ""), exit_code=exit_code, stdout=stdout, stderr=stderr,
                     interrupted=bool(result.get("interrupted")), cwd=self.cwd)

    def _file_events(self, name, tool_input, result):
        file_path = result.get("filePath") or tool_input.get("file_path") or tool_input.get("notebook_path")
        if not file_path:
            return []
        path = self._relative(file_path)
        change = result.get("type")
        if change == "create":
            return [event("file_created", f"Created {path}", path=path, tool=name)]
        if change == "update" or name in ("Edit", "MultiEdit", "NotebookEdit") or "structuredPatch" in result:
            return [event("file_updated", f"Updated {path}", path=path, tool=name)]
        return []

    def _result(self, message):
        usage = message.get("usage") or {}
        events = [event(
            "token_usage",
            f"{usage.get('input_tokens', 0)} input / {usage.get('output_tokens', 0)} output tokens",
            "debug", usage=usage, input_tokens=usage.get("input_tokens", 0),
            output_tokens=usage.get("output_tokens", 0), total_cost_usd=message.get("total_cost_usd"),
            model_usage=message.get("modelUsage"), duration_ms=message.get("duration_ms"),
            num_turns=message.get("num_turns"),
        )]
        text = message.get("result")
        if message.get("subtype") == "success" and not message.get("is_error"):
            events.append(event("summary_ready", text or "", text=text or "", num_turns=message.get("num_turns")))
        else:
            reason = text or "; ".join(map(str, message.get("errors") or [])) or message.get("subtype")
            self.failed = f"Claude Code stopped: {reason}"
            events.append(event("error", self.failed, "error", subtype=message.get("subtype")))
        return events

    def outcome(self, exit_code, events_seen):
        status, summary = super().outcome(exit_code, events_seen)
        if status == "completed" and self.failed:
            return "failed", self.failed
        return status, summary

    def _relative(self, path):
        if not path or not isinstance(path, str):
            return None
        if self.cwd and os.path.isabs(path):
            rel = os.path.relpath(path, self.cwd)
            if not rel.startswith(".."):
                return rel
        return path


def _content(message):
    content = (message or {}).get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or () if isinstance(block, dict)]


def _text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)
