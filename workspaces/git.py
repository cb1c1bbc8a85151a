"""The one way Runner starts git: a prompt-free child process with a timeout that kills it and its
children, and errors whose messages never carry a credential.

Every other module in `workspaces` calls `run_git` / `run_git_bytes`; nothing else spawns git.
"""
import collections
import os
import queue
import re
import signal
import subprocess
import threading
import time
from urllib.parse import quote

GIT = "git"

# Inherited variables that would point git at another repository, index or object store than the
# one in `cwd` (set when Runner itself is started from a git hook or alias), or that would make git
# ask a person (a desktop askpass) instead of failing.
_INHERITED_HAZARDS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
)

# `scheme://userinfo@`: a token pasted as the user name, or user:password.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")
# Progress chatter on stderr, useless in an error message ("Receiving objects:  45% (9/20)").
_PROGRESS_LINE = re.compile(
    r"^(remote: )?([A-Z][a-z]+ [a-z]+: +\d+%|Enumerating objects:|Total \d+ |Cloning into )"
)


class GitError(Exception):
    """git failed. `message` is git's own explanation with every credential replaced by `***`."""

    def __init__(self, message, returncode=None, *, command=None, stdout=b""):
        super().__init__(message)
        self.message = message
        self.returncode = returncode
        # The git arguments, scrubbed like the message: safe to log.
        self.command = command
        self.stdout = stdout


class GitTimeout(GitError):
    """git did not finish in time; it and every process it started were killed."""


class Diverged(GitError):
    """A fast-forward is impossible: the local branch has commits the remote does not."""


class NotARepository(GitError):
    """The directory is gone or holds no git repository (deleted under us, or never cloned)."""


def scrub(text, secrets=()):
    """`text` with each secret (and its URL-encoded form) and any URL credentials replaced by `***`.

    ssh user names (`ssh://git@host`) are not credentials and are kept; an https user name is
    replaced, since tokens are commonly pasted there.
    """
    if not text:
        return text
    variants = set()
    for secret in secrets:
        if secret:
            variants.update((secret, quote(secret, safe="")))
    for secret in sorted(variants, key=len, reverse=True):
        text = text.replace(secret, "***")

    def userinfo(match):
        scheme, info = match["scheme"], match["userinfo"]
        if "ssh" in scheme.lower():
            if ":" not in info:
                return match[0]
            return f"{scheme}{info.split(':', 1)[0]}:***@"
        return f"{scheme}***@"

    return _USERINFO.sub(userinfo, text)


def clean_environ(base=None):
    """A copy of `base` (default: this process's environment) without the inherited variables that
    would redirect git or make it prompt."""
    env = dict(os.environ if base is None else base)
    for name in _INHERITED_HAZARDS:
        env.pop(name, None)
    return env


def add_config(env, pairs, *, first=False):
    """A copy of `env` with git config `pairs` [(key, value)] given through GIT_CONFIG_COUNT/KEY/VALUE.

    Environment config reaches every git process git itself starts (remote helpers, upload-pack), and
    a value never shows in a process listing. `first` puts the pairs before the entries already there
    (they are read in order, so later entries win for single values and extend lists).
    """
    env = dict(env)
    existing = []
    for i in range(int(env.pop("GIT_CONFIG_COUNT", "0") or 0)):
        existing.append((env.pop(f"GIT_CONFIG_KEY_{i}", ""), env.pop(f"GIT_CONFIG_VALUE_{i}", "")))
    entries = [*pairs, *existing] if first else [*existing, *pairs]
    for i, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    env["GIT_CONFIG_COUNT"] = str(len(entries))
    return env


def run_git(args, cwd=None, env=None, timeout=None, input=None, secrets=(), *, on_stderr_line=None):
    """Run `git *args` and return its stdout as text (undecodable bytes kept as surrogates, so
    paths round-trip through `os.fsencode`). Raises `GitError` (or a subclass) on failure."""
    out = run_git_bytes(args, cwd, env, timeout, input, secrets, on_stderr_line=on_stderr_line)
    return out.decode("utf-8", "surrogateescape")


