"""The report as files: a readable title, and all-or-nothing writes when the disk is full or
the directory cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.report.period import custom_period, iso_week_period, parse_instant
from monitor.report.render import ReportWriteError, period_title, write_report
from monitor.report.synthetic import synthetic_report

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("period, title", [
    (iso_week_period("2026-W47"), "Week 47, 2026 (16\N{EN DASH}22 Nov)"),
    (iso_week_period("2026-W49"), "Week 49, 2026 (30 Nov \N{EN DASH} 6 Dec)"),
    (iso_week_period("2026-W01"), "Week 1, 2026 (29 Dec 2025 \N{EN DASH} 4 Jan 2026)"),
    (custom_period(parse_instant("2026-11-16T00:00Z"), parse_instant("2026-11-19T00:00Z")),
     "16\N{EN DASH}18 Nov 2026"),
    (custom_period(parse_instant("2026-11-16T00:00Z"), parse_instant("2026-11-17T00:00Z")), "16 Nov 2026"),
    (custom_period(parse_instant("2026-11-16T06:00Z"), parse_instant("2026-11-17T18:00Z")),
     "16 Nov 2026 06:00 \N{EN DASH} 17 Nov 2026 18:00 UTC"),
], ids=["an ISO week within a month", "an ISO week across months", "an ISO week across years",
        "whole days", "one day", "a range with times"])
def test_the_title_names_the_period_as_people_do(period, title):
    assert period_title(period) == title


def test_the_page_title_and_heading_read_as_the_week(tmp_path):
    written = write_report(synthetic_report(iso_week_period("2026-W47"), services=1, models=1), tmp_path)
    page = written.html.read_text()
    assert "<title>ML service review: Week 47, 2026 (16\N{EN DASH}22 Nov)</title>" in page
    assert "<h1>ML service review: Week 47, 2026 (16\N{EN DASH}22 Nov)</h1>" in page


# A full disk, simulated by a file size limit: the write fails with EFBIG part-way
# through the first file, as it would with ENOSPC.
_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from monitor.report.period import iso_week_period
from monitor.report.render import ReportWriteError, write_report
from monitor.report.synthetic import synthetic_report
model = synthetic_report(iso_week_period(sys.argv[2]), services=3, models=2)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
try:
    write_report(model, Path(sys.argv[1]))
except ReportWriteError as exc:
    print(exc)
    sys.exit(1)
"""


def test_a_full_disk_leaves_no_partial_report_and_the_old_ones_whole(tmp_path):
    write_report(synthetic_report(iso_week_period("2026-W46"), services=1, models=1), tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = subprocess.run([sys.executable, "-c", _FULL_DISK, str(tmp_path), "2026-W47"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith(f"cannot write the report to {tmp_path / '2026-W47'}") and \
        "File too large" in result.stdout
    assert not (tmp_path / "2026-W47").exists(), "a half-written report directory was left"
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # no temp files, the archive and last week's report untouched


def test_an_unwritable_report_directory_is_one_error_naming_it(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(ReportWriteError, match=rf"^cannot write the report to {blocker}"):
        write_report(synthetic_report(iso_week_period("2026-W47"), services=1, models=1), blocker / "reports")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
