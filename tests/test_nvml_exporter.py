"""The NVML exporter: dcgm-exporter's names and labels on /metrics, and a clear exit without a GPU.

Without a GPU, `NvmlReader` runs against `tests/fake_pynvml.py`, a stand-in for NVIDIA's
`pynvml` module with GPUs, MIG devices and processes; serving runs behind a real
prometheus-client HTTP server on loopback, and every exposition is checked with
Prometheus's own parsers (`promtool check metrics`, prometheus_client's text parser).
`test_the_exporter_on_this_hosts_real_gpus` runs the whole exporter on real GPUs and
skips, saying why, only where there is no NVIDIA driver (scripts/gpu_check.sh runs it).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from monitor.sources.nvml import (DCGM_METRICS, DcgmCompatibleCollector, GpuReading, LocalGpus, NvmlReader,
                                  NvmlUnavailable, local_gpus)


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
                           "hostname": "gpu-host-7"}
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


# --- NVML itself (through the stand-in for pynvml): MIG devices, processes, unsupported readings ---

import pynvml  # noqa: E402

from monitor.sources.nvml import PROCESS_MEMORY_METRIC, PROCESS_SM_METRIC  # noqa: E402
from tests.fake_pynvml import MIB, FakeDevice, FakeNvml, FakeProcess, FakeSample  # noqa: E402


def _exposition(collector: DcgmCompatibleCollector) -> str:
    """/metrics as a real prometheus-client server serves it, checked by promtool on the way."""
    registry = CollectorRegistry()
    registry.register(collector)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        text = requests.get(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    _promtool_check(text)
    return text


# promtool's exit codes: 1 the exposition does not parse, 3 it parses with lint findings.
PROMTOOL_LINT_FINDINGS = 3
CAMEL_CASE_LABEL = "label names should be written in 'snake_case' not 'camelCase'"


def _promtool_check(text: str) -> None:
    """The exposition parses for Prometheus, and its only lint finding is dcgm-exporter's own `modelName`."""
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=30)
    findings = (check.stdout + check.stderr).strip().splitlines()
    assert check.returncode in (0, PROMTOOL_LINT_FINDINGS), findings
    assert all(line.endswith(CAMEL_CASE_LABEL) for line in findings), findings
    assert "modelName" in text or not findings


def _samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _mig_a100() -> FakeDevice:
    return FakeDevice(
        "GPU-a100", "NVIDIA A100-SXM4-80GB", total_mib=81920, used_mib=0, utilization=None, power_mw=210_000,
        temperature=33, sm_clock=1410,
        mig_slots=[
            FakeDevice("MIG-1", "NVIDIA A100-SXM4-80GB MIG 1g.10gb", total_mib=9728, used_mib=4096,
                       gpu_instance_id=9, slices=1,
                       processes=[FakeProcess(4242, 4000 * MIB)]),
            None,  # an empty slot
            FakeDevice("MIG-3", "NVIDIA A100-SXM4-80GB MIG 3g.40gb", total_mib=40192, used_mib=1000,
                       gpu_instance_id=2, slices=3),
        ])


def _l4(**changes) -> FakeDevice:
    values = dict(uuid="GPU-l4", name="NVIDIA L4", total_mib=23034, used_mib=12000, utilization=37,
                  power_mw=71_500, temperature=54, sm_clock=2040)
    values.update(changes)
    return FakeDevice(**values)


def test_mig_devices_are_served_with_their_profile_and_instance_and_the_parent_gpu_is_not_counted_again():
    nvml = FakeNvml([_l4(), _mig_a100()])
    text = _exposition(DcgmCompatibleCollector(NvmlReader(nvml), hostname="node-a"))
    fb_used = {(s.labels["gpu"], s.labels.get("GPU_I_ID")): s for s in _samples(text)
               if s.name == "DCGM_FI_DEV_FB_USED"}
    # The L4, then one series per MIG device (the empty slot has none), none for the A100 as a whole.
    assert set(fb_used) == {("0", None), ("1", "9"), ("1", "2")}
    small = fb_used[("1", "9")]
    assert small.labels == {"gpu": "1", "UUID": "GPU-a100", "device": "nvidia1",
                            "modelName": "NVIDIA A100-SXM4-80GB", "hostname": "node-a",
                            "GPU_I_PROFILE": "1g.10gb", "GPU_I_ID": "9"}
    assert small.value == 4096
    assert fb_used[("1", "2")].labels["GPU_I_PROFILE"] == "3g.40gb"
    free = {s.labels.get("GPU_I_ID"): s.value for s in _samples(text) if s.name == "DCGM_FI_DEV_FB_FREE"}
    assert free == {None: 23034 - 12000, "9": 9728 - 4096, "2": 40192 - 1000}
    # NVML gives no utilisation for a MIG device and has no DCGM profiling fields: absent, not 0.
    util = [s for s in _samples(text) if s.name == "DCGM_FI_DEV_GPU_UTIL"]
    assert [(s.labels["gpu"], s.value) for s in util] == [("0", 37.0)]
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE" not in text


