"""Local GPUs through NVML (`nvidia-ml-py`), read as dcgm-exporter would export them.

For hosts without dcgm-exporter: `monitor gpu-exporter` serves these readings under
dcgm-exporter's metric names and labels, so the cost queries work unchanged. Units
follow dcgm-exporter: framebuffer in MiB, power in W, temperature in C, clocks in MHz.

MIG: a GPU in MIG mode is read per MIG device, as dcgm-exporter does in its default
("flex") mode: the series carry the parent GPU's `gpu`, `UUID`, `device` and
`modelName` plus `GPU_I_PROFILE` (e.g. `1g.10gb`) and `GPU_I_ID`, and the parent GPU
gets no series of its own (a slice counted again as a whole GPU would double its cost).

A reading NVML does not give for a device (NotSupported, e.g. utilisation or power on
a MIG device) is None, so its series is absent: no data, never 0.

A host with no NVIDIA driver or no NVML library is not an error for the daemon: it
has no local GPUs (`local_gpus`). The exporter, whose only job is GPUs, exits.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.errors import MonitorError

MIB = 1024 * 1024

log = logging.getLogger(__name__)


class NvmlUnavailable(MonitorError):
    """NVML cannot be used on this host: no NVIDIA driver loaded or no NVML library."""


@dataclass(frozen=True)
class GpuProcess:
    """One process running on a GPU (or MIG device); None where NVML does not give the reading."""

    pid: int
    memory_used_bytes: float | None
    # Mean SM utilisation (percent of the device) of NVML's samples since the previous read.
    sm_utilization_percent: float | None


@dataclass(frozen=True)
class GpuReading:
    """One GPU's (or one MIG device's) state at one instant; None where NVML does not support the reading.

    For a MIG device, `index`, `uuid` and `name` are the parent GPU's (as dcgm-exporter labels
    them) and `mig_profile`/`gpu_instance_id` identify the slice.
    """

    index: int
    uuid: str
    name: str
    utilization_percent: float | None
    framebuffer_used_mib: float | None
    framebuffer_free_mib: float | None
    power_w: float | None
    temperature_c: float | None
    sm_clock_mhz: float | None
    mig_profile: str | None = None
    gpu_instance_id: int | None = None
    processes: tuple[GpuProcess, ...] = ()


class GpuReader(Protocol):
    def read(self) -> list[GpuReading]:
        """The current readings of every GPU."""


def _unavailable_reason(nvml, exc: Exception) -> str | None:
    """A one-line explanation when `exc` means "no NVML here", else None."""
    if isinstance(exc, nvml.NVMLError_LibraryNotFound):
        return "NVML library not found (libnvidia-ml.so): no NVIDIA driver installed on this host"
    if isinstance(exc, nvml.NVMLError_DriverNotLoaded):
        return "NVIDIA driver not loaded: no usable GPU on this host"
    return None


class NvmlReader:
    """Reads every local GPU through NVML; construct once, `read()` per scrape, `close()` at exit.

    `nvml` is the `pynvml` module (the default) or a stand-in with its API, for tests.
    """

    def __init__(self, nvml=None) -> None:
        if nvml is None:
            import pynvml as nvml
        self._nvml = nvml
        self._lock = threading.Lock()
        # The newest process-utilisation sample already read, per device (GPU UUID, GPU instance):
        # bounded by the number of devices, whatever processes come and go.
        self._last_sample_us: dict[tuple[str, int | None], int] = {}
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            reason = _unavailable_reason(nvml, exc)
            raise NvmlUnavailable(reason or f"NVML failed to initialise: {exc}") from None

    def read(self) -> list[GpuReading]:
        nvml = self._nvml
        with self._lock:  # NVML handles and the sample cursors are shared; scrapes may overlap
            readings = []
            for index in range(nvml.nvmlDeviceGetCount()):
                try:
                    readings.extend(self._read_gpu(index))
                except nvml.NVMLError as exc:
                    # One GPU failing (fallen off the bus, reset in progress) must not take the
                    # others' series with it: its series are absent from this scrape.
                    log.warning("GPU %d: NVML read failed, its series are left out of this scrape: %s",
                                index, exc)
            return readings

    def _read_gpu(self, index: int) -> list[GpuReading]:
        nvml = self._nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = _text(nvml.nvmlDeviceGetUUID(handle))
        name = _text(nvml.nvmlDeviceGetName(handle))
        if not self._mig_enabled(handle):
            return [self._reading(index, uuid, name, handle)]
        return [self._reading(index, uuid, name, mig, mig_profile=self._mig_profile(mig),
                              gpu_instance_id=int(nvml.nvmlDeviceGetGpuInstanceId(mig)))
                for mig in self._mig_devices(handle)]

    def _mig_enabled(self, handle) -> bool:
        mode = self._optional(lambda: self._nvml.nvmlDeviceGetMigMode(handle))  # [current, pending]
        return mode is not None and mode[0] == self._nvml.NVML_DEVICE_MIG_ENABLE

    def _mig_devices(self, handle) -> Iterator[object]:
        nvml = self._nvml
        for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
            try:
                yield nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            except nvml.NVMLError_NotFound:
                continue  # an empty slot: fewer instances than the GPU could hold

    def _mig_profile(self, mig) -> str:
        # NVML names a MIG device "<GPU name> MIG 1g.10gb" (the profile's own name, which
        # DCGM exports as GPU_I_PROFILE); from the slice count and memory when it does not.
        name = _text(self._optional(lambda: self._nvml.nvmlDeviceGetName(mig)) or "")
        if "MIG " in name:
            return name.rsplit("MIG ", 1)[1].strip()
        attributes = self._nvml.nvmlDeviceGetAttributes(mig)
        # Profile names round the slice's memory up to whole GB (1g.5gb holds 4864 MiB).
        return f"{attributes.gpuInstanceSliceCount}g.{math.ceil(attributes.memorySizeMB / 1024)}gb"

    def _reading(self, index: int, uuid: str, name: str, handle, *, mig_profile: str | None = None,
                 gpu_instance_id: int | None = None) -> GpuReading:
        nvml = self._nvml
        memory = self._optional(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        return GpuReading(
            index=index,
            uuid=uuid,
            name=name,
            utilization_percent=self._optional(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
            framebuffer_used_mib=memory.used / MIB if memory is not None else None,
            framebuffer_free_mib=memory.free / MIB if memory is not None else None,
            # NVML reports milliwatts.
            power_w=self._optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0),
            temperature_c=self._optional(
                lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
            sm_clock_mhz=self._optional(lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
            mig_profile=mig_profile,
            gpu_instance_id=gpu_instance_id,
            processes=self._processes(handle, (uuid, gpu_instance_id)),
        )

    def _processes(self, handle, device: tuple[str, int | None]) -> tuple[GpuProcess, ...]:
        # On a MIG GPU the parent's handle lists processes only for privileged callers; each
        # MIG device's own handle lists its own (NVML's nvmlDeviceGetComputeRunningProcesses).
        running = self._optional(lambda: self._nvml.nvmlDeviceGetComputeRunningProcesses(handle)) or []
        sm_percent = self._sm_utilization_by_pid(handle, device)
        memory_by_pid: dict[int, float | None] = {}
        for process in running:
            # usedGpuMemory is None where NVML cannot tell (pynvml maps NVML_VALUE_NOT_AVAILABLE).
            used = process.usedGpuMemory
            memory_by_pid[int(process.pid)] = float(used) if used is not None else None
        # Only processes running now: an exited PID's series disappear with it.
        return tuple(GpuProcess(pid, memory_by_pid[pid], sm_percent.get(pid)) for pid in sorted(memory_by_pid))

    def _sm_utilization_by_pid(self, handle, device: tuple[str, int | None]) -> dict[int, float]:
        nvml = self._nvml
        since = self._last_sample_us.get(device, 0)
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(handle, since)
        except (nvml.NVMLError_NotSupported, nvml.NVMLError_NoPermission, nvml.NVMLError_NotFound):
            return {}  # not given on this device, or no sample since the last read: no data
        except nvml.NVMLError as exc:
            if exc.value == nvml.NVML_SUCCESS:  # pynvml raises "Success" when there are no samples
                return {}
            raise
        by_pid: dict[int, list[float]] = {}
        for sample in samples:
            if sample.timeStamp > since:
                by_pid.setdefault(int(sample.pid), []).append(float(sample.smUtil))
        if samples:
            self._last_sample_us[device] = max(since, max(int(s.timeStamp) for s in samples))
        # The mean of the samples since the previous scrape: the scrape interval's utilisation,
        # not whichever instant the last sample caught.
        return {pid: sum(values) / len(values) for pid, values in by_pid.items()}

    def _optional(self, read: Callable[[], object]):
        # Some GPUs (and MIG devices, vGPUs, unprivileged containers) do not give every
        # reading: leave it out of the scrape rather than fail the whole GPU or report a fake 0.
        try:
            return read()
        except (self._nvml.NVMLError_NotSupported, self._nvml.NVMLError_NoPermission):
            return None

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            pass


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class LocalGpus:
    """What the daemon knows about local GPUs: readings, or why there are none."""

    readings: tuple[GpuReading, ...]
    unavailable_reason: str | None = None


def local_gpus(reader_factory: Callable[[], GpuReader] = NvmlReader) -> LocalGpus:
    """Local GPU readings for the daemon; a host without NVML simply has none (not a failure)."""
    try:
        reader = reader_factory()
    except NvmlUnavailable as exc:
        return LocalGpus((), str(exc))
    try:
        return LocalGpus(tuple(reader.read()))
    finally:
        close = getattr(reader, "close", None)
        if close:
            close()


# dcgm-exporter's default counters we can fill from NVML: (metric, help, reading attribute).
# DCGM_FI_PROF_GR_ENGINE_ACTIVE, which dcgm-exporter gives for MIG devices in place of
# DCGM_FI_DEV_GPU_UTIL, is a DCGM profiling field that NVML has no reading for: a MIG
# device served by this exporter has no utilisation series (no data), not a stand-in.
DCGM_METRICS = (
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "utilization_percent"),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "framebuffer_used_mib"),
    ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", "framebuffer_free_mib"),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "power_w"),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "temperature_c"),
    ("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", "sm_clock_mhz"),
)
# Per-process series have no dcgm-exporter counterpart (it maps GPUs, not processes, to
# pods), so they carry our prefix and Prometheus base units.
PROCESS_MEMORY_METRIC = "monitor_gpu_process_memory_used_bytes"
PROCESS_SM_METRIC = "monitor_gpu_process_sm_utilization_ratio"
# dcgm-exporter labels the host `hostname` in current releases, `Hostname` in older ones.
HOSTNAME_LABELS = ("hostname", "Hostname")


class DcgmCompatibleCollector(Collector):
    """A prometheus-client collector reading the GPUs at each scrape, in dcgm-exporter's names.

    Stateless between scrapes: every series comes from this scrape's reading, so a MIG
    device destroyed or a process exited leaves no stale series behind.
    """

    def __init__(self, reader: GpuReader, hostname: str | None = None, hostname_label: str = "hostname"):
        if hostname_label not in HOSTNAME_LABELS:
            raise ValueError(f"hostname_label must be one of {HOSTNAME_LABELS}, not {hostname_label!r}")
        self.reader = reader
        self.hostname = hostname or socket.gethostname()
        self.hostname_label = hostname_label

    def _labels(self, reading: GpuReading) -> dict[str, str]:
        labels = {"gpu": str(reading.index), "UUID": reading.uuid, "device": f"nvidia{reading.index}",
                  "modelName": reading.name, self.hostname_label: self.hostname}
        if reading.gpu_instance_id is not None:
            labels["GPU_I_PROFILE"] = reading.mig_profile or ""
            labels["GPU_I_ID"] = str(reading.gpu_instance_id)
        return labels

    def collect(self) -> Iterable[GaugeMetricFamily]:
        readings = self.reader.read()
        for metric, help_text, attribute in DCGM_METRICS:
            family = GaugeMetricFamily(metric, help_text)
            for r in readings:
                value = getattr(r, attribute)
                if value is not None:
                    family.add_sample(metric, self._labels(r), float(value))
            yield family
        memory = GaugeMetricFamily(PROCESS_MEMORY_METRIC,
                                   "GPU memory used by one process (compute), from NVML.")
        sm = GaugeMetricFamily(PROCESS_SM_METRIC,
                               "One process's share of the device's SM time since the previous scrape "
                               "(0-1), from NVML's process utilisation samples.")
        for r in readings:
            for process in r.processes:
                labels = {**self._labels(r), "pid": str(process.pid)}
                if process.memory_used_bytes is not None:
                    memory.add_sample(PROCESS_MEMORY_METRIC, labels, process.memory_used_bytes)
                if process.sm_utilization_percent is not None:
                    sm.add_sample(PROCESS_SM_METRIC, labels, process.sm_utilization_percent / 100.0)
        yield memory
        yield sm
