"""Broken `placement` and MIG price config: one clear line naming monitor.yaml and the line.

Rows follow tests/test_hostile_config.py (same runner and expectations).
"""

from __future__ import annotations

import pytest

from tests.hostile import assert_handled, run_in_process
from tests.test_hostile_config import _materialise, _without_check_summary, config, model

GPUS = "'{namespace=\"ranker\"}'"

ROWS = [
    pytest.param(config(model(gpus=GPUS, placement="{}"), "monitor.yaml:5"),
                 id="a placement with neither a pod label nor a pod pattern is refused"),
    pytest.param(config(model(gpus=GPUS, placement="{pod_label: version, pod_pattern: '^r-(?P<version>v1)'}"),
                        "monitor.yaml:5"), id="a placement with both a pod label and a pod pattern is refused"),
    pytest.param(config(model(gpus=GPUS, placement="{pod_pattern: '^ranker-(v[0-9]+)-'}"), "monitor.yaml:5"),
                 id="a pod pattern without a group named version is refused"),
    pytest.param(config(model(gpus=GPUS, placement="{pod_pattern: '^ranker-(?P<version>v[0-9+)-'}"),
                        "monitor.yaml:5"), id="a pod pattern that is not a regular expression is refused"),
    pytest.param(config(model(gpus=GPUS, placement="{pod_label: ''}"), "monitor.yaml:5"),
                 id="an empty pod label is refused"),
    pytest.param(config(model(placement="{pod_label: version}"), "monitor.yaml:4"),
                 id="a placement on a model without gpus is refused"),
    pytest.param(config(model(gpus=GPUS, placement="{pod_label: version, pod_regex: x}"), "monitor.yaml:5"),
                 id="an unknown placement key is refused"),
    pytest.param(config("cost:\n  pricing:\n    mig_profiles: {1g.10gb: -0.4}\n", "monitor.yaml:3"),
                 id="a negative MIG profile price is refused"),
    pytest.param(config("cost:\n  pricing:\n    mig_profiles: {1g.10gb: .nan}\n", "monitor.yaml:3"),
                 id="a NaN MIG profile price is refused"),
]


@pytest.mark.parametrize("row", ROWS)
def test_a_broken_placement_is_one_line_naming_its_file_and_line(tmp_path, capsys, row):
    outcome = run_in_process(_materialise(row, tmp_path), capsys)
    assert_handled(_without_check_summary(outcome), f"{tmp_path}/{row.where}")