def test_a_mig_profile_is_named_from_slices_and_memory_when_nvml_does_not_name_the_device():
    a100 = _mig_a100()
    a100.mig_slots[0].name = "NVIDIA A100-SXM4-40GB"  # a driver that does not append "MIG <profile>"
    a100.mig_slots[0].total_mib = 4864               # 1g.5gb on the 40 GB A100: 4.75 GiB
    readings = NvmlReader(FakeNvml([a100])).read()
    assert [(r.gpu_instance_id, r.mig_profile) for r in readings] == [(9, "1g.5gb"), (2, "3g.40gb")]


def test_processes_are_served_with_their_pid_memory_and_mean_sm_utilisation_since_the_last_scrape():
    l4 = _l4(processes=[FakeProcess(101, 3 * 1024 * MIB), FakeProcess(202, None)],
             samples=[FakeSample(101, 1_000, 20), FakeSample(101, 2_000, 40), FakeSample(202, 2_000, 10)])
    nvml = FakeNvml([l4, _mig_a100()])
    collector = DcgmCompatibleCollector(NvmlReader(nvml), hostname="node-a")
    text = _exposition(collector)
    memory = {(s.labels["UUID"], s.labels["pid"]): s for s in _samples(text) if s.name == PROCESS_MEMORY_METRIC}
    sm = {(s.labels["UUID"], s.labels["pid"]): s.value for s in _samples(text) if s.name == PROCESS_SM_METRIC}
    # PID 202's memory NVML cannot tell: absent. The MIG device's process carries its slice's labels.
    assert {k: s.value for k, s in memory.items()} == {("GPU-l4", "101"): 3 * 1024 * MIB,
                                                      ("GPU-a100", "4242"): 4000 * MIB}
    assert memory[("GPU-a100", "4242")].labels["GPU_I_PROFILE"] == "1g.10gb"
    assert memory[("GPU-l4", "101")].labels["gpu"] == "0"
    assert sm == {("GPU-l4", "101"): pytest.approx((20 + 40) / 2 / 100), ("GPU-l4", "202"): pytest.approx(0.10)}

    # PID 101 exits, 303 starts; new samples only for 303. 101's series disappear, and the
    # next scrape reads only samples newer than the ones already read.
    l4.processes = [FakeProcess(202, None), FakeProcess(303, 1024 * MIB)]
    l4.samples += [FakeSample(303, 3_000, 90)]
    text = _exposition(collector)
    pids = {(s.name, s.labels["pid"]) for s in _samples(text) if s.name in (PROCESS_MEMORY_METRIC, PROCESS_SM_METRIC)}
    assert pids == {(PROCESS_MEMORY_METRIC, "4242"), (PROCESS_MEMORY_METRIC, "303"), (PROCESS_SM_METRIC, "303")}
    assert [since for uuid, since in nvml.utilization_queries if uuid == "GPU-l4"] == [0, 2_000]


@pytest.mark.parametrize("no_samples_as_success", [False, True],
                         ids=["NVML answers not found", "pynvml raises Success for an empty answer"])
def test_a_scrape_with_no_new_utilisation_sample_has_no_utilisation_series_rather_than_zero(no_samples_as_success):
    l4 = _l4(processes=[FakeProcess(101, MIB)], samples=[FakeSample(101, 1_000, 55)],
             no_samples_as_success=no_samples_as_success)
    collector = DcgmCompatibleCollector(NvmlReader(FakeNvml([l4])), hostname="node-a")
    assert [s.value for s in _samples(_exposition(collector)) if s.name == PROCESS_SM_METRIC] == [0.55]
    again = _samples(_exposition(collector))
    assert not any(s.name == PROCESS_SM_METRIC for s in again)
    assert [s.value for s in again if s.name == PROCESS_MEMORY_METRIC] == [MIB]


def test_a_process_list_nvml_refuses_to_an_unprivileged_caller_is_absent_and_the_gpu_still_served():
    l4 = _l4(processes=None, samples=[FakeSample(101, 1_000, 55)])
    samples = _samples(_exposition(DcgmCompatibleCollector(NvmlReader(FakeNvml([l4])), hostname="node-a")))
    assert {s.name for s in samples} == {name for name, _, _ in DCGM_METRICS}


