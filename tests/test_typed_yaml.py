"""typed_yaml keeps nothing of a file once its dataclasses are built.

The daemon re-reads its SLO and rule files every cycle: anything kept per file is a
leak the size of those files per cycle (benchmarks/cycle_bench.py watches RSS).
"""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass

from monitor.typed_yaml import YamlFile


@dataclass(frozen=True)
class Objective:
    name: str
    objective: float
    labels: dict[str, str]


def test_building_from_a_file_keeps_no_reference_to_its_nodes(tmp_path):
    path = tmp_path / "objective.yaml"
    path.write_text("name: availability\nobjective: 99.9\nlabels:\n  team: ml-platform\n", encoding="utf-8")
    doc = YamlFile(path)
    built = doc.build(Objective, doc.documents[0], "")
    assert built == Objective("availability", 99.9, {"team": "ml-platform"})

    nodes = [weakref.ref(node) for key, value in doc.documents[0].value for node in (key, value)]
    del doc
    gc.collect()
    assert [ref() for ref in nodes if ref() is not None] == []
