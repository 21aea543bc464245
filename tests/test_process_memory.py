"""The daemon's malloc settings (monitor.process_memory) do what they say, on this glibc host."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# In a child of its own, so the test process's own heap does not blur the figures: a thread
# fills the heap with 2 KiB blocks (malloc's, not Python's small-object arenas), keeps one in
# 32 and frees the rest. The holes stay resident until malloc_trim hands them back.
_SCRIPT = r"""
import json, sys, threading
from monitor import process_memory

def rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

limited = process_memory.limit_malloc_arenas()
kept = []
def fill():
    blocks = [bytes(2048) + bytes([i % 256]) for i in range(60_000)]
    kept.extend(blocks[::32])
worker = threading.Thread(target=fill)
worker.start()
worker.join()
before = rss_mib()
released = process_memory.release_freed_memory()
print(json.dumps({"limited": limited, "released": released, "before": before, "after": rss_mib(),
                  "kept": len(kept)}))
"""


def test_freed_memory_goes_back_to_the_system_after_a_cycle_and_arenas_are_bounded():
    out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=60,
                         check=True)
    figures = json.loads(out.stdout)
    assert figures["limited"] and figures["released"]
    # About 117 MiB was filled and 1/32 of it kept: trimming returns most of the rest.
    assert figures["before"] - figures["after"] > 60, figures
