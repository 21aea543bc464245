"""Prediction logs and feature tables, where teams keep them, read into data frames.

A log is one of:

- a Parquet or CSV file;
- a glob of Parquet files (`logs/*.parquet`, `logs/date=2026-12-*/*.parquet`, `**` for any depth);
- a directory holding a Parquet dataset, partitioned in Hive layout or not (`logs/date=2026-12-01/part-0.parquet`);

on the local disk or on object storage (`s3://bucket/prefix/...`, through pyarrow's
S3 filesystem). S3 credentials come from the environment as the AWS SDKs read them
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, ~/.aws, instance
roles); AWS_REGION or AWS_DEFAULT_REGION name the region and AWS_ENDPOINT_URL (or
AWS_ENDPOINT_URL_S3) an S3-compatible server. Nothing here logs or stores them.

A time window reads only what overlaps it: a `date=YYYY-MM-DD` partition (UTC) outside
the window is never opened, and inside the files, row groups whose timestamp
statistics fall outside the window are skipped (pyarrow.dataset's predicate pushdown).
A cycle's read cost follows the window, not the log's size.

Errors name the file (and, for CSV, the line) and say what is wrong; they are
`PredictionLogError`s, which the CLI prints as one line and the daemon logs.
Timestamps may be Parquet/arrow timestamps (any unit, with or without a time
zone; naive ones are taken as UTC) or numbers of seconds since the Unix epoch.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Sequence
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from monitor.errors import MonitorError
from monitor.timeutil import utc

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow.dataset as ds

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
OBJECT_STORE_SCHEMES = ("s3",)
GLOB_CHARACTERS = re.compile(r"[*?\[]")
# The Hive partition key holding the UTC day of the rows below it: pruned by the window.
DATE_PARTITION = "date"


class PredictionLogError(MonitorError):
    """A prediction log or feature file cannot be read as asked."""


# -- where a log is ----------------------------------------------------------------

def resolve_log_path(path: str, base_dir: str | Path | None = None) -> str:
    """The log's location: object-store URIs and absolute paths as written, others under `base_dir`."""
    if _scheme(path):
        return path
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return str(Path(path) if Path(path).is_absolute() else base / path)


def _scheme(path: str) -> str | None:
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", path)
    if not match:
        return None
    scheme = match.group(1).lower()
    if scheme not in OBJECT_STORE_SCHEMES and scheme != "file":
        raise PredictionLogError(f"{path}: unsupported storage {scheme}:// (expected a local path or s3://)")
    return scheme


def _s3_filesystem() -> pafs.FileSystem:
    """pyarrow's S3 filesystem, configured from the AWS SDKs' environment variables."""
    options: dict = {}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = parts.netloc
        options["scheme"] = parts.scheme
        # An S3-compatible server on a plain host name (MinIO, moto) has no virtual-host buckets.
        options["force_virtual_addressing"] = False
    try:
        return pafs.S3FileSystem(**options)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise PredictionLogError(f"cannot configure S3 access: {exc}") from None


def _filesystem_and_path(location: str, filesystem: pafs.FileSystem | None) -> tuple[pafs.FileSystem, str]:
    """The filesystem a location lives on, and the location's path inside it."""
    scheme = _scheme(location)
    if scheme in OBJECT_STORE_SCHEMES:
        inner = location.split("://", 1)[1]
        if not inner.split("/", 1)[0]:
            raise PredictionLogError(f"{location}: no bucket name")
        return filesystem or _s3_filesystem(), inner
    if scheme == "file":
        location = location.split("://", 1)[1]
    return filesystem or pafs.LocalFileSystem(), str(Path(location).absolute())


@dataclass(frozen=True)
class _Log:
    """A located log: its files on one filesystem, and how to read them."""

    location: str
    filesystem: pafs.FileSystem
    kind: str                 # "parquet" or "csv"
    files: tuple[str, ...]    # paths inside the filesystem; one for a single file
    partition_base: str | None  # the directory Hive partitions are relative to (globs, directories)
    infos: tuple[pafs.FileInfo, ...]


def _file_format(name: str) -> str | None:
    lowered = name.lower()
    if lowered.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lowered.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def _info(filesystem: pafs.FileSystem, path: str, location: str) -> pafs.FileInfo:
    try:
        return filesystem.get_file_info(path)
    except (pa.ArrowException, OSError) as exc:
        raise PredictionLogError(f"{location}: cannot read: {_storage_message(exc)}") from None


