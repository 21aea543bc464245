"""The simulated week's report opened in headless Chromium (Debian's `chromium`).

Chromium runs with every host name resolving to nothing, so any attempt to load
something from the network fails; the test checks the page loaded without one,
and that the screenshot shows the charts (their bars and lines are coloured
pixels a text-only page would not have). `make report-screenshot` runs this test
and keeps the page and the PNG in REPORT_SCREENSHOT_DIR to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from monitor.config import load_config
from monitor.outputs.report import write_period_report
from monitor.report.period import iso_week_period
from test_report_checks import external_references, html5_errors

pytestmark = pytest.mark.prometheus

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", '--host-resolver-rules=MAP * ~NOTFOUND', "--enable-logging=stderr",
                  "--v=0")
# The charts' series colours (matplotlib's tab10 blue and orange).
CHART_BLUE = np.array([0x1F, 0x77, 0xB4]) / 255
CHART_ORANGE = np.array([0xFF, 0x7F, 0x0E]) / 255


def find_chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:  # fail loudly: `make test` installs it, tests never silently skip
        pytest.fail("chromium not found: install Debian's 'chromium' package (make chromium)")
    return path


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 4000) -> subprocess.CompletedProcess:
    """Load `page` in headless Chromium with no network and save a screenshot."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run(
            [find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
             f"--window-size={width},{height}", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def shot(sim_dir, prometheus, tmp_path_factory):
    keep = os.environ.get("REPORT_SCREENSHOT_DIR")
    out = Path(keep) if keep else tmp_path_factory.mktemp("screenshot")
    config = load_config(sim_dir / "monitor.yaml")
    config = replace(config, prometheus=replace(config.prometheus, url=prometheus.url))
    # No state store: this page checks rendering; incidents are checked in test_report_simulated_week.
    written = write_period_report(config, iso_week_period("2026-W47"), out_dir=out, prometheus_url=prometheus.url,
                                  generated_at=datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc))
    png = out / "2026-W47" / "screenshot.png"
    png.unlink(missing_ok=True)
    result = screenshot(written.html, png)
    return written, png, result


def test_chromium_renders_the_page_to_a_screenshot(shot):
    _, png, result = shot
    assert result.returncode == 0, result.stderr[-2000:]
    assert png.exists() and png.stat().st_size > 10_000
    image = imread(png)
    assert image.shape[1] == 1280


def test_the_screenshot_shows_the_charts(shot):
    _, png, _ = shot
    pixels = imread(png)[..., :3]
    for colour in (CHART_BLUE, CHART_ORANGE):
        close = np.all(np.abs(pixels - colour) < 0.03, axis=-1)
        assert close.sum() > 2_000, f"too few chart-coloured pixels ({close.sum()}): charts not rendered"


def test_the_page_loaded_nothing_from_the_network(shot):
    written, _, result = shot
    html = written.html.read_text()
    assert external_references(html) == [] and html5_errors(html) == []
    # With every host unresolvable, any fetch would log a network error.
    for marker in ("ERR_NAME_NOT_RESOLVED", "net::ERR_", "Failed to load resource"):
        assert marker not in result.stderr
