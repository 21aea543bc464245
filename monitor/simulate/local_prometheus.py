"""Debian's prometheus on loopback, with history backfilled by promtool.

Used by the test fixture, the demo and the benchmarks. Two facts shape it:
Prometheus deletes blocks older than its retention (15d by default), so we set a
long retention; and promtool writes one block per 2 hours and re-reads the whole
input file for each, so we split the input into day-sized chunks (aligned to the
2h block boundaries) and backfill them side by side: the work drops from
blocks x file size to blocks x chunk size.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from monitor.errors import MonitorError
from monitor.progress import progress

PROMETHEUS_PACKAGE_HINT = ("install Debian's 'prometheus' package (apt-get install prometheus), "
                           "which provides both prometheus and promtool")
BLOCK_SECONDS = 2 * 3600
CHUNK_SECONDS = 12 * BLOCK_SECONDS


class LocalPrometheusError(MonitorError):
    """promtool or prometheus is missing or failed."""


def find_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise LocalPrometheusError(f"{name} not found on PATH: {PROMETHEUS_PACKAGE_HINT}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backfill(openmetrics_path: Path, data_dir: Path, workers: int | None = None) -> None:
    """Create TSDB blocks in `data_dir` from an OpenMetrics file, in parallel day-sized chunks."""
    promtool = find_binary("promtool")
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="backfill-") as tmp:
        chunks: dict[int, object] = {}
        try:
            with open(openmetrics_path, encoding="utf-8") as source:
                for line in source:
                    if line.startswith("#"):
                        continue
                    chunk = int(float(line.rsplit(" ", 1)[1])) // CHUNK_SECONDS
                    out = chunks.get(chunk)
                    if out is None:
                        out = chunks[chunk] = open(Path(tmp) / f"chunk-{chunk}.om", "w", encoding="utf-8")
                    out.write(line)
        finally:
            for out in chunks.values():
                out.write("# EOF\n")
                out.close()

        def run(chunk_file: Path) -> None:
            result = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q",
                                     str(chunk_file), str(data_dir)], capture_output=True, text=True)
            if result.returncode != 0:
                raise LocalPrometheusError(f"promtool backfill of {chunk_file.name} failed: "
                                           f"{(result.stderr or result.stdout).strip()[-2000:]}")

        files = sorted(Path(tmp).glob("chunk-*.om"))
        with ThreadPoolExecutor(max_workers=workers or max(1, os.cpu_count() or 1)) as pool:
            list(progress(pool.map(run, files), desc="backfill", total=len(files), unit="day"))


class LocalPrometheus:
    """A prometheus process on 127.0.0.1 serving a data directory; start, stop, restart."""

    def __init__(self, data_dir: Path, port: int | None = None, rule_files: list[Path] | None = None,
                 log_path: Path | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.rule_files = list(rule_files or [])
        self.log_path = log_path or self.data_dir.parent / f"prometheus-{self.port}.log"
        self.config_path = self.data_dir.parent / f"prometheus-{self.port}.yml"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        # No scrape targets: the history is all backfilled. Rule files (recording
        # rules for SLOs) can be added and picked up with reload().
        lines = ["global:", "  evaluation_interval: 30s", "scrape_configs: []"]
        if self.rule_files:
            lines.append("rule_files:")
            lines += [f"  - {Path(p).resolve()}" for p in self.rule_files]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start(self, timeout: float = 60.0) -> "LocalPrometheus":
        binary = find_binary("prometheus")
        self.write_config()
        log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.data_dir}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=3650d",
             "--web.enable-lifecycle", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise LocalPrometheusError(f"prometheus exited with {self._process.returncode}; "
                                           f"see {self.log_path}:\n{self._log_tail()}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise LocalPrometheusError(f"prometheus not ready after {timeout:g}s; see {self.log_path}")

    def reload(self, rule_files: list[Path] | None = None) -> None:
        """Rewrite the config (optionally with new rule files) and ask prometheus to reload it."""
        if rule_files is not None:
            self.rule_files = list(rule_files)
        self.write_config()
        response = requests.post(f"{self.url}/-/reload", timeout=30)
        if response.status_code != 200:
            raise LocalPrometheusError(f"reload failed: {response.text.strip()}")

    def stop(self, timeout: float = 30.0) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        """Stop and start on the same port and data (for outage tests)."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def __enter__(self) -> "LocalPrometheus":
        return self.start() if not self.running else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
