"""Logging for the daemon: one line per event, plain or JSON, tagged with the cycle id.

Secrets are never passed to loggers; as a second line of defence every secret that
`monitor.secrets` has read is redacted from formatted records.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import datetime, timezone

from monitor.secrets import known_secret_values

# The cycle being run by this thread/task, so every line it logs can be grepped by id.
current_cycle_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("monitor_cycle_id", default=None)

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _redact(text: str) -> str:
    for secret in known_secret_values():
        if secret and secret in text:
            text = text.replace(secret, "[redacted]")
    return text


class _CycleFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.cycle_id = current_cycle_id.get()
        return True


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        cycle = f" cycle={record.cycle_id}" if getattr(record, "cycle_id", None) else ""
        line = f"{stamp} {record.levelname} {record.name}{cycle}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return _redact(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "cycle_id", None):
            entry["cycle_id"] = record.cycle_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key != "cycle_id" and not key.startswith("_"):
                entry[key] = value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return _redact(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO", fmt: str = "plain", stream=None) -> None:
    """Route the root logger to one handler with the chosen format (replacing earlier handlers)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    handler.addFilter(_CycleFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # Third-party chatter (per-request lines) is not an event worth a line at INFO.
    for noisy in ("apscheduler.executors.default", "urllib3.connectionpool", "slack_sdk.web.base_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
