"""Reading prediction logs: a time window of rows from Parquet or CSV, whatever the timestamp's type."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from monitor.sources.prediction_logs import PredictionLogError, read_table, read_window

START = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
SECONDS = 1_795_341_600 + np.arange(0, 3600 * 4, 600)  # 10-minute rows


def frame_with(timestamps) -> pd.DataFrame:
    return pd.DataFrame({"ts": timestamps, "score": np.arange(len(SECONDS), dtype=float),
                         "version": ["v1", "v2"] * (len(SECONDS) // 2)})


@pytest.mark.parametrize("suffix, timestamps", [
    (".parquet", pd.to_datetime(SECONDS, unit="s", utc=True)),
    (".parquet", pd.to_datetime(SECONDS, unit="s")),
    (".parquet", SECONDS.astype(float)),
    (".csv", pd.to_datetime(SECONDS, unit="s", utc=True)),
    (".csv", SECONDS),
], ids=["Parquet with UTC timestamps", "Parquet with naive timestamps (taken as UTC)",
        "Parquet with epoch seconds", "CSV with ISO 8601 times", "CSV with epoch seconds"])
def test_a_window_selects_start_inclusive_end_exclusive(tmp_path, suffix, timestamps):
    path = tmp_path / f"log{suffix}"
    frame = frame_with(timestamps)
    frame.to_parquet(path, index=False) if suffix == ".parquet" else frame.to_csv(path, index=False)
    start = datetime.fromtimestamp(int(SECONDS[1]), timezone.utc)
    end = datetime.fromtimestamp(int(SECONDS[4]), timezone.utc)
    window = read_window(path, "ts", start, end, ["score", "version"])
    assert window["score"].tolist() == [1.0, 2.0, 3.0]
    assert list(window.columns) == ["score", "version"]


def test_a_missing_column_names_the_file_and_the_columns(tmp_path):
    path = tmp_path / "log.parquet"
    frame_with(SECONDS.astype(float)).to_parquet(path, index=False)
    with pytest.raises(PredictionLogError, match=r"log.parquet: no column 'age' \(columns: ts, score, version\)"):
        read_window(path, "ts", START, START, ["age"])


def test_an_unknown_file_type_is_refused(tmp_path):
    path = tmp_path / "log.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(PredictionLogError, match="unknown file type"):
        read_table(path)


def test_version_counts_are_remembered_per_window_and_reread_when_the_log_changes(tmp_path):
    from datetime import datetime, timedelta, timezone

    import pandas as pd

    from monitor.drift.prediction_drift import _file_state, _version_counts

    start = datetime(2026, 11, 20, tzinfo=timezone.utc)
    path = tmp_path / "log.parquet"

    def write(versions):
        pd.DataFrame({"timestamp": [start + timedelta(minutes=i) for i in range(len(versions))],
                      "version": versions}).to_parquet(path, index=False)

    write(["v1", "v1", "v2"])
    window = (start, start + timedelta(hours=1))
    first = _version_counts(str(path), _file_state(path), "timestamp", "version", *window)
    assert dict(first) == {"v1": 2, "v2": 1}
    assert _version_counts(str(path), _file_state(path), "timestamp", "version", *window) is first
    write(["v1", "v2", "v2", "v3"])  # the log was rewritten: its state changed, so it is read again
    assert dict(_version_counts(str(path), _file_state(path), "timestamp", "version", *window)) == {
        "v1": 1, "v2": 2, "v3": 1}