def _storage_message(exc: BaseException) -> str:
    # Arrow's S3 errors run over several lines; the first says what happened.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _listing(filesystem: pafs.FileSystem, directory: str, location: str) -> list[pafs.FileInfo]:
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(directory, recursive=True))
    except (pa.ArrowException, OSError) as exc:
        raise PredictionLogError(f"{location}: cannot list: {_storage_message(exc)}") from None
    # Hidden and marker files (`.crc`, `_SUCCESS`, `_delta_log/`) are not data, as in pyarrow.dataset.
    def visible(info: pafs.FileInfo) -> bool:
        relative = info.path[len(directory):].strip("/")
        return not any(part.startswith((".", "_")) for part in relative.split("/"))
    return sorted((i for i in infos if i.type == pafs.FileType.File and visible(i)), key=lambda i: i.path)


def _glob_matches(pattern: str, path: str) -> bool:
    """Whether `path` matches `pattern` part by part (`*` stays inside one directory, `**` spans any)."""
    def match(pattern_parts: list[str], path_parts: list[str]) -> bool:
        if not pattern_parts:
            return not path_parts
        if pattern_parts[0] == "**":
            return any(match(pattern_parts[1:], path_parts[i:]) for i in range(len(path_parts) + 1))
        return bool(path_parts) and fnmatch.fnmatchcase(path_parts[0], pattern_parts[0]) \
            and match(pattern_parts[1:], path_parts[1:])
    return match(PurePosixPath(pattern).parts, PurePosixPath(path).parts)


def locate(location: str, filesystem: pafs.FileSystem | None = None) -> _Log:
    """Find a log's files (`filesystem` overrides the one the location implies, for tests)."""
    fs, path = _filesystem_and_path(location, filesystem)
    if GLOB_CHARACTERS.search(path):
        parts = PurePosixPath(path).parts
        fixed = next(i for i, part in enumerate(parts) if GLOB_CHARACTERS.search(part))
        root = str(PurePosixPath(*parts[:fixed])) if fixed else "/"
        if _info(fs, root, location).type != pafs.FileType.Directory:
            raise PredictionLogError(f"{location}: matches no file ({root} is not a directory)")
        infos = [i for i in _listing(fs, root, location) if _glob_matches(path, i.path)]
        return _many(location, fs, infos, root)
    info = _info(fs, path, location)
    if info.type == pafs.FileType.File:
        kind = _file_format(path)
        if kind is None:
            raise PredictionLogError(f"{location}: unknown file type (expected .parquet, .pq, .csv, .csv.gz or "
                                     ".tsv, a glob, or a directory of Parquet files)")
        return _Log(location, fs, kind, (path,), None, (info,))
    if info.type == pafs.FileType.Directory:
        return _many(location, fs, _listing(fs, path, location), path)
    raise PredictionLogError(f"{location}: no such file")


def _many(location: str, fs: pafs.FileSystem, infos: list[pafs.FileInfo], base: str) -> _Log:
    if not infos:
        raise PredictionLogError(f"{location}: matches no file")
    kinds = {_file_format(i.path) for i in infos}
    if kinds != {"parquet"}:
        odd = next(i.path for i in infos if _file_format(i.path) != "parquet")
        raise PredictionLogError(f"{location}: {odd} is not a Parquet file (globs and directories are read "
                                 "as Parquet datasets; a CSV log must be one file)")
    return _Log(location, fs, "parquet", tuple(i.path for i in infos), base, tuple(infos))


def log_state(location: str, filesystem: pafs.FileSystem | None = None) -> tuple:
    """A value that changes whenever the log's files are added, removed, rewritten or appended to."""
    log = locate(location, filesystem)
    return tuple((i.path, i.mtime_ns, i.size) for i in log.infos)


# -- reading -----------------------------------------------------------------------

def _dataset(log: _Log) -> ds.Dataset:
    import pyarrow.dataset as ds

    try:
        if log.partition_base is None:
            return ds.dataset(log.files[0], filesystem=log.filesystem, format="parquet")
        return ds.dataset(list(log.files), filesystem=log.filesystem, format="parquet", partitioning="hive",
                          partition_base_dir=log.partition_base)
    except (pa.ArrowException, OSError) as exc:
        raise PredictionLogError(f"{log.location}: not a readable Parquet "
                                 f"{'file' if log.partition_base is None else 'dataset'} "
                                 f"({_storage_message(exc)})") from None


def _partition_names(dataset: ds.Dataset) -> list[str]:
    partitioning = getattr(dataset, "partitioning", None)
    return list(partitioning.schema.names) if partitioning is not None else []


def _check_columns(location: str, available: Sequence[str], wanted: Sequence[str] | None) -> None:
    missing = [c for c in (wanted or []) if c not in available]
    if missing:
        raise PredictionLogError(f"{location}: no column {', '.join(map(repr, missing))} "
                                 f"(columns: {', '.join(available)})")


