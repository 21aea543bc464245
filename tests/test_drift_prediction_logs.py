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


# -- globs, partitioned datasets and object storage ------------------------------------------------------

import io  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
from datetime import timedelta  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.fs as pafs  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from monitor.sources.prediction_logs import log_columns, log_state  # noqa: E402

DAYS = 10
FIRST_DAY = datetime(2026, 11, 21, tzinfo=timezone.utc)


def hourly_log(rng: np.random.Generator, every_s: int = 60) -> pd.DataFrame:
    """Ten days of one row every `every_s` seconds: a score, a version and the timestamp."""
    rows = DAYS * 24 * 3600 // every_s
    return pd.DataFrame({"timestamp": pd.date_range(FIRST_DAY, periods=rows, freq=f"{every_s}s"),
                         "score": rng.normal(size=rows), "version": rng.choice(["v1", "v2"], rows)})


def write_hive(frame: pd.DataFrame, root) -> None:
    """One `date=YYYY-MM-DD/part-0.parquet` per day, each with one row group per hour."""
    rows_per_hour = int(pd.Timedelta(hours=1) / (frame["timestamp"].iloc[1] - frame["timestamp"].iloc[0]))
    for day, rows in frame.groupby(frame["timestamp"].dt.strftime("%Y-%m-%d")):
        directory = root / f"date={day}"
        directory.mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), directory / "part-0.parquet",
                       row_group_size=rows_per_hour)


def expected_window(frame: pd.DataFrame, start: datetime, end: datetime, columns) -> pd.DataFrame:
    """The window computed by pandas on the whole frame: the independent answer."""
    keep = (frame["timestamp"] >= start) & (frame["timestamp"] < end)
    return frame.loc[keep, columns].reset_index(drop=True)


class _CountingFile(io.RawIOBase):
    def __init__(self, raw, counter):
        self._raw, self._counter = raw, counter

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        return self._raw.seek(offset, whence)

    def tell(self):
        return self._raw.tell()

    def read(self, size=-1):
        data = self._raw.read(size)
        self._counter.bytes_read += len(data)
        return data

    def close(self):
        self._raw.close()
        super().close()


class CountingFileSystem(pafs.FileSystemHandler):
    """The local disk, counting the files opened and the bytes read from them."""

    def __init__(self):
        self.local = pafs.LocalFileSystem()
        self.opened: list[str] = []
        self.bytes_read = 0

    def get_type_name(self):
        return "counting-local"

    def normalize_path(self, path):
        return path

    def get_file_info(self, paths):
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.local.get_file_info(selector)

    def open_input_file(self, path):
        self.opened.append(path)
        return pa.PythonFile(_CountingFile(open(path, "rb"), self), mode="r")

    def open_input_stream(self, path):
        return self.open_input_file(path)

    def _read_only(self, *args):
        raise NotImplementedError("read-only test filesystem")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = delete_file = _read_only
    move = copy_file = open_output_stream = open_append_stream = _read_only


def test_a_hive_partitioned_dataset_reads_the_window_exactly(tmp_path):
    frame = hourly_log(np.random.default_rng(1))
    write_hive(frame, tmp_path / "logs")
    # A window across midnight, with odd minutes: two partitions, partial row groups.
    start, end = datetime(2026, 11, 24, 22, 17, tzinfo=timezone.utc), datetime(2026, 11, 25, 1, 3,
                                                                               tzinfo=timezone.utc)
    window = read_window(tmp_path / "logs", "timestamp", start, end, ["score", "version"])
    pd.testing.assert_frame_equal(window, expected_window(frame, start, end, ["score", "version"]),
                                  check_dtype=False)
    assert log_columns(tmp_path / "logs") == ["timestamp", "score", "version"]  # `date` is layout, not data


def test_a_window_reads_only_the_partitions_and_row_groups_it_overlaps(tmp_path):
    # A row every 2 s: day files (about 0.7 MB) well above the 64 KiB arrow reads speculatively for a footer.
    frame = hourly_log(np.random.default_rng(2), every_s=2)
    write_hive(frame, tmp_path / "logs")
    everything = CountingFileSystem()
    read_window(str(tmp_path / "logs"), "timestamp", FIRST_DAY, FIRST_DAY + timedelta(days=DAYS), ["score"],
                filesystem=pafs.PyFileSystem(everything))
    assert len(set(everything.opened)) == DAYS
    one_hour = CountingFileSystem()
    start = datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc)
    window = read_window(str(tmp_path / "logs"), "timestamp", start, start + timedelta(hours=1), ["score"],
                         filesystem=pafs.PyFileSystem(one_hour))
    assert window["score"].tolist() == expected_window(frame, start, start + timedelta(hours=1),
                                                       ["score"])["score"].tolist()
    assert len(window) == 1800
    # Partition pruning: besides the first file (whose footer gives the schema), only that day's file is opened.
    touched = {os.path.basename(os.path.dirname(p)) for p in one_hour.opened}
    assert touched <= {"date=2026-11-21", "date=2026-11-27"}, touched
    # Row-group pushdown: one hour of one day costs a small fraction of reading the log (10 days x 24 groups).
    assert one_hour.bytes_read < everything.bytes_read / 15, (one_hour.bytes_read, everything.bytes_read)


