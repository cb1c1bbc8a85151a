"""The repository lock on a real Redis: operations serialize, waits end, crashed holders expire."""
import threading
import time

import pytest

from workspaces.locks import LockTimeout, repository_lock

KEY = "runner:repository-lock:test"


def test_operations_on_one_repository_serialize(redis_conn):
    spans, errors = [], []

    def operation(name):
        try:
            with repository_lock(redis_conn, KEY, timeout=10, blocking_timeout=10):
                start = time.monotonic()
                time.sleep(0.3)
                spans.append((start, time.monotonic(), name))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=operation, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    spans.sort()
    assert len(spans) == 3
    for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
        assert start >= end
    assert not redis_conn.exists(KEY)


def test_other_repositories_are_not_blocked(redis_conn):
    with repository_lock(redis_conn, KEY, blocking_timeout=1):
        with repository_lock(redis_conn, KEY + "-other", blocking_timeout=0.1):
            pass


def test_waiting_ends_with_lock_timeout(redis_conn):
    with repository_lock(redis_conn, KEY, timeout=10):
        started = time.monotonic()
        with pytest.raises(LockTimeout, match="held by another operation; gave up after 0.3 seconds") as caught:
            with repository_lock(redis_conn, KEY, blocking_timeout=0.3):
                pass
        assert 0.25 < time.monotonic() - started < 2
        assert caught.value.key == KEY


def test_a_crashed_holders_lock_expires(redis_conn):
    # A holder that died: it took the lock and never released or renewed it.
    assert redis_conn.lock(KEY, timeout=1).acquire(blocking=False)
    started = time.monotonic()
    with repository_lock(redis_conn, KEY, blocking_timeout=5):
        assert 0.5 < time.monotonic() - started < 3


def test_a_live_holder_keeps_its_lock_past_the_timeout(redis_conn):
    with repository_lock(redis_conn, KEY, timeout=1):
        time.sleep(2.2)  # more than twice the expiry: renewed meanwhile
        with pytest.raises(LockTimeout):
            with repository_lock(redis_conn, KEY, blocking_timeout=0.2):
                pass
    assert not redis_conn.exists(KEY)


def test_a_lost_lock_does_not_mask_the_outcome(redis_conn):
    with pytest.raises(ZeroDivisionError):
        with repository_lock(redis_conn, KEY, timeout=10):
            redis_conn.delete(KEY)  # expired and gone, as if Redis had been flushed
            1 / 0