def _columns_of(dataset: ds.Dataset) -> list[str]:
    """The log's columns: the files' own, then Hive partition keys except the day (layout, not data)."""
    partitions = _partition_names(dataset)
    names = [n for n in dataset.schema.names if n not in partitions]
    return names + [n for n in partitions if n != DATE_PARTITION]


def read_table(path: str | Path, columns: Sequence[str] | None = None,
               filesystem: pafs.FileSystem | None = None) -> pd.DataFrame:
    """A whole log (optionally only `columns`) as a data frame."""
    table = read_columns(path, columns, filesystem)
    return table if hasattr(table, "iloc") else table.to_pandas()


def read_columns(path: str | Path, columns: Sequence[str] | None = None,
                 filesystem: pafs.FileSystem | None = None) -> pa.Table | pd.DataFrame:
    """A whole log (optionally only `columns`): Parquet as an arrow table, CSV as a data frame.

    Both are what `monitor.drift.profile` takes; Parquet never goes through pandas,
    whose import alone is a sizeable share of a one-shot `monitor drift`.
    """
    log = locate(str(path), filesystem)
    if log.kind == "csv":
        return _read_csv(log, columns)
    if log.partition_base is None:
        # One file: pyarrow.parquet alone, which starts faster than pyarrow.dataset.
        import pyarrow.parquet as pq

        try:
            with log.filesystem.open_input_file(log.files[0]) as source:
                parquet = pq.ParquetFile(source)
                _check_columns(log.location, parquet.schema_arrow.names, columns)
                return parquet.read(columns=list(columns) if columns is not None else None)
        except (pa.ArrowException, OSError) as exc:
            raise PredictionLogError(f"{log.location}: not a readable Parquet file "
                                     f"({_storage_message(exc)})") from None
    dataset = _dataset(log)
    available = _columns_of(dataset)
    _check_columns(log.location, available, columns)
    return _to_table(log, dataset, list(columns) if columns is not None else available, None)


def input_bytes(path: str | Path, filesystem: pafs.FileSystem | None = None) -> int:
    """The size on storage of a log's files (0 when it cannot be listed: reading will say why)."""
    try:
        return sum(max(info.size or 0, 0) for info in locate(str(path), filesystem).infos)
    except PredictionLogError:
        return 0


def _to_table(log: _Log, dataset: ds.Dataset, columns: list[str], where) -> pa.Table:
    try:
        return dataset.to_table(columns=columns, filter=where)
    except (pa.ArrowException, OSError) as exc:
        raise PredictionLogError(f"{log.location}: cannot read Parquet: {_storage_message(exc)}") from None


