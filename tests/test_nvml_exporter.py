"""The NVML exporter: dcgm-exporter's names and labels on /metrics, and a clear exit without a GPU.

This machine has no NVIDIA driver, so the real NVML path is exercised only up to
"library not found"; serving is tested with a small reader implementing our
`GpuReader` protocol behind a real prometheus-client HTTP server on loopback.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from monitor.sources.nvml import (DcgmCompatibleCollector, GpuReading, LocalGpus, NvmlReader, NvmlUnavailable,
                                  local_gpus)


def _has_nvml() -> bool:
    try:
        NvmlReader().close()
    except NvmlUnavailable:
        return False
    return True


NO_GPU = pytest.mark.skipif(_has_nvml(), reason="this host has NVML; the no-GPU behaviour needs a host without")


class FixedReader:
    def __init__(self, readings):
        self.readings = readings
        self.reads = 0

    def read(self):
        self.reads += 1
        return list(self.readings)


READINGS = [
    GpuReading(0, "GPU-aaaa", "NVIDIA L4", 37.0, 12000.0, 11034.0, 71.5, 54.0, 2040.0),
    # A GPU that does not report power or clocks (e.g. a MIG instance): those are left out, not 0.
    GpuReading(1, "GPU-bbbb", "NVIDIA A100-SXM4-80GB", 3.0, 500.0, 81420.0, None, 40.0, None),
]


@NO_GPU
def test_gpu_exporter_without_a_driver_says_so_in_one_line_and_exits_non_zero():
    result = subprocess.run([sys.executable, "-m", "monitor", "gpu-exporter", "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no NVIDIA driver" in lines[0] or "driver not loaded" in lines[0]
    assert result.stdout == ""


@NO_GPU
def test_the_daemon_sees_a_host_without_nvml_as_having_no_local_gpus():
    gpus = local_gpus()
    assert gpus.readings == ()
    assert "NVML library not found" in gpus.unavailable_reason or "driver" in gpus.unavailable_reason


def test_local_gpus_reads_through_the_reader_it_is_given():
    reader = FixedReader(READINGS)
    assert local_gpus(lambda: reader) == LocalGpus(tuple(READINGS))


@pytest.fixture
def exporter():
    reader = FixedReader(READINGS)
    registry = CollectorRegistry()
    registry.register(DcgmCompatibleCollector(reader, hostname="gpu-host-7"))
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"http://127.0.0.1:{server.server_address[1]}", reader
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_metrics_carry_dcgm_names_labels_and_units(exporter):
    url, reader = exporter
    text = requests.get(f"{url}/metrics", timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(f.name, s.labels["gpu"]): s for f in families.values() for s in f.samples}
    assert set(families) >= {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
                             "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_SM_CLOCK"}
    util = samples[("DCGM_FI_DEV_GPU_UTIL", "0")]
    assert util.value == 37.0
    assert util.labels == {"gpu": "0", "UUID": "GPU-aaaa", "device": "nvidia0", "modelName": "NVIDIA L4",
                           "Hostname": "gpu-host-7"}
    assert samples[("DCGM_FI_DEV_FB_FREE", "1")].value == 81420.0
    assert samples[("DCGM_FI_DEV_POWER_USAGE", "0")].value == 71.5
    assert ("DCGM_FI_DEV_POWER_USAGE", "1") not in samples
    assert ("DCGM_FI_DEV_SM_CLOCK", "1") not in samples


def test_each_scrape_reads_the_gpus_afresh(exporter):
    url, reader = exporter
    before = reader.reads
    requests.get(f"{url}/metrics", timeout=5)
    requests.get(f"{url}/metrics", timeout=5)
    assert reader.reads == before + 2
