"""Logging for the daemon: one line per event, plain or JSON, tagged with the cycle id.

Secrets are never passed to loggers; as a second line of defence every secret that
`monitor.secrets` has read is redacted from formatted records.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys

from monitor.secrets import redact
from monitor.timeutil import from_unix, iso_z

# The cycle being run by this thread/task, so every line it logs can be grepped by id.
current_cycle_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("monitor_cycle_id", default=None)

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


# Libraries whose per-request INFO lines are noise, not events; their warnings and
# errors still come through (and through the redactor, like every line).
THIRD_PARTY_LOGGERS = ("urllib3", "apscheduler", "slack_sdk", "requests", "matplotlib", "numba")
# urllib3 warns of each connection retry it makes for the Prometheus source; the query's
# own error (one line, from the caller) already says the server could not be reached.
RETRY_NOISE_LOGGERS = ("urllib3.connectionpool",)


class _CycleFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.cycle_id = current_cycle_id.get()
        return True


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = from_unix(record.created).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        cycle = f" cycle={record.cycle_id}" if getattr(record, "cycle_id", None) else ""
        line = f"{stamp} {record.levelname} {record.name}{cycle}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": iso_z(from_unix(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if getattr(record, "cycle_id", None):
            entry["cycle_id"] = record.cycle_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key != "cycle_id" and not key.startswith("_"):
                entry[key] = value if isinstance(value, (int, float, bool, type(None))) else redact(str(value))
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        # Fields are redacted before encoding (a secret's repr, JSON-escaped, is yet
        # another spelling), and the line after it, as a last line of defence.
        return redact(json.dumps(entry, default=str))


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written (not when logging was set up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_cli_logging(level: str) -> None:
    """Plain, redacted lines on stderr for a CLI command, unless a host process (a test
    runner, an embedding program) already routes logging; then only its handlers run."""
    root = logging.getLogger()
    if any(not getattr(handler, "_monitor_handler", False) for handler in root.handlers):
        return
    configure_logging(level, "plain")


@contextlib.contextmanager
def daemon_logging(level: str, fmt: str):
    """`configure_logging` for the daemon's lifetime; on exit the previous setup is back
    (the daemon can run inside another process: a test, an embedding program)."""
    root = logging.getLogger()
    saved_level = root.level
    saved = {name: logging.getLogger(name).level for name in (*THIRD_PARTY_LOGGERS, *RETRY_NOISE_LOGGERS)}
    saved_handlers = [h for h in root.handlers if getattr(h, "_monitor_handler", False)]
    configure_logging(level, fmt)
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_monitor_handler", False)]:
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        for name, value in saved.items():
            logging.getLogger(name).setLevel(value)


def configure_logging(level: str = "INFO", fmt: str = "plain", stream=None) -> None:
    """Route the root logger to one handler with the chosen format.

    Replaces the handler an earlier call installed, and no other (an embedding
    process, or pytest, keeps its own).
    """
    handler = logging.StreamHandler(stream or _CurrentStderr())
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    handler.addFilter(_CycleFilter())
    handler._monitor_handler = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_monitor_handler", False):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    for name in RETRY_NOISE_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.ERROR)