def _read_csv(log: _Log, columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    path = log.files[0]
    separator = "\t" if path.lower().endswith(".tsv") else ","
    try:
        with log.filesystem.open_input_stream(path, compression="detect") as stream:
            frame = pd.read_csv(stream, sep=separator)
    except pd.errors.EmptyDataError:
        raise PredictionLogError(f"{log.location}: file is empty (no header line)") from None
    except pd.errors.ParserError as exc:
        # pandas says "... Expected 3 fields in line 5, saw 4": lift the line into FILE:LINE.
        match = re.search(r"line (\d+)", str(exc))
        where = f"{log.location}:{match.group(1)}" if match else log.location
        detail = str(exc).split(". ", 1)[-1] if "C error" in str(exc) else str(exc)
        raise PredictionLogError(f"{where}: invalid CSV: {detail}") from None
    except UnicodeDecodeError as exc:
        raise PredictionLogError(f"{log.location}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (pa.ArrowException, OSError) as exc:
        raise PredictionLogError(f"{log.location}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    _check_columns(log.location, list(frame.columns), columns)
    frame = frame[list(columns)] if columns is not None else frame
    for name in frame.columns:
        _refuse_mixed_column(log.location, frame[name])
    return frame


# A text column is taken for a numeric one with stray text when at least this share of
# its first values parse as numbers.
MIXED_SAMPLE = 1000
MIXED_NUMERIC_SHARE = 0.5


def _refuse_mixed_column(location: str, column: pd.Series) -> None:
    """Refuse a CSV column of numbers with some text in it, naming the first such value.

    Dropping the text as "missing" would bias the statistics, and comparing the column
    as categories would make a numeric reference "no data": both end in a quiet "no
    dataset drift". A broken export should stop the check loudly instead. (pandas
    already reads empty cells, NA, N/A, null and NaN as missing.)
    """
    import pandas as pd

    if not (pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype)):
        return
    present = column.dropna()
    if present.empty:
        return
    head = pd.to_numeric(present.iloc[:MIXED_SAMPLE], errors="coerce")
    if head.notna().mean() < MIXED_NUMERIC_SHARE:
        return  # a categorical column (perhaps with a few numeric-looking codes)
    text = pd.to_numeric(present, errors="coerce").isna()
    if not text.any():
        return
    first = text.to_numpy().argmax()
    row = int(present.index[first]) + 1
    raise PredictionLogError(f"{location}: column {column.name!r} holds numbers but {int(text.sum())} of "
                             f"{len(present)} values are text (first: {present.iloc[first]!r} in data row {row}); "
                             "fix the export, or leave those cells empty for missing values")


def _day_filter(partition_type: pa.DataType, start: datetime, end: datetime):
    """The `date` partitions [start, end) touches, as a filter on the partition key (days in UTC)."""
    import pyarrow.compute as pc

    first: date = utc(start).date()
    last: date = (utc(end) - timedelta(microseconds=1)).date()
    field = pc.field(DATE_PARTITION)
    if pa.types.is_string(partition_type) or pa.types.is_large_string(partition_type):
        # ISO days order as strings; a partition value that is not a day is kept, never silently dropped.
        return (field >= first.isoformat()) & (field <= last.isoformat())
    if pa.types.is_date(partition_type) or pa.types.is_timestamp(partition_type):
        return (field >= pa.scalar(first, type=pa.date32())) & (field <= pa.scalar(last, type=pa.date32()))
    return None


def window_filter(dataset: ds.Dataset, location: str, timestamp_column: str, start: datetime, end: datetime):
    """The pushdown filter selecting start <= timestamp < end (and the `date=` partitions it touches)."""
    import pyarrow.compute as pc

    field_type = dataset.schema.field(timestamp_column).type
    field = pc.field(timestamp_column)
    if pa.types.is_timestamp(field_type):
        low, high = (pa.scalar(utc(t).replace(tzinfo=None) if field_type.tz is None else utc(t), type=field_type)
                     for t in (start, end))
    elif pa.types.is_integer(field_type) or pa.types.is_floating(field_type):
        low, high = pa.scalar(start.timestamp()), pa.scalar(end.timestamp())
    else:
        raise PredictionLogError(f"{location}: timestamp column {timestamp_column!r} is {field_type}, "
                                 "expected a timestamp or seconds since the epoch")
    where = (field >= low) & (field < high)
    if DATE_PARTITION in _partition_names(dataset) and timestamp_column != DATE_PARTITION:
        days = _day_filter(dataset.schema.field(DATE_PARTITION).type, start, end)
        if days is not None:
            where = days & where
    return where


def read_window(path: str | Path, timestamp_column: str, start: datetime, end: datetime,
                columns: Sequence[str] | None = None,
                filesystem: pafs.FileSystem | None = None) -> pd.DataFrame:
    """The rows with start <= timestamp < end (the timestamp column itself is dropped).

    Parquet logs are filtered by arrow before anything is converted to pandas, and
    only partitions and row groups overlapping the window are read.
    """
    log = locate(str(path), filesystem)
    if log.kind == "csv":
        frame = _read_csv(log, None)
        _check_columns(log.location, list(frame.columns), [timestamp_column, *(columns or [])])
        seconds = _epoch_seconds(log.location, frame[timestamp_column])
        keep = (seconds >= start.timestamp()) & (seconds < end.timestamp())
        selected = frame.loc[keep.to_numpy()].drop(columns=[timestamp_column]).reset_index(drop=True)
        return selected[list(columns)] if columns is not None else selected
    dataset = _dataset(log)
    available = _columns_of(dataset)
    _check_columns(log.location, available, [timestamp_column, *(columns or [])])
    where = window_filter(dataset, log.location, timestamp_column, start, end)
    wanted = list(columns) if columns is not None else [n for n in available if n != timestamp_column]
    return _to_table(log, dataset, wanted, where).to_pandas()


def log_columns(path: str | Path, filesystem: pafs.FileSystem | None = None) -> list[str]:
    """The column names of a log, without reading its rows (Parquet)."""
    return list(log_schema(path, filesystem).names)


def log_schema(path: str | Path, filesystem: pafs.FileSystem | None = None) -> pa.Schema:
    """The log's columns and types (a CSV file is read to infer them)."""
    log = locate(str(path), filesystem)
    if log.kind == "csv":
        frame = _read_csv(log, None)
        try:
            return pa.Schema.from_pandas(frame, preserve_index=False)
        except (pa.ArrowException, ValueError) as exc:
            raise PredictionLogError(f"{log.location}: cannot type its columns: {exc}") from None
    dataset = _dataset(log)
    return pa.schema([dataset.schema.field(name) for name in _columns_of(dataset)])


def _epoch_seconds(location: str, column: pd.Series) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    try:
        parsed = pd.to_datetime(column, utc=True)
    except (ValueError, TypeError) as exc:
        raise PredictionLogError(f"{location}: timestamp column {column.name!r} is not a time: {exc}") from None
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
