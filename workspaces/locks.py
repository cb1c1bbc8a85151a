"""One repository, one git operation at a time: a Redis lock shared by every worker and web process.

The lock expires `timeout` seconds after it was last renewed, and a holder renews it from a
background thread while its block runs: a process that dies stops renewing, so its lock frees
itself, while a long clone alive keeps it.
"""
import contextlib
import logging
import threading

from redis.exceptions import LockError

log = logging.getLogger(__name__)


class LockTimeout(Exception):
    """The lock could not be acquired in time: another operation holds the repository."""

    def __init__(self, key, waited):
        super().__init__(f"{key} is held by another operation; gave up after {waited:g} seconds.")
        self.key = key
        self.waited = waited


@contextlib.contextmanager
def repository_lock(redis_conn, key, timeout=300, blocking_timeout=60):
    """Hold the Redis lock `key` for the block.

    - `timeout`: seconds after which the lock of a holder that stopped renewing it (crashed) expires.
    - `blocking_timeout`: seconds to wait for it before raising `LockTimeout` (0: do not wait).
    """
    # Not thread-local: the renewing thread must see the token.
    lock = redis_conn.lock(key, timeout=timeout, sleep=0.05, thread_local=False)
    if not lock.acquire(blocking=True, blocking_timeout=blocking_timeout):
        raise LockTimeout(key, blocking_timeout)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lock, timeout, stop), name=f"renew {key}", daemon=True)
    renewer.start()
    try:
        yield lock
    finally:
        stop.set()
        renewer.join()
        try:
            lock.release()
        except LockError:
            # Expired and possibly taken by someone else (renewals failed, e.g. Redis was down):
            # nothing left to release, and the block's own outcome matters more.
            log.warning("lock %s was lost before it was released", key)


def _renew(lock, timeout, stop):
    while not stop.wait(timeout / 3):
        try:
            lock.reacquire()
        except Exception:  # noqa: BLE001 - a renewal thread must not die silently mid-operation
            log.warning("could not renew lock %s", lock.name, exc_info=True)
