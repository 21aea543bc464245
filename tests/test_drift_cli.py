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


# -- exit codes for pipelines: --fail-on-drift ---------------------------------------------------------

@pytest.mark.parametrize("current, flag, code", [
    ("current", ["--fail-on-drift"], 3),
    ("reference", ["--fail-on-drift"], 0),
    ("current", [], 0),
], ids=["a drifted dataset exits 3 with --fail-on-drift", "an undrifted one exits 0 with it",
        "without the flag drift still exits 0"])
def test_fail_on_drift_exit_codes(files, capsys, current, flag, code):
    paths, _, _ = files
    other = paths["reference"] if current == "reference" else paths["current"]
    assert main(["drift", "--reference", str(paths["reference"]), "--current", str(other), "--json", *flag]) == code
    report = json.loads(capsys.readouterr().out)  # the report is printed either way
    assert report["dataset_drift"] is (current == "current")


def test_a_numeric_column_with_stray_text_is_an_error_naming_file_column_and_row(tmp_path, files, capsys):
    paths, _, current = files
    broken = current[["age"]].astype(object)
    broken.loc[[6, 40, 41], "age"] = ["abc", "12,5", "oops"]
    broken.to_csv(tmp_path / "export.csv", index=False)
    assert main(["drift", "--reference", str(paths["reference"]), "--current", str(tmp_path / "export.csv"),
                 "--fail-on-drift"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no report, in particular no "no dataset drift"
    err = captured.err.strip()
    assert len(err.splitlines()) == 1
    assert "export.csv: column 'age' holds numbers but 3 of 1000 values are text" in err
    assert "(first: 'abc' in data row 7)" in err


def test_a_categorical_column_with_some_numeric_codes_stays_categorical(tmp_path, capsys):
    frame = pd.DataFrame({"plan": ["free", "pro", "team", "42"] * 50})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_csv(tmp_path / "b.csv", index=False)
    report = run_json(capsys, "--reference", tmp_path / "a.csv", "--current", tmp_path / "b.csv")
    assert report["columns"][0]["kind"] == "categorical" and report["columns"][0]["js"] == 0.0


# -- progress on a terminal ----------------------------------------------------------------------------

def _run_with_terminal_stderr(argv: list[str]) -> tuple[int, str, str]:
    """`python -m monitor ARGV` with stderr on a pseudo-terminal; (exit code, stdout, terminal output)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    controller, terminal = pty.openpty()
    # A terminal of 24 x 100, as a real one has (a fresh pty is 0 x 0, where tqdm draws nothing).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "monitor", *argv], stdout=subprocess.PIPE,
                               stderr=terminal, text=True)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    stdout = process.stdout.read()
    code = process.wait(timeout=120)
    os.close(controller)
    return code, stdout, seen.decode("utf-8", "replace")


@pytest.fixture
def large_files(tmp_path):
    """Two Parquet files over the progress threshold together (random doubles do not compress)."""
    from monitor.commands.drift import PROGRESS_MIN_BYTES

    rng = np.random.default_rng(11)
    rows = PROGRESS_MIN_BYTES // 8 // 2 + 50_000
    paths = []
    for name, shift in (("reference", 0.0), ("current", 0.5)):
        path = tmp_path / f"{name}.parquet"
        pd.DataFrame({"x": rng.normal(shift, 1.0, rows)}).to_parquet(path, index=False)
        paths.append(path)
    assert sum(p.stat().st_size for p in paths) >= PROGRESS_MIN_BYTES
    return paths


def test_a_progress_bar_is_drawn_on_a_terminal_and_never_with_json(large_files):
    reference, current = map(str, large_files)
    code, stdout, terminal = _run_with_terminal_stderr(["drift", "--reference", reference, "--current", current])
    assert code == 0 and stdout.splitlines()[-1] == "drift share 100%: dataset drift"
    assert "drift:" in terminal and "/4" in terminal, terminal  # tqdm's "drift:  50%|█  | 2/4 [...]"
    code, stdout, terminal = _run_with_terminal_stderr(["drift", "--reference", reference, "--current", current,
                                                        "--json"])
    assert code == 0 and json.loads(stdout)["dataset_drift"] is True
    assert terminal == ""


def test_comparing_parquet_numbers_imports_neither_pandas_nor_scipy_stats_nor_numba(tmp_path):
    """Start-up is most of a one-shot `monitor drift`: its command module keeps the heavy imports out."""
    rng = np.random.default_rng(8)
    for name in ("reference", "current"):
        pd.DataFrame({"x": rng.normal(size=5000), "n": rng.integers(0, 9, 5000)}).to_parquet(
            tmp_path / f"{name}.parquet", index=False)
    script = ("import sys, json\n"
              "from monitor.commands.drift import compare_files\n"
              f"report = compare_files({str(tmp_path / 'reference.parquet')!r}, "
              f"{str(tmp_path / 'current.parquet')!r})\n"
              "heavy = sorted(m for m in ('pandas', 'scipy.stats', 'numba') if m in sys.modules)\n"
              "print(json.dumps({'heavy': heavy, 'columns': len(report.columns)}))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"heavy": [], "columns": 2}
