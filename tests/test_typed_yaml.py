"""typed_yaml keeps nothing of a file once its dataclasses are built.

The daemon re-reads its SLO and rule files every cycle: anything kept per file is a
leak the size of those files per cycle (benchmarks/cycle_bench.py watches RSS).
"""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass

import pytest

from monitor.typed_yaml import INVALID, YamlFile


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


@dataclass(frozen=True)
class Typed:
    text: str
    count: int = 0
    enabled: bool = False
    ratio: float = 0.0


@pytest.mark.parametrize("scalar", ["true", "false", "2022-12-30T00:00:00Z", "2022-01-01 12:00:00", "0.250", "1e3",
                                    "0x1F", "007", ".inf", "yes"])
def test_a_text_field_takes_any_scalar_as_the_text_written(tmp_path, scalar):
    # As Go's YAML decoding into a string does (Sloth's `generated: true`, OpenSLO's unquoted startTime).
    path = tmp_path / "typed.yaml"
    path.write_text(f"text: {scalar}\n", encoding="utf-8")
    doc = YamlFile(path)
    assert doc.build(Typed, doc.documents[0], "") == Typed(text=scalar)
    assert doc.problems == []


@pytest.mark.parametrize("body, message", [
    pytest.param("text: ~\n", "text: expected a string, got None", id="null is no text"),
    pytest.param("text: [a]\n", "text: expected a string, got a list", id="a list is no text"),
    pytest.param("text: a\ncount: true\n", "count: expected an integer, got True", id="a boolean is no integer"),
    pytest.param("text: a\ncount: '3'\n", "count: expected an integer, got '3'", id="quoted text is no integer"),
    pytest.param("text: a\nenabled: 'true'\n", "enabled: expected true or false, got 'true'",
                 id="quoted text is no boolean"),
    pytest.param("text: a\nratio: 2022-12-30\n", "ratio: expected a number, got '2022-12-30'",
                 id="a date is no number"),
])
def test_fields_that_are_not_text_keep_refusing_text(tmp_path, body, message):
    path = tmp_path / "typed.yaml"
    path.write_text(body, encoding="utf-8")
    doc = YamlFile(path)
    assert doc.build(Typed, doc.documents[0], "") is INVALID
    assert [p.message for p in doc.problems] == [message]
