"""Local GPUs through NVML (`nvidia-ml-py`), read as dcgm-exporter would export them.

For hosts without dcgm-exporter: `monitor gpu-exporter` serves these readings under
dcgm-exporter's metric names and labels, so the cost queries work unchanged. Units
follow dcgm-exporter: framebuffer in MiB, power in W, temperature in C, clocks in MHz.

A host with no NVIDIA driver or no NVML library is not an error for the daemon: it
has no local GPUs (`local_gpus`). The exporter, whose only job is GPUs, exits.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.errors import MonitorError

MIB = 1024 * 1024


class NvmlUnavailable(MonitorError):
    """NVML cannot be used on this host: no NVIDIA driver loaded or no NVML library."""


@dataclass(frozen=True)
class GpuReading:
    """One GPU's state at one instant; None where the GPU does not support the reading."""

    index: int
    uuid: str
    name: str
    utilization_percent: float | None
    framebuffer_used_mib: float | None
    framebuffer_free_mib: float | None
    power_w: float | None
    temperature_c: float | None
    sm_clock_mhz: float | None


class GpuReader(Protocol):
    def read(self) -> list[GpuReading]:
        """The current readings of every GPU."""


def _unavailable_reason(exc: Exception) -> str | None:
    """A one-line explanation when `exc` means "no NVML here", else None."""
    import pynvml

    if isinstance(exc, pynvml.NVMLError_LibraryNotFound):
        return "NVML library not found (libnvidia-ml.so): no NVIDIA driver installed on this host"
    if isinstance(exc, pynvml.NVMLError_DriverNotLoaded):
        return "NVIDIA driver not loaded: no usable GPU on this host"
    return None


class NvmlReader:
    """Reads every local GPU through NVML; construct once, `read()` per scrape, `close()` at exit."""

    def __init__(self) -> None:
        import pynvml

        self._nvml = pynvml
        self._lock = threading.Lock()
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            reason = _unavailable_reason(exc)
            raise NvmlUnavailable(reason or f"NVML failed to initialise: {exc}") from None

    def read(self) -> list[GpuReading]:
        nvml = self._nvml
        with self._lock:  # NVML handles are shared; scrapes may overlap
            readings = []
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = self._optional(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
                readings.append(GpuReading(
                    index=index,
                    uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    utilization_percent=self._optional(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                    framebuffer_used_mib=memory.used / MIB if memory is not None else None,
                    framebuffer_free_mib=memory.free / MIB if memory is not None else None,
                    # NVML reports milliwatts.
                    power_w=self._optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0),
                    temperature_c=self._optional(
                        lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
                    sm_clock_mhz=self._optional(lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
                ))
            return readings

    def _optional(self, read: Callable[[], object]):
        # Some GPUs (and MIG instances, vGPUs) do not support every reading: leave it
        # out of the scrape rather than fail the whole GPU or report a fake 0.
        try:
            return read()
        except self._nvml.NVMLError_NotSupported:
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
DCGM_METRICS = (
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "utilization_percent"),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "framebuffer_used_mib"),
    ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", "framebuffer_free_mib"),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "power_w"),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "temperature_c"),
    ("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", "sm_clock_mhz"),
)
DCGM_LABELS = ("gpu", "UUID", "device", "modelName", "Hostname")


class DcgmCompatibleCollector(Collector):
    """A prometheus-client collector reading the GPUs at each scrape, in dcgm-exporter's names."""

    def __init__(self, reader: GpuReader, hostname: str | None = None):
        self.reader = reader
        # dcgm-exporter's older `Hostname` spelling, which our cost queries accept
        # alongside the newer `hostname`.
        self.hostname = hostname or socket.gethostname()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        readings = self.reader.read()
        for metric, help_text, attribute in DCGM_METRICS:
            family = GaugeMetricFamily(metric, help_text, labels=DCGM_LABELS)
            for r in readings:
                value = getattr(r, attribute)
                if value is not None:
                    family.add_metric([str(r.index), r.uuid, f"nvidia{r.index}", r.name, self.hostname],
                                      float(value))
            yield family
