"""`monitor drift --reference FILE --current FILE [--columns a,b] [--json]` on Parquet and CSV files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitor.cli import main

CONTRACT_KEYS = ["column", "kind", "n_reference", "n_current", "psi", "js", "ks", "ks_pvalue", "wasserstein",
                 "wasserstein_norm", "chi2", "chi2_pvalue", "drifted"]


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"age": rng.normal(40, 10, 3000), "country": rng.choice(["US", "DE"], 3000),
                              "only_in_reference": rng.normal(size=3000), "empty": np.full(3000, np.nan)})
    current = pd.DataFrame({"age": rng.normal(40.2, 10, 1000), "country": rng.choice(["US", "DE", "FR"], 1000),
                            "empty": np.full(1000, np.nan)})
    paths = {"reference": tmp_path / "reference.parquet", "current": tmp_path / "current.csv"}
    reference.to_parquet(paths["reference"], index=False)
    current.to_csv(paths["current"], index=False)
    return paths, reference, current


def run_json(capsys, *argv) -> dict:
    assert main(["drift", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_the_contract_shape_and_scipy_numbers(files, capsys):
    paths, reference, current = files
    report = run_json(capsys, "--reference", paths["reference"], "--current", paths["current"])
    assert list(report) == ["columns", "drift_share", "dataset_drift"]
    by_column = {c["column"]: c for c in report["columns"]}
    assert list(by_column) == ["age", "country", "only_in_reference", "empty"]
    for entry in report["columns"]:
        assert list(entry)[:len(CONTRACT_KEYS)] == CONTRACT_KEYS
    age = by_column["age"]
    assert age["kind"] == "numeric" and (age["n_reference"], age["n_current"]) == (3000, 1000)
    ks = stats.ks_2samp(reference["age"], current["age"], method="asymp")
    assert age["ks"] == pytest.approx(ks.statistic, rel=1e-9)
    assert age["wasserstein"] == pytest.approx(stats.wasserstein_distance(reference["age"], current["age"]),
                                               rel=1e-9)
    assert age["chi2"] is None and age["drifted"] is False
    country = by_column["country"]
    assert country["kind"] == "categorical" and country["ks"] is None
    assert country["drifted"] is True  # FR appears: js well above 0.1
    assert by_column["only_in_reference"]["no_data"] == "column missing from the current data"
    assert by_column["only_in_reference"]["drifted"] is None
    assert by_column["empty"]["no_data"] == "no values in the current sample"
    assert report["drift_share"] == 0.5 and report["dataset_drift"] is True


def test_columns_selects_and_orders(files, capsys):
    paths, _, _ = files
    report = run_json(capsys, "--reference", paths["reference"], "--current", paths["current"],
                      "--columns", "country,age")
    assert [c["column"] for c in report["columns"]] == ["country", "age"]


@pytest.mark.parametrize("make_bad, message", [
    (lambda p: p.write_text("a,b\n1,2\n3,4,5\n"), "bad.csv:3: invalid CSV"),
    (lambda p: p.write_bytes(b""), "bad.csv: file is empty"),
    (lambda p: None, "bad.csv: no such file"),
], ids=["a ragged CSV names its line", "an empty file says so", "a missing file says so"])
def test_unreadable_files_are_one_clear_line(tmp_path, files, capsys, make_bad, message):
    paths, _, _ = files
    bad = tmp_path / "bad.csv"
    make_bad(bad)
    assert main(["drift", "--reference", str(paths["reference"]), "--current", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_a_corrupt_parquet_file_is_one_clear_line(tmp_path, files, capsys):
    paths, _, _ = files
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    assert main(["drift", "--reference", str(bad), "--current", str(paths["current"])]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.parquet" in err and "Parquet" in err


def test_a_column_in_neither_file_is_an_error(files, capsys):
    paths, _, _ = files
    assert main(["drift", "--reference", str(paths["reference"]), "--current", str(paths["current"]),
                 "--columns", "age,nope"]) == 1
    assert "no column 'nope'" in capsys.readouterr().err


def test_the_table_output_and_the_installed_entry_point(files):
    paths, _, _ = files
    result = subprocess.run([sys.executable, "-m", "monitor", "drift", "--reference", str(paths["reference"]),
                             "--current", str(paths["current"])], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["column", "kind", "n_ref"]
    assert "no data: column missing from the current data" in result.stdout
    assert lines[-1] == "drift share 50%: dataset drift"
