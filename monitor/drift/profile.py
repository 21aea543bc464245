"""Reference profiles: everything drift needs from the reference data, fitted once.

Recomputing the reference on every run is why wide-table drift takes minutes in
other tools; here the reference is reduced once to, per numeric column, its sorted
finite values (a sorted uniform subsample beyond `max_sample`), the PSI/JS bin
edges and counts, n and std, and per categorical column its category counts. A
profile serialises to bytes (numpy's npz, no pickle) so the daemon caches it in the
state store and refits only when the reference window moves.

Column kinds: numeric dtypes (ints, floats) are numeric; everything else, booleans
included, is categorical. Datetime columns are not compared.

A frame is a pandas DataFrame or a pyarrow Table (what Parquet is read as, without
pandas: `monitor drift` on large files then never imports it). Both give the same
kinds and values for numbers, booleans, text and timestamps.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from monitor.errors import MonitorError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    Frame = pd.DataFrame | pa.Table
    Column = pd.Series | pa.ChunkedArray

# The interior PSI/JS bin edges are the reference's deciles. Written as k/10 so each
# level is the double nearest to 0.1, 0.2, ... exactly like the literal list.
DECILES = np.arange(1, 10) / 10
# Beyond this many finite values a column's KS/Wasserstein reference is a sorted
# uniform subsample (its bins, n and std still come from every value).
DEFAULT_MAX_SAMPLE = 2_000_000
SUBSAMPLE_SEED = 20_240_601
PROFILE_FORMAT = 1


class DriftError(MonitorError):
    """Drift cannot be computed as asked (a missing column, an unusable profile)."""


class ColumnKind(str, Enum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    # A Prometheus histogram: bucket counts rather than a sample.
    HISTOGRAM = "histogram"
    # A column drift is not computed for (datetimes).
    UNSUPPORTED = "unsupported"


def _is_arrow(column: Any) -> bool:
    # pandas Series carry a numpy/pandas `dtype`; arrow arrays an arrow `type`.
    return not hasattr(column, "dtype")


def frame_columns(frame: Frame) -> list[str]:
    """A frame's column names, in order."""
    return list(frame.column_names) if hasattr(frame, "column_names") else list(frame.columns)


def present_count(column: Column) -> int:
    """How many values of a column are not missing."""
    return len(column) - column.null_count if _is_arrow(column) else int(column.notna().sum())


def column_kind(series: Column) -> ColumnKind:
    """How a column is compared: numeric, categorical or not at all."""
    if _is_arrow(series):
        import pyarrow as pa

        kind = series.type
        if pa.types.is_boolean(kind):
            return ColumnKind.CATEGORICAL
        if pa.types.is_temporal(kind):
            return ColumnKind.UNSUPPORTED
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            return ColumnKind.NUMERIC
        return ColumnKind.CATEGORICAL
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnKind.CATEGORICAL
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return ColumnKind.UNSUPPORTED
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return ColumnKind.NUMERIC
    return ColumnKind.CATEGORICAL


def numeric_values(series: Column) -> np.ndarray:
    """A numeric column as float64, nullable integers' NA as NaN (read-only when zero-copy)."""
    if _is_arrow(series):
        return _arrow_numbers(series)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


# Arrow's names for the floating types numpy names differently; integers share names.
_NUMPY_NAMES = {"double": "float64", "float": "float32", "halffloat": "float16"}


def _arrow_numbers(series: pa.ChunkedArray) -> np.ndarray:
    """An arrow integer or floating column as float64, nulls as NaN, read from its buffers.

    Reading the buffers directly rather than through `to_numpy()` keeps pandas out of
    the process (pyarrow's conversions import it).
    """
    chunks = series.chunks
    if len(chunks) == 1 and chunks[0].null_count == 0 and str(chunks[0].type) == "double":
        chunk = chunks[0]
        return np.frombuffer(chunk.buffers()[1], dtype=np.float64, count=len(chunk), offset=chunk.offset * 8)
    out = np.empty(len(series), dtype=np.float64)
    position = 0
    for chunk in chunks:
        n = len(chunk)
        dtype = np.dtype(_NUMPY_NAMES.get(str(chunk.type), str(chunk.type)))
        target = out[position:position + n]
        target[:] = np.frombuffer(chunk.buffers()[1], dtype=dtype, count=n, offset=chunk.offset * dtype.itemsize)
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(chunk.buffers()[0], dtype=np.uint8), bitorder="little")
            target[bits[chunk.offset:chunk.offset + n] == 0] = np.nan
        position += n
    return out


