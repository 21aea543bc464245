"""Progress bars for long work (simulate, backfill, report, the demo's replay), on a terminal only.

A bar is drawn on stderr when stderr is a terminal and nothing asked for quiet:
`--json` output and the daemon's logs (plain or JSON) are read by programs or
interleaved with log lines, so they suppress bars with `suppressed()`. Piped or
captured stderr never shows one. tqdm is imported only when a bar is drawn.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar("monitor_progress_suppressed", default=False)
_daemon_quiet = False  # set once by the daemon: its threads do not inherit context variables


def enabled() -> bool:
    """Whether a bar would be drawn here and now."""
    if _suppressed.get() or _daemon_quiet:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


@contextlib.contextmanager
def suppressed(really: bool = True) -> Iterator[None]:
    """No bars inside this block (when `really`): for --json output."""
    token = _suppressed.set(_suppressed.get() or really)
    try:
        yield
    finally:
        _suppressed.reset(token)


@contextlib.contextmanager
def quiet_for_daemon() -> Iterator[None]:
    """No bars in this process, on any thread, inside this block: the daemon writes log
    lines, not a terminal UI."""
    global _daemon_quiet
    before, _daemon_quiet = _daemon_quiet, True
    try:
        yield
    finally:
        _daemon_quiet = before


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it") -> Iterable[T]:
    """`iterable`, with a bar on a terminal."""
    if not enabled():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)


class Steps:
    """A bar over `total` named steps; `advance(name)` after each. Does nothing off a terminal."""

    def __init__(self, total: int, desc: str):
        self._bar = None
        if enabled():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr, leave=False, dynamic_ncols=True)

    def advance(self, name: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(name, refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "Steps":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
