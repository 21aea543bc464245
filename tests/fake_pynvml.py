"""A stand-in for the `pynvml` module (NVIDIA's library, not ours): GPUs, MIG devices and processes in memory.

It answers the calls `monitor.sources.nvml.NvmlReader` makes, with pynvml's own exception
classes and constants, and behaves as NVML documents: a reading a device does not give
raises NVMLError_NotSupported, an empty MIG slot NVMLError_NotFound, process utilisation
with no sample newer than the timestamp passed NVMLError_NotFound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml

MIB = 1024 * 1024


@dataclass
class FakeProcess:
    pid: int
    used_bytes: int | None  # None: NVML cannot tell (pynvml gives usedGpuMemory None)


@dataclass
class FakeSample:
    pid: int
    time_us: int
    sm_percent: int


@dataclass
class FakeDevice:
    """A GPU or a MIG device; None for a reading means NVML answers NotSupported."""

    uuid: str
    name: str
    total_mib: int | None
    used_mib: int | None
    utilization: int | None = None
    power_mw: int | None = None
    temperature: int | None = None
    sm_clock: int | None = None
    mig_slots: list[FakeDevice | None] | None = None  # None: no MIG support; a list: MIG enabled
    gpu_instance_id: int | None = None
    slices: int = 0
    processes: list[FakeProcess] | None = field(default_factory=list)  # None: NoPermission (a container)
    samples: list[FakeSample] | None = field(default_factory=list)  # None: NotSupported
    # pynvml raises NVMLError(NVML_SUCCESS) when NVML answers "no samples" with success and a count of 0
    no_samples_as_success: bool = False
    broken: pynvml.NVMLError | None = None  # raised by every call on this device

    def check(self) -> None:
        if self.broken is not None:
            raise self.broken


def _supported(value):
    if value is None:
        raise pynvml.NVMLError_NotSupported()
    return value


class FakeNvml:
    """Module-like: `FakeNvml(devices)` is passed where `pynvml` would be."""

    def __init__(self, devices: list[FakeDevice], init_error: pynvml.NVMLError | None = None):
        self.devices = devices
        self.init_error = init_error
        self.initialised = False
        # (device UUID, timestamp) of each nvmlDeviceGetProcessUtilization call
        self.utilization_queries: list[tuple[str, int]] = []

    def __getattr__(self, name: str):
        # Exceptions and constants are pynvml's own, so `except nvml.NVMLError_X` means what it does for real.
        if name.startswith(("NVMLError", "NVML_")):
            return getattr(pynvml, name)
        raise AttributeError(name)

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeDevice:
        device = self.devices[index]
        device.check()
        return device

    def nvmlDeviceGetUUID(self, device: FakeDevice) -> str:
        device.check()
        return device.uuid

    def nvmlDeviceGetName(self, device: FakeDevice) -> str:
        device.check()
        return device.name

    def nvmlDeviceGetMemoryInfo(self, device: FakeDevice):
        device.check()
        total, used = _supported(device.total_mib), _supported(device.used_mib)
        return SimpleNamespace(total=total * MIB, used=used * MIB, free=(total - used) * MIB)

    def nvmlDeviceGetUtilizationRates(self, device: FakeDevice):
        device.check()
        return SimpleNamespace(gpu=_supported(device.utilization), memory=0)

    def nvmlDeviceGetPowerUsage(self, device: FakeDevice) -> int:
        device.check()
        return _supported(device.power_mw)

    def nvmlDeviceGetTemperature(self, device: FakeDevice, sensor: int) -> int:
        device.check()
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return _supported(device.temperature)

    def nvmlDeviceGetClockInfo(self, device: FakeDevice, clock: int) -> int:
        device.check()
        assert clock == pynvml.NVML_CLOCK_SM
        return _supported(device.sm_clock)

    def nvmlDeviceGetMigMode(self, device: FakeDevice) -> list[int]:
        device.check()
        _supported(device.mig_slots)
        return [pynvml.NVML_DEVICE_MIG_ENABLE, pynvml.NVML_DEVICE_MIG_ENABLE]

    def nvmlDeviceGetMaxMigDeviceCount(self, device: FakeDevice) -> int:
        return len(_supported(device.mig_slots))

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device: FakeDevice, slot: int) -> FakeDevice:
        mig = _supported(device.mig_slots)[slot]
        if mig is None:
            raise pynvml.NVMLError_NotFound()
        return mig

    def nvmlDeviceGetGpuInstanceId(self, mig: FakeDevice) -> int:
        return _supported(mig.gpu_instance_id)

    def nvmlDeviceGetAttributes(self, mig: FakeDevice):
        _supported(mig.gpu_instance_id)
        return SimpleNamespace(gpuInstanceSliceCount=mig.slices, computeInstanceSliceCount=mig.slices,
                               memorySizeMB=mig.total_mib)

    def nvmlDeviceGetComputeRunningProcesses(self, device: FakeDevice):
        device.check()
        if device.processes is None:
            raise pynvml.NVMLError_NoPermission()
        return [SimpleNamespace(pid=p.pid, usedGpuMemory=p.used_bytes, gpuInstanceId=0xFFFFFFFF,
                                computeInstanceId=0xFFFFFFFF) for p in device.processes]

    def nvmlDeviceGetProcessUtilization(self, device: FakeDevice, since_us: int):
        device.check()
        self.utilization_queries.append((device.uuid, since_us))
        newer = [s for s in _supported(device.samples) if s.time_us > since_us]
        if not newer:
            if device.no_samples_as_success:
                raise pynvml.NVMLError(pynvml.NVML_SUCCESS)
            raise pynvml.NVMLError_NotFound()
        return [SimpleNamespace(pid=s.pid, timeStamp=s.time_us, smUtil=s.sm_percent, memUtil=0, encUtil=0,
                                decUtil=0) for s in newer]
