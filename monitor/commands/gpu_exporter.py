"""`monitor gpu-exporter`: serve local GPUs on /metrics in dcgm-exporter's names, from NVML."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from prometheus_client import CollectorRegistry, start_http_server

from monitor.commands.arguments import port_number
from monitor.sources.nvml import HOSTNAME_LABELS, DcgmCompatibleCollector, NvmlReader, NvmlUnavailable


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gpu-exporter", help="serve local GPU metrics (dcgm-exporter names) from NVML",
        description="For hosts without dcgm-exporter: serve DCGM_FI_DEV_GPU_UTIL, _FB_USED, _FB_FREE, "
                    "_POWER_USAGE, _GPU_TEMP and _SM_CLOCK with dcgm-exporter's labels on /metrics, read "
                    "from NVML at each scrape; MIG devices with GPU_I_PROFILE and GPU_I_ID; per-process "
                    "GPU memory and SM utilisation with a pid label. Exits 1 with one line when there "
                    "is no GPU or driver.")
    parser.add_argument("--port", type=port_number, default=9400,
                        help="port to listen on (default 9400, dcgm-exporter's)")
    parser.add_argument("--address", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--hostname", help="host label value (default: this host's name)")
    parser.add_argument("--hostname-label", choices=HOSTNAME_LABELS, default="hostname",
                        help="the host label's name: hostname (current dcgm-exporter, the default) or "
                             "Hostname (older releases, for dashboards that still select on it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        reader = NvmlReader()
    except NvmlUnavailable as exc:
        print(f"monitor gpu-exporter: {exc}", file=sys.stderr)
        return 1
    registry = CollectorRegistry()
    registry.register(DcgmCompatibleCollector(reader, args.hostname, args.hostname_label))
    server, thread = start_http_server(args.port, addr=args.address, registry=registry)
    host, port = server.server_address[:2]
    readings = reader.read()
    gpus = len({r.index for r in readings})
    mig_devices = sum(r.gpu_instance_id is not None for r in readings)
    print(f"monitor gpu-exporter: serving {gpus} GPU(s), {mig_devices} MIG device(s) on "
          f"http://{host}:{port}/metrics", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        server.shutdown()
        reader.close()
    return 0
