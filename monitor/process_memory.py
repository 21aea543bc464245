"""The daemon's resident memory kept to what it uses: glibc's malloc, bounded and trimmed.

A cycle's producers run on threads of their own (monitor.pipeline), and glibc gives each
new thread's allocations an arena of their own, up to eight per core. Every arena keeps
what it freed for reuse, so a cycle's large, short-lived answers (a thousand SLOs'
recorded series, a prediction log's columns) would leave their peak resident in several
arenas at once. Two arenas are plenty for a handful of threads that mostly wait; after
each cycle, what is free is handed back to the system (`malloc_trim`, a few milliseconds).

Elsewhere (musl, macOS) these are no-ops: their allocators behave differently.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt's parameter number for the most arenas (glibc's malloc.h).
_M_ARENA_MAX = -8
DAEMON_ARENAS = 2


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def limit_malloc_arenas(count: int = DAEMON_ARENAS) -> bool:
    """At most `count` malloc arenas from now on (call before starting threads); False if not glibc."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, count))


def release_freed_memory() -> bool:
    """Hand the memory malloc holds free back to the system; False if not glibc (or nothing to hand back)."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
