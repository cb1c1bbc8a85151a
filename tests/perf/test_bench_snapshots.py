"""Benchmark: snapshots against their git floors on a 10,000-file repository (run with -m perf -s).

Prints, side by side from one run, the median of several timings of
- create_snapshot           vs `git stash create`            (tracked changes only: less work)
- restore_snapshot          vs `git read-tree -u --reset`     (leaves untracked files: less work)
                            and `git checkout -f <sha> -- .`
- compare(base, "current")  vs `git diff <sha>`               (tracked changes only: less work)
                            and the same work in bare git: `git add -A` into a copy of the index,
                            then `git diff --cached -M <sha>`
- compare(base, other)      vs `git diff <sha> <sha>`
and each ratio. Asserts nothing about speed. The working tree: 10,000 files of 1–4 KB in 200
directories, committed; then 100 files modified, 50 added, 50 deleted (uncommitted).
"""
import os
import random
import shutil
import statistics
import subprocess
import time

import pytest

from workspaces import snapshots

pytestmark = pytest.mark.perf
RUNS = 11
FILES = 10_000
GOAL = 1.5


def _git(repo, *args):
    return subprocess.run(
        ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com", "-C", str(repo), *args],
        check=True,
        capture_output=True,
    ).stdout.decode()


def _text(rng, size):
    words = ["alpha", "beta", "gamma", "delta", "return", "value", "import", "def", "class", "self", "x", "42"]
    lines, length = [], 0
    while length < size:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + "\n"
        lines.append(line)
        length += len(line)
    return "".join(lines)


def _build(repo, rng):
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    paths = []
    for i in range(FILES):
        path = repo / f"pkg{i % 10}" / f"mod{(i // 10) % 20}" / f"file{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_text(rng, rng.randint(1024, 4096)))
        paths.append(path)
    (repo / ".gitignore").write_text("*.log\n")
    # Past git's racy-timestamp window, so the committed index holds trustworthy stat data, as a
    # long-lived checkout's does.
    time.sleep(1.1)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "10k files")
    _git(repo, "status", "--porcelain")
    return paths


def _mutate(repo, paths, rng):
    chosen = rng.sample(paths, 200)
    for path in chosen[:100]:
        path.write_text(path.read_text() + _text(rng, 200))
    for path in chosen[100:150]:
        path.unlink()
    for i in range(50):
        new = repo / f"pkg{i % 10}" / "new" / f"added{i}.py"
        new.parent.mkdir(parents=True, exist_ok=True)
        new.write_text(_text(rng, 2048))


def _paired(ours, floor, setup=None, runs=RUNS):
    """Median milliseconds of `ours` and of `floor`, run alternately so that load on the machine
    weighs on both alike."""
    timings = ([], [])
    for _ in range(runs):
        for action, sink in ((ours, timings[0]), (floor, timings[1])):
            if setup:
                setup()
            start = time.perf_counter()
            action()
            sink.append(time.perf_counter() - start)
    return tuple(statistics.median(t) * 1000 for t in timings)


def test_snapshot_operations_against_their_git_floors(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no developer config in the measurements
    rng = random.Random(7)
    repo = tmp_path / "repo"
    paths = _build(repo, rng)
    base_commit = _git(repo, "rev-parse", "HEAD").strip()
    base = snapshots.create_snapshot(repo, "refs/runner/snapshots/base", "base")
    _mutate(repo, paths, rng)
    changed = snapshots.create_snapshot(repo, "refs/runner/snapshots/changed", "changed")
    saved_index = tmp_path / "index.saved"
    shutil.copyfile(repo / ".git" / "index", saved_index)

    def back_to_changed():
        # The same starting point for every restore: the changed tree, the real index as it was.
        snapshots.restore_snapshot(repo, changed["commit_sha"])
        shutil.copyfile(saved_index, repo / ".git" / "index")

    def add_all_then_diff_cached():
        index = tmp_path / "index.bench"
        shutil.copyfile(repo / ".git" / "index", index)
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        subprocess.run(["git", "-C", str(repo), "add", "-A"], env=env, check=True)
        diff = ["git", "-C", str(repo), "diff", "--cached", "-M", base_commit]
        subprocess.run(diff, env=env, check=True, capture_output=True)
        index.unlink()

    counter = iter(range(10**6))
    create = _paired(
        lambda: snapshots.create_snapshot(repo, f"refs/runner/snapshots/b{next(counter)}", "bench"),
        lambda: _git(repo, "stash", "create"),
    )
    restore = _paired(
        lambda: snapshots.restore_snapshot(repo, base["commit_sha"]),
        lambda: _git(repo, "read-tree", "-u", "--reset", base["commit_sha"]),
        back_to_changed,
    )
    restore_checkout = _paired(
        lambda: snapshots.restore_snapshot(repo, base["commit_sha"]),
        lambda: _git(repo, "checkout", "-f", base["commit_sha"], "--", "."),
        back_to_changed,
    )
    current = _paired(lambda: snapshots.compare(repo, base["commit_sha"]), lambda: _git(repo, "diff", base_commit))
    current_same_work = _paired(lambda: snapshots.compare(repo, base["commit_sha"]), add_all_then_diff_cached)
    two_snapshots = _paired(
        lambda: snapshots.compare(repo, base["commit_sha"], changed["commit_sha"]),
        lambda: _git(repo, "diff", base["commit_sha"], changed["commit_sha"]),
    )
    figures = [
        ("snapshot create", "git stash create", create),
        ("restore (changed -> base)", "git read-tree -u --reset", restore),
        ("restore (changed -> base)", "git checkout -f <sha> -- .", restore_checkout),
        ("compare base vs current", "git diff <sha>", current),
        ("compare base vs current", "add -A (copy) + diff --cached", current_same_work),
        ("compare base vs snapshot", "git diff <sha> <sha>", two_snapshots),
    ]
    back_to_changed()
    assert snapshots.compare(repo, changed["commit_sha"])["files"] == []
    counts = snapshots.compare(repo, base["commit_sha"])["stats"]
    assert counts["files_changed"] == 200

    version = _git(repo, "version").split()[-1]
    print(f"\n{FILES} files, 100 modified / 50 added / 50 deleted; median of {RUNS} runs, git {version}")
    print(f"  {'Runner':28s} {'ms':>8s}   {'git floor':28s} {'ms':>8s}   ratio (goal <= {GOAL})")
    for ours_name, floor_name, (ours, floor) in figures:
        print(f"  {ours_name:28s} {ours:8.1f}   {floor_name:28s} {floor:8.1f}   {ours / floor:5.2f}x")
