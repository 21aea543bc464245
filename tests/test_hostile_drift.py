"""Broken and hostile inputs to `monitor drift`: one clear line naming the file (or flag), exit 1 or 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.hostile import assert_handled, run_in_process


@pytest.fixture
def reference(tmp_path):
    path = tmp_path / "reference.parquet"
    pd.DataFrame({"age": np.random.default_rng(1).normal(40, 10, 500)}).to_parquet(path, index=False)
    return path


def _write(path, content: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


CASES = [
    ("a numeric CSV column with stray text names the file and column",
     lambda d: _write(d / "cur.csv", b"age\n41\n39\nabc\n40\n"), "cur.csv: column 'age'"),
    ("a CSV that is not UTF-8 says so", lambda d: _write(d / "cur.csv", b"age\n\xff\xfe41\n"), "cur.csv"),
    ("a ragged CSV names its line", lambda d: _write(d / "cur.csv", b"age\n1\n2,3\n"), "cur.csv:3"),
    ("a truncated Parquet file names the file", lambda d: _write(d / "cur.parquet", b"PAR1\x00\x00"), "cur.parquet"),
    ("a glob that matches nothing says so", lambda d: d / "logs" / "*.parquet", "matches no file"),
    ("an empty directory matches no file", lambda d: (d / "empty").mkdir() or d / "empty", "empty: matches no file"),
    ("a directory mixing CSV into a Parquet dataset names the odd file",
     lambda d: _write(d / "mixed" / "date=2026-12-01" / "a.csv", b"age\n1\n").parent.parent,
     "a.csv is not a Parquet file"),
    ("an unknown file type is refused", lambda d: _write(d / "cur.xlsx", b"PK"), "cur.xlsx: unknown file type"),
    ("an unsupported storage scheme is refused", lambda d: "gs://bucket/logs/", "gs://bucket/logs/: unsupported"),
    ("an s3 URI without a bucket is refused", lambda d: "s3:///logs/", "s3:///logs/: no bucket name"),
]


@pytest.mark.parametrize("make, names", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_current_input(tmp_path, capsys, reference, make, names):
    current = make(tmp_path)
    outcome = run_in_process(["drift", "--reference", reference, "--current", current, "--fail-on-drift"], capsys)
    assert_handled(outcome, names)


def test_min_samples_below_one_names_the_flag(tmp_path, capsys, reference):
    outcome = run_in_process(["drift", "--reference", reference, "--current", reference, "--min-samples", "0"],
                             capsys)
    assert_handled(outcome, "--min-samples")
