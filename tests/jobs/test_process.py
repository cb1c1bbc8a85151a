"""AgentProcess on real small processes: live lines, pause/resume of the group, terminate, time limit."""
import os
import signal
import sys
import threading
import time

from gitrepo import process_alive
from jobs.providers import AgentProcess
from jobs.providers.process import Lines

PY = sys.executable
TICKER = "import time,sys\nfor i in range(1000):\n    print(i, flush=True); time.sleep(0.02)"


def start(code, tmp_path, **kwargs):
    return AgentProcess([PY, "-c", code], tmp_path, dict(os.environ), **kwargs)


def collect(process):
    lines = []
    thread = threading.Thread(target=lambda: lines.extend(process.lines()) or None, daemon=True)
    thread.start()
    return lines, thread


def gone(pid):
    return not process_alive(pid)


def test_lines_arrive_while_the_agent_runs_and_stderr_cannot_block_it(tmp_path):
    code = ("import sys,time\nsys.stderr.write('e'*200000 + '\\nwarn\\n'); sys.stderr.flush()\n"
            "print('first', flush=True); time.sleep(30)")
    with start(code, tmp_path) as process:
        started = time.monotonic()
        assert next(iter(process.lines())) == "first"
        assert time.monotonic() - started < 10
        assert process.pid == os.getpgid(process.pid)  # its own process group
        process.terminate(grace_seconds=1)
    assert process.stderr_tail.endswith("warn\n")


def test_pause_stops_output_and_resume_continues(tmp_path):
    with start(TICKER, tmp_path) as process:
        lines, _ = collect(process)
        time.sleep(0.3)
        process.pause()
        time.sleep(0.2)  # what was already in the pipe arrives
        paused_at = len(lines)
        time.sleep(0.6)
        assert len(lines) == paused_at and process.paused
        process.resume()
        time.sleep(0.3)
        assert len(lines) > paused_at and not process.paused
        process.terminate(grace_seconds=1)


def test_terminate_kills_what_ignores_sigterm_after_the_grace_and_grandchildren_too(tmp_path):
    code = ("import signal,subprocess,sys,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "child = subprocess.Popen(['sleep', '300'])\nprint(child.pid, flush=True)\ntime.sleep(300)")
    with start(code, tmp_path) as process:
        grandchild = int(next(iter(process.lines())))
        started = time.monotonic()
        code = process.terminate(grace_seconds=0.5)
        assert code == -signal.SIGKILL and time.monotonic() - started >= 0.5
    deadline = time.monotonic() + 5
    while not gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(grandchild)


def test_terminate_of_a_paused_agent_still_ends_it(tmp_path):
    code = "import time\nprint('up', flush=True)\ntime.sleep(300)"
    with start(code, tmp_path) as process:
        next(iter(process.lines()))
        process.pause()
        assert process.terminate(grace_seconds=2) == -signal.SIGTERM


def test_time_limit_kills_and_paused_time_does_not_count(tmp_path):
    with start(TICKER, tmp_path, time_limit=0.6) as process:
        lines, thread = collect(process)
        process.pause()
        time.sleep(0.8)
        assert not process.timed_out and process.proc.poll() is None
        process.resume()
        assert process.wait(timeout=10) < 0
        assert process.timed_out and process.running_seconds() >= 0.6
        thread.join(5)


def test_exit_code_and_stdin_is_empty(tmp_path):
    code = "import sys\nprint(repr(sys.stdin.read()))\nsys.exit(3)"
    with start(code, tmp_path) as process:
        assert list(process.lines()) == ["''"]
        assert process.wait() == 3


# Writes its output in pieces cut at awkward places, each flushed on its own, so the reader sees
# them as separate chunks: a "\r\n" split between two writes, a character split inside its UTF-8
# bytes, a lone "\r" (a progress bar redrawing), bytes that are not UTF-8, no line end at the end.
AWKWARD = r"""
import os, sys, time
for piece in [b"one\r", b"\ntwo\n", b"caf\xc3", b"\xa9\n", b"10%\r20%\r", b"bad \xff byte\n", b"last"]:
    os.write(1, piece)
    time.sleep(0.05)
"""


def test_lines_are_cut_as_a_text_pipe_would_even_across_chunks(tmp_path):
    with start(AWKWARD, tmp_path) as process:
        chunks = list(process.chunks())
        assert process.wait() == 0
    assert len(chunks) > 1  # the output really came in pieces
    lines = Lines()
    cut = [line for chunk in chunks for line in lines.feed(chunk)] + lines.feed(b"", final=True)
    assert cut == ["one", "two", "café", "10%", "20%", "bad \ufffd byte", "last"]
    with start(AWKWARD, tmp_path) as process:
        assert list(process.lines()) == cut
