"""One daemon per SQLite state file: an exclusive `flock` on a lock file beside it.

Two daemons on one file would both evaluate and both send every notification.
The lock file (`<state file>.lock`) holds the holder's PID for the refusal message;
the lock itself is the kernel's, so it goes with the process however it ends (a
kill -9 leaves the file behind but never a stale lock). Commands that only read the
state (`monitor alerts`, `silence list`, ...) do not take it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from monitor.store import StateError


class SingleInstanceError(StateError):
    """Another daemon holds the state file; the message names its PID."""


def lock_path_for(state_path: str | Path) -> Path:
    return Path(f"{state_path}.lock")


class InstanceLock:
    """Held from `acquire()` until `release()` or the process ends."""

    def __init__(self, state_path: str | Path):
        self.state_path = Path(state_path)
        self.path = lock_path_for(state_path)
        self._fd: int | None = None

    def acquire(self) -> "InstanceLock":
        """Take the lock (already held by this object: nothing to do), or raise SingleInstanceError naming
        the holder's PID (one line)."""
        if self._fd is not None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StateError(f"state file {self.state_path}: cannot open its lock file {self.path} "
                             f"({exc.strerror or exc}); make its directory writable by the user running "
                             f"monitor") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateError(f"state file {self.state_path}: cannot lock {self.path} "
                                 f"({exc.strerror or exc})") from None
            who = f"PID {holder}" if holder else "another process"
            raise SingleInstanceError(
                f"state file {self.state_path} is in use by another monitor daemon ({who}, lock {self.path}); "
                f"stop it first, or give this one its own state.path") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, only a refusal cannot name our PID
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            # Emptied, not deleted: deleting would let a waiting process lock an unlinked inode.
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)

    def __enter__(self) -> "InstanceLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
