"""`monitor check` for prediction logs: each `models[].drift.log` exists and has its columns.

The log may be a file, a glob, a (Hive-partitioned) Parquet dataset directory, local
or on S3: check lists it and reads the schema (one Parquet footer), never its rows, so
a wrong bucket, prefix, glob or credential shows up here rather than at the first cycle.

Problems are reported at the config line of the model's `drift.log` entry, so the
user fixes the path or the column names where they wrote them.
"""

from __future__ import annotations

from monitor.config import Config
from monitor.errors import ConfigError, Problem
import pyarrow as pa

from monitor.sources.prediction_logs import CSV_SUFFIXES, PredictionLogError, log_schema, resolve_log_path
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
        path = resolve_log_path(log.path, config.base_dir)
        line = _log_line(config, model.name)
        try:
            schema = log_schema(path)
        except PredictionLogError as exc:
            problems.append(Problem(config.source_path, line, f"models[{model.name}].drift.log.path: {exc}"))
            continue
        available = schema.names
        for column in [log.timestamp_column, *(log.columns or [])]:
            if column not in available:
                problems.append(Problem(config.source_path, line,
                                        f"models[{model.name}].drift.log: {path} has no column {column!r} "
                                        f"(columns: {', '.join(available)})"))
        if log.timestamp_column in available:
            kind = schema.field(log.timestamp_column).type
            # CSV times are text (parsed when read); Parquet's must be filterable by arrow.
            text_allowed = path.lower().endswith(CSV_SUFFIXES)
            if not (pa.types.is_timestamp(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind)
                    or (text_allowed and pa.types.is_string(kind))):
                problems.append(Problem(config.source_path, line,
                                        f"models[{model.name}].drift.log: {path} timestamp column "
                                        f"{log.timestamp_column!r} is {kind}, expected a timestamp or "
                                        "seconds since the epoch"))
    if problems:
        raise ConfigError(problems)
    return {"prediction logs": checked}