def run_git_bytes(args, cwd=None, env=None, timeout=None, input=None, secrets=(), *, on_stderr_line=None):
    """Run `git *args` in `cwd` and return stdout as bytes.

    - `env`: the complete environment (default: this process's, cleaned). Whatever it holds, git
      never prompts, speaks English (`LC_ALL=C`, so messages can be matched), ignores the system
      config, runs no hooks of the repository, and calls no credential helper but the ones `env`
      itself configures (see `workspaces.credentials`).
    - `cwd`: the top of a repository or worktree. Discovery stops there: a directory that lost its
      `.git` is reported as `NotARepository`, never mistaken for an enclosing repository.
    - `timeout`: seconds; on expiry git and every process it started are killed (`GitTimeout`).
    - `input`: bytes for stdin. `secrets`: strings scrubbed from error messages.
    - `on_stderr_line(text)`: called, in this thread, with each stderr line as it arrives (lines end
      at `\\r` too, as git's progress meters rewrite one line).
    """
    if cwd is not None and not os.path.isdir(cwd):
        raise NotARepository(f"no such directory: {os.fspath(cwd)}", command=_scrubbed(args, secrets))
    args = [os.fspath(arg) for arg in args]
    # Hooks are the repository's business (and an agent could write them); none runs for Runner.
    command = [GIT, "-c", "core.hooksPath=/dev/null", *args]
    child_env = clean_environ() if env is None else dict(env)
    child_env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_CONFIG_NOSYSTEM="1")
    # An empty credential.helper clears the list read from global config (an operator's keychain or
    # `store` helper would otherwise be asked for, or persist, a token). Put first, so helpers that
    # `env` configures still count.
    child_env = add_config(child_env, [("credential.helper", "")], first=True)
    if cwd is not None:
        child_env["GIT_CEILING_DIRECTORIES"] = os.path.dirname(os.path.realpath(cwd))
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=child_env,
            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own process group, so a timeout kills ssh, remote helpers and upload-pack with it.
            process_group=0,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (no `git` on PATH)", command=_scrubbed(args, secrets)) from None
    try:
        if on_stderr_line is None:
            stdout, stderr = process.communicate(input, timeout)
        else:
            stdout, stderr = _stream(process, input, timeout, on_stderr_line)
    except subprocess.TimeoutExpired:
        raise GitTimeout(
            f"git {_subcommand(args)} timed out after {timeout:g} seconds", command=_scrubbed(args, secrets)
        ) from None
    finally:
        # Also on exceptions from a callback or a job's own time limit: git must not outlive us.
        if process.poll() is None:
            _kill(process)
    if process.returncode != 0:
        raise _error(args, process.returncode, stderr, stdout, secrets)
    return stdout


def _stream(process, input, timeout, on_line):
    """communicate(), but stderr lines go to `on_line` as they arrive, from this thread."""
    deadline = None if timeout is None else time.monotonic() + timeout
    lines = queue.SimpleQueue()
    stdout = []

    def read_stdout():
        stdout.append(process.stdout.read())

    def read_stderr():
        pending = b""
        while chunk := process.stderr.read1(65536):
            parts = re.split(rb"[\r\n]", pending + chunk)
            pending = parts.pop()
            for part in parts:
                lines.put(part)
        if pending:
            lines.put(pending)
        lines.put(None)

    def write_stdin():
        try:
            process.stdin.write(input)
        except BrokenPipeError:
            pass
        finally:
            process.stdin.close()

    threads = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    if input is not None:
        threads.append(threading.Thread(target=write_stdin, daemon=True))
    for thread in threads:
        thread.start()
    stderr = collections.deque(maxlen=200)
    try:
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            try:
                if remaining is not None and remaining <= 0:
                    raise queue.Empty
                line = lines.get(timeout=remaining)
            except queue.Empty:
                raise subprocess.TimeoutExpired(process.args, timeout) from None
            if line is None:
                break
            if line:
                stderr.append(line)
                on_line(line.decode("utf-8", "replace"))
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
        process.wait(remaining)
    finally:
        if process.poll() is None:
            _kill_group(process)
        for thread in threads:
            thread.join(5)
        process.stdout.close()
        process.stderr.close()
        process.wait()
    return (stdout[0] if stdout else b""), b"\n".join(stderr)


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(process):
    _kill_group(process)
    try:
        process.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError):
        # A grandchild that left the group still holds a pipe: stop waiting for it.
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe:
                pipe.close()
        process.wait()


def _subcommand(args):
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-c", "-C"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return ""


def _scrubbed(args, secrets):
    return [scrub(os.fspath(arg), secrets) for arg in args]


def _error(args, returncode, stderr, stdout, secrets):
    text = stderr.decode("utf-8", "replace")
    lines = [line.strip() for line in re.split(r"[\r\n]+", text)]
    lines = [line for line in lines if line and not _PROGRESS_LINE.match(line)]
    message = "\n".join(lines[-20:]) or f"git {_subcommand(args)} failed with exit status {returncode}"
    cls = NotARepository if "not a git repository" in text.lower() else GitError
    return cls(scrub(message, secrets), returncode, command=_scrubbed(args, secrets), stdout=stdout)


def commit_tree(cwd, tree, parent, message, author):
    """A commit object of `tree` on `parent` (None: a root commit) with `author` = (name, email) as
    author and committer; its sha. Plumbing only: no hooks, templates, editor or signing."""
    name, email = author
    identity = dict(
        clean_environ(),
        GIT_AUTHOR_NAME=name,
        GIT_AUTHOR_EMAIL=email,
        GIT_COMMITTER_NAME=name,
        GIT_COMMITTER_EMAIL=email,
    )
    parents = ["-p", parent] if parent else []
    return run_git(
        ["commit-tree", "--no-gpg-sign", tree, *parents, "-F", "-"],
        cwd=cwd,
        env=identity,
        input=message.encode("utf-8", "replace"),
    ).strip()