def category_values(series: Column) -> tuple[np.ndarray, int]:
    """A categorical column's present values as strings, and how many were missing."""
    if _is_arrow(series):
        series = series.to_pandas()
    present = series.dropna()
    return present.astype(str).to_numpy(dtype=object), int(len(series) - len(present))


@dataclass(frozen=True)
class NumericReference:
    """The numeric columns of a profile, packed for the kernel (column i is row i)."""

    names: tuple[str, ...]
    sorted_values: np.ndarray    # every column's sorted finite sample, concatenated
    offsets: np.ndarray          # int64, len(names) + 1: column i is sorted_values[offsets[i]:offsets[i+1]]
    edges: np.ndarray            # float64 (columns, 9), NaN-padded unique deciles
    edge_counts: np.ndarray      # int64: how many edges each column has
    bin_counts: np.ndarray       # int64 (columns, 10): the full reference's count per bin
    n: np.ndarray                # int64: finite values in the full reference
    n_dropped: np.ndarray        # int64: NaN and infinite values dropped
    std: np.ndarray              # float64: std(ddof=0) of the full finite reference

    def index(self, name: str) -> int:
        return self.names.index(name)

    def sample(self, i: int) -> np.ndarray:
        return self.sorted_values[self.offsets[i]:self.offsets[i + 1]]

    def column_edges(self, i: int) -> np.ndarray:
        return self.edges[i, :self.edge_counts[i]]


@dataclass(frozen=True)
class CategoricalReference:
    categories: tuple[str, ...]
    counts: np.ndarray           # int64, one per category
    n_dropped: int

    @property
    def n(self) -> int:
        return int(self.counts.sum())


@dataclass(frozen=True)
class ReferenceProfile:
    numeric: NumericReference
    categorical: dict[str, CategoricalReference] = field(default_factory=dict)
    # Columns present in the reference but not compared, with the reason.
    unsupported: dict[str, str] = field(default_factory=dict)
    # Where the reference came from (file, window), for cache keys and evidence.
    description: str = ""

    @property
    def columns(self) -> list[str]:
        return [*self.numeric.names, *self.categorical, *self.unsupported]

    def kind(self, column: str) -> ColumnKind | None:
        if column in self.numeric.names:
            return ColumnKind.NUMERIC
        if column in self.categorical:
            return ColumnKind.CATEGORICAL
        if column in self.unsupported:
            return ColumnKind.UNSUPPORTED
        return None


def fit_profile(frame: Frame, columns: Iterable[str] | None = None,
                max_sample: int = DEFAULT_MAX_SAMPLE, description: str = "") -> ReferenceProfile:
    """Fit a reference profile on `frame`'s columns (default: all of them)."""
    available = frame_columns(frame)
    names = available if columns is None else list(columns)
    missing = [c for c in names if c not in available]
    if missing:
        raise DriftError(f"reference has no column {', '.join(map(repr, missing))}")
    numeric: list[tuple[str, np.ndarray]] = []
    categorical: dict[str, CategoricalReference] = {}
    unsupported: dict[str, str] = {}
    for name in names:
        series = frame[name]
        kind = column_kind(series)
        if kind is ColumnKind.NUMERIC:
            numeric.append((name, numeric_values(series)))
        elif kind is ColumnKind.CATEGORICAL:
            categorical[name] = fit_categorical(series)
        else:
            unsupported[name] = "datetime and duration columns are not compared"
    return ReferenceProfile(fit_numeric(numeric, max_sample), categorical, unsupported, description)


def fit_categorical(series: Column) -> CategoricalReference:
    values, n_dropped = category_values(series)
    categories, counts = np.unique(values.astype(str), return_counts=True) if len(values) else ([], [])
    return CategoricalReference(tuple(str(c) for c in categories), np.asarray(counts, dtype=np.int64), n_dropped)


