"""Debian's `prometheus-alertmanager` on a free loopback port, with a temp storage path and no clustering."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

MINIMAL_CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1h
receivers:
  - name: blackhole
"""


def find_alertmanager() -> str | None:
    return shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalAlertmanager:
    def __init__(self) -> None:
        self.binary = find_alertmanager()
        self.dir = Path(tempfile.mkdtemp(prefix="alertmanager-"))
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> "LocalAlertmanager":
        if self.binary is None:
            raise RuntimeError("alertmanager not found: install Debian's prometheus-alertmanager (make prometheus)")
        config = self.dir / "alertmanager.yml"
        config.write_text(MINIMAL_CONFIG)
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "wb"))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"alertmanager exited: {(self.dir / 'stderr.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("alertmanager did not become ready")

    def alerts(self) -> list[dict]:
        response = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)
