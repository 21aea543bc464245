"""`monitor check` for prediction logs: each `models[].drift.log` file exists and has its columns.

Problems are reported at the config line of the model's `drift.log` entry, so the
user fixes the path or the column names where they wrote them.
"""

from __future__ import annotations

from monitor.config import Config
from monitor.errors import ConfigError, Problem
from monitor.sources.prediction_logs import PredictionLogError, log_columns
from monitor.typed_yaml import YamlFile, mapping_get, node_line


def _log_line(config: Config, model_name: str) -> int | None:
    """The line of `models[name].drift.log` in the config file, when it can be found."""
    try:
        root = YamlFile(config.source_path).documents[0]
    except (ConfigError, IndexError):
        return None
    for model in getattr(mapping_get(root, "models"), "value", []):
        name = mapping_get(model, "name")
        if name is not None and name.value == model_name:
            log = mapping_get(mapping_get(model, "drift"), "log")
            return node_line(log) if log is not None else None
    return None


def prediction_log_check(config: Config) -> dict[str, int]:
    """Raise ConfigError for unreadable logs or missing columns; count the logs checked."""
    problems: list[Problem] = []
    checked = 0
    for model in config.models:
        log = model.drift.log if model.drift else None
        if log is None:
            continue
        checked += 1
        path = config.resolve_path(log.path)
        try:
            available = log_columns(path)
        except PredictionLogError as exc:
            problems.append(Problem(config.source_path, _log_line(config, model.name),
                                    f"models[{model.name}].drift.log.path: {exc}"))
            continue
        for column in [log.timestamp_column, *(log.columns or [])]:
            if column not in available:
                problems.append(Problem(config.source_path, _log_line(config, model.name),
                                        f"models[{model.name}].drift.log: {path} has no column {column!r} "
                                        f"(columns: {', '.join(available)})"))
    if problems:
        raise ConfigError(problems)
    return {"prediction logs": checked}
