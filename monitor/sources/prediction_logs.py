"""Prediction logs and feature tables: Parquet and CSV files read into data frames.

Errors name the file (and, for CSV, the line) and say what is wrong; they are
`PredictionLogError`s, which the CLI prints as one line and the daemon logs.
Timestamps may be Parquet/arrow timestamps (any unit, with or without a time
zone; naive ones are taken as UTC) or numbers of seconds since the Unix epoch.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from monitor.errors import MonitorError

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")


class PredictionLogError(MonitorError):
    """A prediction log or feature file cannot be read as asked."""


def _file_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise PredictionLogError(f"{path}: unknown file type (expected .parquet, .pq, .csv, .csv.gz or .tsv)")


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A whole Parquet or CSV file (optionally only `columns`) as a data frame."""
    path = Path(path)
    kind = _file_format(path)
    if not path.is_file():
        raise PredictionLogError(f"{path}: no such file")
    if kind == "parquet":
        dataset = _parquet_dataset(path)
        _check_columns(path, dataset.schema.names, columns)
        try:
            return dataset.to_table(columns=list(columns) if columns is not None else None).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise PredictionLogError(f"{path}: cannot read Parquet: {exc}") from None
    return _read_csv(path, columns)


def _parquet_dataset(path: Path) -> ds.Dataset:
    try:
        return ds.dataset(str(path), format="parquet")
    except (pa.ArrowException, OSError) as exc:
        raise PredictionLogError(f"{path}: not a readable Parquet file ({exc})") from None


def _check_columns(path: Path, available: Sequence[str], wanted: Sequence[str] | None) -> None:
    missing = [c for c in (wanted or []) if c not in available]
    if missing:
        raise PredictionLogError(f"{path}: no column {', '.join(map(repr, missing))} "
                                 f"(columns: {', '.join(available)})")


def _read_csv(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    separator = "\t" if path.name.lower().endswith(".tsv") else ","
    try:
        frame = pd.read_csv(path, sep=separator)
    except pd.errors.EmptyDataError:
        raise PredictionLogError(f"{path}: file is empty (no header line)") from None
    except pd.errors.ParserError as exc:
        # pandas says "... Expected 3 fields in line 5, saw 4": lift the line into FILE:LINE.
        match = re.search(r"line (\d+)", str(exc))
        where = f"{path}:{match.group(1)}" if match else str(path)
        detail = str(exc).split(". ", 1)[-1] if "C error" in str(exc) else str(exc)
        raise PredictionLogError(f"{where}: invalid CSV: {detail}") from None
    except UnicodeDecodeError as exc:
        raise PredictionLogError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PredictionLogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    _check_columns(path, list(frame.columns), columns)
    return frame[list(columns)] if columns is not None else frame


def read_window(path: str | Path, timestamp_column: str, start: datetime, end: datetime,
                columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows with start <= timestamp < end (the timestamp column itself is dropped).

    Parquet files are filtered by arrow before anything is converted to pandas, so
    a long log costs only the rows in the window.
    """
    path = Path(path)
    if _file_format(path) == "csv":
        frame = read_table(path)
        _check_columns(path, list(frame.columns), [timestamp_column, *(columns or [])])
        seconds = _epoch_seconds(path, frame[timestamp_column])
        keep = (seconds >= start.timestamp()) & (seconds < end.timestamp())
        selected = frame.loc[keep.to_numpy()].drop(columns=[timestamp_column]).reset_index(drop=True)
        return selected[list(columns)] if columns is not None else selected
    if not path.is_file():
        raise PredictionLogError(f"{path}: no such file")
    dataset = _parquet_dataset(path)
    _check_columns(path, dataset.schema.names, [timestamp_column, *(columns or [])])
    field_type = dataset.schema.field(timestamp_column).type
    field = pc.field(timestamp_column)
    if pa.types.is_timestamp(field_type):
        low, high = (pa.scalar(_utc(t).replace(tzinfo=None) if field_type.tz is None else _utc(t), type=field_type)
                     for t in (start, end))
    elif pa.types.is_integer(field_type) or pa.types.is_floating(field_type):
        low, high = pa.scalar(start.timestamp()), pa.scalar(end.timestamp())
    else:
        raise PredictionLogError(f"{path}: timestamp column {timestamp_column!r} is {field_type}, "
                                 "expected a timestamp or seconds since the epoch")
    wanted = list(columns) if columns is not None else [n for n in dataset.schema.names if n != timestamp_column]
    try:
        table = dataset.to_table(columns=wanted, filter=(field >= low) & (field < high))
    except (pa.ArrowException, OSError) as exc:
        raise PredictionLogError(f"{path}: cannot read Parquet: {exc}") from None
    return table.to_pandas()


def log_columns(path: str | Path) -> list[str]:
    """The column names of a Parquet or CSV file, without reading its rows (Parquet)."""
    path = Path(path)
    if _file_format(path) == "csv":
        return list(read_table(path).columns)
    if not path.is_file():
        raise PredictionLogError(f"{path}: no such file")
    return list(_parquet_dataset(path).schema.names)


def _utc(at: datetime) -> datetime:
    return at.astimezone(timezone.utc) if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _epoch_seconds(path: Path, column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    try:
        parsed = pd.to_datetime(column, utc=True)
    except (ValueError, TypeError) as exc:
        raise PredictionLogError(f"{path}: timestamp column {column.name!r} is not a time: {exc}") from None
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