def fit_numeric(columns: list[tuple[str, np.ndarray]], max_sample: int = DEFAULT_MAX_SAMPLE) -> NumericReference:
    """Pack numeric columns: sorted (sub)samples, decile edges, bin counts, n and std."""
    if max_sample < 1:
        raise DriftError("max_sample must be at least 1")
    k = len(columns)
    edges = np.full((k, len(DECILES)), np.nan)
    edge_counts = np.zeros(k, dtype=np.int64)
    bin_counts = np.zeros((k, len(DECILES) + 1), dtype=np.int64)
    n = np.zeros(k, dtype=np.int64)
    n_dropped = np.zeros(k, dtype=np.int64)
    std = np.full(k, np.nan)
    samples: list[np.ndarray] = []
    rng = np.random.default_rng(SUBSAMPLE_SEED)
    for i, (_, values) in enumerate(columns):
        finite = values[np.isfinite(values)]
        n[i] = finite.size
        n_dropped[i] = values.size - finite.size
        ordered = np.sort(finite)
        if finite.size:
            std[i] = float(np.std(finite))
            # Quantiles are order statistics, so the sorted copy gives numpy's exact answer.
            column_edges = np.unique(np.quantile(ordered, DECILES))
            edges[i, :column_edges.size] = column_edges
            edge_counts[i] = column_edges.size
            bin_counts_of(ordered, column_edges, bin_counts[i])
        if ordered.size > max_sample:
            ordered = np.sort(finite[rng.choice(finite.size, max_sample, replace=False)])
        samples.append(ordered)
    offsets = np.zeros(k + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([s.size for s in samples])
    sorted_values = np.concatenate(samples) if samples else np.zeros(0)
    return NumericReference(tuple(name for name, _ in columns), sorted_values, offsets, edges, edge_counts,
                            bin_counts, n, n_dropped, std)


def bin_counts_of(sorted_values: np.ndarray, edges: np.ndarray, out: np.ndarray) -> None:
    """Counts per bin (searchsorted(edges, v, side="right")) of an ascending sample, into `out`."""
    below = np.searchsorted(sorted_values, edges, side="left")
    out[:edges.size + 1] = np.diff(np.concatenate([[0], below, [sorted_values.size]]))


# -- serialisation: npz arrays plus a JSON header, never pickle ---------------------

def profile_to_bytes(profile: ReferenceProfile) -> bytes:
    """Serialise a profile for the state store."""
    num = profile.numeric
    header = {
        "format": PROFILE_FORMAT,
        "numeric": list(num.names),
        "categorical": {name: {"categories": list(ref.categories), "n_dropped": ref.n_dropped}
                        for name, ref in profile.categorical.items()},
        "unsupported": profile.unsupported,
        "description": profile.description,
    }
    arrays = {f"numeric.{key}": getattr(num, key) for key in
              ("sorted_values", "offsets", "edges", "edge_counts", "bin_counts", "n", "n_dropped", "std")}
    for i, ref in enumerate(profile.categorical.values()):
        arrays[f"categorical.{i}.counts"] = ref.counts
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8), **arrays)
    return buffer.getvalue()


def profile_from_bytes(data: bytes) -> ReferenceProfile:
    """Load a profile written by `profile_to_bytes`; DriftError when it is unusable."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            header = json.loads(archive["header"].tobytes().decode("utf-8"))
            if header.get("format") != PROFILE_FORMAT:
                raise DriftError(f"cached profile has format {header.get('format')}, expected {PROFILE_FORMAT}")
            numeric = NumericReference(tuple(header["numeric"]),
                                       *(archive[f"numeric.{key}"] for key in
                                         ("sorted_values", "offsets", "edges", "edge_counts", "bin_counts",
                                          "n", "n_dropped", "std")))
            categorical = {
                name: CategoricalReference(tuple(meta["categories"]), archive[f"categorical.{i}.counts"],
                                           int(meta["n_dropped"]))
                for i, (name, meta) in enumerate(header["categorical"].items())
            }
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise DriftError(f"cached profile is unreadable: {exc}") from None
    return ReferenceProfile(numeric, categorical, dict(header["unsupported"]), header["description"])


PROFILE_NAMESPACE = "drift_profiles"


def cached_profile(store, key: str, fit: Callable[[], ReferenceProfile], now: float) -> tuple[ReferenceProfile, bool]:
    """The profile cached under `key`, or `fit()`'s, stored; returns (profile, was_fitted).

    `store` is a `monitor.store.StateStore` or None (always fit). An unreadable
    cached profile (an older format) is refitted rather than trusted.
    """
    if store is not None:
        data = store.get_blob(PROFILE_NAMESPACE, key)
        if data is not None:
            try:
                return profile_from_bytes(data), False
            except DriftError:
                pass
    profile = fit()
    if store is not None:
        store.put_blob(PROFILE_NAMESPACE, key, profile_to_bytes(profile), now)
    return profile, True


def prune_profiles(store, prefix: str, keep: set[str]) -> int:
    """Delete cached profiles whose key starts with `prefix` and is not in `keep`."""
    rows = store.query("SELECT key FROM blobs WHERE namespace = ?", (PROFILE_NAMESPACE,))
    others = {row["key"] for row in rows if not row["key"].startswith(prefix)}
    return store.delete_blobs(PROFILE_NAMESPACE, keep_keys=others | keep)
