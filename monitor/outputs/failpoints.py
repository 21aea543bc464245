"""Test hook: die at a named point, to prove what survives a crash.

Set `MONITOR_FAILPOINT=outbox.after_send` and the process sends itself SIGKILL
(no cleanup, no commit, exactly as `kill -9`) right after a receiver answered 2xx
and before the outbox commits it. Used by the kill -9 test; unset in production,
where `hit()` is one environment lookup.
"""

from __future__ import annotations

import os
import signal

FAILPOINT_ENV_VAR = "MONITOR_FAILPOINT"


def hit(name: str) -> None:
    """Kill the process (SIGKILL) if the failpoint `name` is enabled."""
    if os.environ.get(FAILPOINT_ENV_VAR) == name:
        os.kill(os.getpid(), signal.SIGKILL)