def test_a_glob_selects_files_and_keeps_their_partition_keys(tmp_path):
    frame = hourly_log(np.random.default_rng(3))
    write_hive(frame, tmp_path / "logs")
    (tmp_path / "logs" / "_SUCCESS").write_text("")  # a Spark marker is not data
    pattern = str(tmp_path / "logs" / "date=2026-11-2[3-5]" / "*.parquet")
    window = read_window(pattern, "timestamp", FIRST_DAY, FIRST_DAY + timedelta(days=DAYS), ["score"])
    assert len(window) == 3 * 24 * 60
    start, end = datetime(2026, 11, 23, tzinfo=timezone.utc), datetime(2026, 11, 26, tzinfo=timezone.utc)
    assert window["score"].tolist() == expected_window(frame, start, end, ["score"])["score"].tolist()
    with pytest.raises(PredictionLogError, match=r"date=2027-\*/\*.parquet: matches no file"):
        read_window(str(tmp_path / "logs" / "date=2027-*" / "*.parquet"), "timestamp", start, end)


def test_the_log_state_changes_when_a_partition_is_added(tmp_path):
    frame = hourly_log(np.random.default_rng(4))
    write_hive(frame.iloc[:24 * 60], tmp_path / "logs")
    before = log_state(str(tmp_path / "logs"))
    assert log_state(str(tmp_path / "logs")) == before
    write_hive(frame.iloc[24 * 60:2 * 24 * 60], tmp_path / "logs")
    assert log_state(str(tmp_path / "logs")) != before


@pytest.mark.parametrize("make, message", [
    (lambda root: (root / "logs" / "date=2026-11-21").mkdir(parents=True) or (
        root / "logs" / "date=2026-11-21" / "part.csv").write_text("a\n1\n"), "part.csv is not a Parquet file"),
    (lambda root: (root / "logs").mkdir(), "logs: matches no file"),
    (lambda root: None, "logs: no such file"),
], ids=["a CSV inside a Parquet dataset is refused by name", "an empty directory matches no file",
        "a missing directory says so"])
def test_unusable_datasets_are_one_clear_line(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(PredictionLogError, match=message):
        read_window(str(tmp_path / "logs"), "timestamp", FIRST_DAY, FIRST_DAY + timedelta(hours=1))


# -- object storage: a local S3-compatible server (moto) on loopback ------------------------------------

BUCKET = "prediction-logs"


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The AWS SDKs' environment: test credentials, a region and the loopback endpoint."""
    env = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
           "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": s3_server, "AWS_EC2_METADATA_DISABLED": "true"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    return env


@pytest.fixture
def s3_log(s3_env, tmp_path):
    """The ten-day Hive-partitioned log uploaded under s3://prediction-logs/team/predictions/."""
    import boto3

    frame = hourly_log(np.random.default_rng(5))
    write_hive(frame, tmp_path / "logs")
    client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="eu-west-1")
    try:
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    for path in sorted((tmp_path / "logs").rglob("*.parquet")):
        key = "team/predictions/" + path.relative_to(tmp_path / "logs").as_posix()
        client.upload_file(str(path), BUCKET, key)
    return frame


def test_a_partitioned_log_on_s3_reads_the_same_window(s3_log):
    start, end = datetime(2026, 11, 26, 23, 30, tzinfo=timezone.utc), datetime(2026, 11, 27, 2, 0,
                                                                               tzinfo=timezone.utc)
    window = read_window(f"s3://{BUCKET}/team/predictions/", "timestamp", start, end, ["score", "version"])
    pd.testing.assert_frame_equal(window, expected_window(s3_log, start, end, ["score", "version"]),
                                  check_dtype=False)
    glob = read_window(f"s3://{BUCKET}/team/predictions/date=2026-11-27/*.parquet", "timestamp", start, end,
                       ["score"])
    assert glob["score"].tolist() == expected_window(s3_log, datetime(2026, 11, 27, tzinfo=timezone.utc), end,
                                                     ["score"])["score"].tolist()


def test_a_missing_bucket_or_prefix_is_one_clear_line(s3_log):
    with pytest.raises(PredictionLogError, match=rf"s3://{BUCKET}/nobody/: no such file"):
        read_window(f"s3://{BUCKET}/nobody/", "timestamp", FIRST_DAY, FIRST_DAY + timedelta(hours=1))
    with pytest.raises(PredictionLogError, match="s3://no-such-bucket/logs/"):
        read_window("s3://no-such-bucket/logs/", "timestamp", FIRST_DAY, FIRST_DAY + timedelta(hours=1))


def _check_config(tmp_path, log_path: str) -> str:
    config = tmp_path / "monitor.yaml"
    config.write_text(textwrap.dedent(f"""\
        prometheus:
          url: http://127.0.0.1:9
        models:
          - name: ranker
            inferences: ranker_requests_total
            drift:
              log:
                path: {log_path}
                columns: [score]
        """))
    return str(config)


def test_check_validates_an_s3_log_and_names_a_wrong_prefix_at_its_line(s3_log, tmp_path):
    good = subprocess.run([sys.executable, "-m", "monitor", "check", "--config",
                           _check_config(tmp_path, f"s3://{BUCKET}/team/predictions/")],
                          capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert good.returncode == 0, good.stderr
    assert "1 prediction logs" in good.stdout, good.stdout
    bad = subprocess.run([sys.executable, "-m", "monitor", "check", "--config",
                          _check_config(tmp_path, f"s3://{BUCKET}/team/typo/")],
                         capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert bad.returncode == 1
    line = next(line for line in bad.stderr.splitlines() if "drift.log" in line)
    assert "monitor.yaml:8:" in line and f"s3://{BUCKET}/team/typo/: no such file" in line
    assert "testing-secret-key" not in bad.stderr + bad.stdout
