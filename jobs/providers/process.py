"""The agent's OS process: its own process group, live stdout lines, pause/resume/terminate, a time limit.

Signals go to the whole process group, so the shells and tools an agent spawns stop, resume and die
with it. stderr is drained by a thread (kept, and optionally handed to a callback) so a chatty stderr
can never block the agent while we read stdout. The time limit counts running time only: time spent
paused does not use it up.
"""
import codecs
import io
import os
import signal
import subprocess
import threading
import time

STDERR_KEEP = 64 * 1024  # characters of stderr kept for error messages
READ_SIZE = 64 * 1024  # the pipe's own capacity on Linux


class Lines:
    """Raw output cut into text lines as it comes, the way a text-mode pipe reads it: UTF-8 with
    undecodable bytes replaced, and "\n", "\r\n" or a lone "\r" ending a line (a progress bar's
    redraws are lines), even when a chunk ends between the two bytes of a "\r\n"."""

    def __init__(self):
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.decoder = io.IncrementalNewlineDecoder(utf8, translate=True)
        self.tail = ""

    def feed(self, chunk, final=False):
        """The lines `chunk` completes; with `final`, also the last one even without its line end."""
        *lines, self.tail = (self.tail + self.decoder.decode(chunk, final=final)).split("\n")
        if final and self.tail:
            lines.append(self.tail)
            self.tail = ""
        return lines


class AgentProcess:
    def __init__(self, argv, cwd, env, time_limit=None, on_stderr=None):
        """Start `argv` in `cwd` with exactly `env`; `time_limit` seconds of running time, then killed.

        `on_stderr(line)` is called from the stderr thread for each stderr line (without newline).
        """
        self.argv = list(argv)
        self.time_limit = time_limit
        self.timed_out = False
        self.stderr_tail = ""
        self._on_stderr = on_stderr
        self._lock = threading.Lock()
        self._paused_at = None
        self._paused_total = 0.0
        self._started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        self.pid = self.proc.pid
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        self._watchdog = None
        if time_limit is not None:
            self._watchdog = threading.Thread(target=self._watch_time, daemon=True)
            self._watchdog.start()

    # -- output -----------------------------------------------------------------------------------
    def chunks(self):
        """Yield stdout as the agent writes it, in raw chunks of up to READ_SIZE bytes, until EOF.

        One read takes whatever is there, so a chatty agent costs a call per 64 KiB rather than per
        line, and the wait for more output holds no lock. Cut it into lines with `Lines`.
        """
        fd = self.proc.stdout.fileno()  # under the text wrapper, whose buffer is never used
        while chunk := os.read(fd, READ_SIZE):
            yield chunk
        self.proc.stdout.close()

    def lines(self):
        """Yield stdout lines (without the line end) as the agent writes them, until EOF."""
        lines = Lines()
        for chunk in self.chunks():
            yield from lines.feed(chunk)
        yield from lines.feed(b"", final=True)

    __iter__ = lines

    def _drain_stderr(self):
        for line in self.proc.stderr:
            line = line.rstrip("\r\n")
            self.stderr_tail = (self.stderr_tail + line + "\n")[-STDERR_KEEP:]
            if self._on_stderr is not None:
                try:
                    self._on_stderr(line)
                except Exception:  # a failing callback must not stop the draining
                    pass
        self.proc.stderr.close()

    # -- control ----------------------------------------------------------------------------------
    def _signal(self, sig):
        try:
            os.killpg(self.pid, sig)
            return True
        except ProcessLookupError:  # the group is gone already
            return False

    def pause(self):
        """SIGSTOP the whole group; the time limit clock stops too."""
        with self._lock:
            if self._paused_at is None:
                self._paused_at = time.monotonic()
        self._signal(signal.SIGSTOP)

    def resume(self):
        """SIGCONT the whole group; the time limit clock runs again."""
        self._signal(signal.SIGCONT)
        with self._lock:
            if self._paused_at is not None:
                self._paused_total += time.monotonic() - self._paused_at
                self._paused_at = None

    @property
    def paused(self):
        return self._paused_at is not None

    def running_seconds(self):
        """Seconds the agent has been running, not counting time paused."""
        with self._lock:
            paused = self._paused_total
            if self._paused_at is not None:
                paused += time.monotonic() - self._paused_at
        return time.monotonic() - self._started - paused

    def terminate(self, grace_seconds=10.0):
        """SIGTERM the group (continuing it if stopped), SIGKILL it after `grace_seconds`; return the exit code."""
        self._signal(signal.SIGTERM)
        # A stopped process cannot act on SIGTERM until continued.
        self._signal(signal.SIGCONT)
        with self._lock:
            if self._paused_at is not None:
                self._paused_total += time.monotonic() - self._paused_at
                self._paused_at = None
        try:
            self.proc.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            pass
        # Even when the leader exited, stragglers of the group (grandchildren) may ignore SIGTERM.
        self._signal(signal.SIGKILL)
        return self.proc.wait()

    def kill(self):
        self._signal(signal.SIGKILL)
        self._signal(signal.SIGCONT)
        return self.proc.wait()

    def wait(self, timeout=None):
        """Wait for the agent to exit; return its exit code (negative: killed by that signal)."""
        code = self.proc.wait(timeout=timeout)
        self._stderr_thread.join(timeout=5)
        # Leave no part of the group behind once the agent itself is done.
        self._signal(signal.SIGKILL)
        return code

    def _watch_time(self):
        while self.proc.poll() is None:
            if self.running_seconds() >= self.time_limit:
                self.timed_out = True
                self.terminate(grace_seconds=5.0)
                return
            time.sleep(0.1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.terminate(grace_seconds=2.0)
        else:
            self._signal(signal.SIGKILL)
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except Exception:
                pass