def test_readings_a_device_does_not_support_are_absent_and_a_failing_gpu_does_not_take_the_others_down():
    bare = FakeDevice("GPU-vgpu", "GRID A100D-8C", total_mib=None, used_mib=None, samples=None)
    lost = _l4(uuid="GPU-lost", broken=pynvml.NVMLError_GpuIsLost())
    nvml = FakeNvml([bare, lost, _l4(uuid="GPU-ok")])
    text = _exposition(DcgmCompatibleCollector(NvmlReader(nvml), hostname="node-a"))
    by_uuid: dict[str, set[str]] = {}
    for s in _samples(text):
        by_uuid.setdefault(s.labels["UUID"], set()).add(s.name)
    # The device supporting nothing has no series at all (no zeros); the lost GPU is left out;
    # the healthy one is served in full.
    assert by_uuid == {"GPU-ok": {name for name, _, _ in DCGM_METRICS}}


def test_the_host_label_is_hostname_as_in_current_dcgm_exporter_or_the_older_spelling_on_request():
    for label in ("hostname", "Hostname"):
        text = _exposition(DcgmCompatibleCollector(NvmlReader(FakeNvml([_l4()])), "node-a", hostname_label=label))
        assert {s.labels.get(label) for s in _samples(text)} == {"node-a"}
        other = "Hostname" if label == "hostname" else "hostname"
        assert all(other not in s.labels for s in _samples(text))
    with pytest.raises(ValueError, match="hostname_label"):
        DcgmCompatibleCollector(FixedReader([]), "node-a", hostname_label="host")


@pytest.mark.parametrize("error, says", [
    (pynvml.NVMLError_LibraryNotFound(), "NVML library not found"),
    (pynvml.NVMLError_DriverNotLoaded(), "driver not loaded"),
    (pynvml.NVMLError_NoPermission(), "NVML failed to initialise: Insufficient Permissions"),
], ids=["no library means no driver installed", "a driver not loaded says so",
        "any other start-up failure is named"])
def test_nvml_that_cannot_start_is_one_clear_reason(error, says):
    with pytest.raises(NvmlUnavailable, match=says):
        NvmlReader(FakeNvml([], init_error=error))


# --- the real thing ---

def test_the_exporter_on_this_hosts_real_gpus():
    """The whole `monitor gpu-exporter` on this host's GPUs, checked against NVML read directly."""
    try:
        pynvml.nvmlInit()
    except (pynvml.NVMLError_LibraryNotFound, pynvml.NVMLError_DriverNotLoaded) as exc:
        pytest.skip(f"no NVIDIA driver on this host ({exc}); run scripts/gpu_check.sh on a GPU machine")
    try:
        expected = {}  # (UUID, GPU_I_ID or None) -> total MiB, read here without our reader
        pids = set()
        for index in range(pynvml.nvmlDeviceGetCount()):
            gpu = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = pynvml.nvmlDeviceGetUUID(gpu)
            try:
                mig = pynvml.nvmlDeviceGetMigMode(gpu)[0] == pynvml.NVML_DEVICE_MIG_ENABLE
            except pynvml.NVMLError_NotSupported:
                mig = False
            devices = [(gpu, None)]
            if mig:
                devices = []
                for slot in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(gpu)):
                    try:
                        handle = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu, slot)
                    except pynvml.NVMLError_NotFound:
                        continue
                    devices.append((handle, str(pynvml.nvmlDeviceGetGpuInstanceId(handle))))
            for handle, instance in devices:
                expected[(uuid, instance)] = pynvml.nvmlDeviceGetMemoryInfo(handle).total / MIB
                pids |= {(uuid, instance, str(p.pid)) for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)}
    finally:
        pynvml.nvmlShutdown()

    exporter = subprocess.Popen([sys.executable, "-m", "monitor", "gpu-exporter", "--port", "0",
                                 "--address", "127.0.0.1", "--hostname", "gpu-check"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = exporter.stdout.readline()
        assert "/metrics" in banner, banner + exporter.stderr.read()
        url = banner.strip().rsplit(" ", 1)[1]
        text = requests.get(url, timeout=10).text
    finally:
        exporter.terminate()
        exporter.wait(10)
    _promtool_check(text)
    samples = _samples(text)
    used = {(s.labels["UUID"], s.labels.get("GPU_I_ID")): s.value for s in samples if s.name == "DCGM_FI_DEV_FB_USED"}
    free = {(s.labels["UUID"], s.labels.get("GPU_I_ID")): s.value for s in samples if s.name == "DCGM_FI_DEV_FB_FREE"}
    assert set(used) == set(free) == set(expected)
    for device, total_mib in expected.items():
        assert used[device] + free[device] == pytest.approx(total_mib, abs=1.0)
    assert all(s.labels["hostname"] == "gpu-check" for s in samples)
    served = {(s.labels["UUID"], s.labels.get("GPU_I_ID"), s.labels["pid"]) for s in samples
              if s.name == PROCESS_MEMORY_METRIC}
    assert pids <= served  # every process NVML listed a moment ago (a process exiting in between would fail it)
