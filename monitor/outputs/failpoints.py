"""Test hook: die at a named point, to prove what survives a crash.

Set `MONITOR_FAILPOINT=outbox.after_send` and the process exits at once (status
137, as after SIGKILL: no cleanup, no commit) right after a receiver answered 2xx
and before the outbox commits it. Used by the kill -9 test; unset in production,
where `hit()` is one environment lookup.
"""

from __future__ import annotations

import os

FAILPOINT_ENV_VAR = "MONITOR_FAILPOINT"
KILLED_EXIT_STATUS = 137


def hit(name: str) -> None:
    """Exit the process immediately if the failpoint `name` is enabled."""
    if os.environ.get(FAILPOINT_ENV_VAR) == name:
        os._exit(KILLED_EXIT_STATUS)
