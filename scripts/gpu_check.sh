#!/usr/bin/env bash
# `monitor gpu-exporter` on this host's real GPUs, for the pull request's record.
#
# Installs nothing. Run from anywhere on a GPU machine with a Python that has monitor's
# dependencies and test extra (pytest, requests), and promtool on PATH:
#     scripts/gpu_check.sh                      # uses python3
#     PYTHON=.venv/bin/python scripts/gpu_check.sh
# It prints the host and driver, runs the real-GPU test (a skip, which means no driver,
# fails this script), then serves /metrics for 10 s and prints one scrape.
# Exit 0 only when the test passed and the scrape answered.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's monitor, not an installed one

echo "== host"
date -u +%Y-%m-%dT%H:%M:%SZ
hostname
git rev-parse --short HEAD 2>/dev/null || true
nvidia-smi --query-gpu=index,name,uuid,driver_version,mig.mode.current --format=csv 2>&1 \
    || echo "(nvidia-smi not available)"
nvidia-smi -L 2>&1 || true

echo "== real-GPU test"
test_out="$(mktemp)"
banner="$(mktemp)"
exporter=""
cleanup() {
    if [ -n "$exporter" ]; then kill "$exporter" 2>/dev/null || true; fi
    rm -f "$test_out" "$banner"
}
trap cleanup EXIT
"$PY" -m pytest -q -rs -p no:cacheprovider \
    "tests/test_nvml_exporter.py::test_the_exporter_on_this_hosts_real_gpus" 2>&1 | tee "$test_out"
if ! grep -q "1 passed" "$test_out"; then
    echo "gpu_check: the real-GPU test did not pass (see above)" >&2
    exit 1
fi

echo "== monitor gpu-exporter, 10 s"
"$PY" -m monitor gpu-exporter --port 0 --address 127.0.0.1 >"$banner" 2>&1 &
exporter=$!
for _ in $(seq 50); do grep -q "/metrics" "$banner" && break; sleep 0.2; done
cat "$banner"
url="$(grep -o 'http://[^ ]*/metrics' "$banner" || true)"
if [ -z "$url" ]; then
    echo "gpu_check: the exporter did not start (see above)" >&2
    exit 1
fi
sleep 10
"$PY" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$url"
kill "$exporter"
wait "$exporter" 2>/dev/null || true
exporter=""
echo "== gpu_check: passed"
