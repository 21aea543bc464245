"""Broken `group_by` / `max_groups` in Sloth files: `monitor check` refuses each with one line at its line."""

from __future__ import annotations

import pytest

from tests.hostile import Outcome, assert_handled, run_in_process

SLOTH = """\
version: prometheus/v1
service: gateway
slos:
  - name: availability
    objective: 99.9
    group_by: [endpoint]
    max_groups: 20
    sli:
      events:
        error_query: sum by (endpoint) (rate(requests_total{code=~"5.."}[{{.window}}]))
        total_query: sum by (endpoint) (rate(requests_total[{{.window}}]))
"""

ROWS = [
    pytest.param("group_by: [endpoint]", "group_by: [service]", "'service' is a label monitor sets",
                 id="grouping by a label monitor sets on SLO signals is refused"),
    pytest.param("group_by: [endpoint]", "group_by: [slo_id]", "'slo_id' is a label monitor sets",
                 id="grouping by slo_id is refused"),
    pytest.param("group_by: [endpoint]", "group_by: [endpoint, endpoint]", "'endpoint' is listed twice",
                 id="a label listed twice is refused"),
    pytest.param("group_by: [endpoint]", "group_by: ['end-point']", "is not a Prometheus label name",
                 id="a label name PromQL cannot group by is refused"),
    pytest.param("group_by: [endpoint]", "group_by: [__name__]", "is not a Prometheus label name",
                 id="a reserved double-underscore label is refused"),
    pytest.param("group_by: [endpoint]", "group_by: endpoint", "group_by",
                 id="group_by given a string instead of a list is refused"),
    pytest.param("max_groups: 20", "max_groups: 0", "max_groups: must be at least 1",
                 id="max_groups of zero is refused"),
    pytest.param("max_groups: 20", "max_groups: many", "max_groups",
                 id="max_groups that is not a number is refused"),
]


@pytest.mark.parametrize("old, new, message", ROWS)
def test_a_broken_grouping_is_one_line_naming_file_and_line(tmp_path, capsys, old, new, message):
    (tmp_path / "slo.yaml").write_text(SLOTH.replace(old, new))
    (tmp_path / "monitor.yaml").write_text("slos: [slo.yaml]\n")
    outcome = run_in_process(["check", "--config", tmp_path / "monitor.yaml"], capsys)
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert lines and lines[-1] == "1 problem(s) found", outcome.stderr  # check's summary after its one problem
    line = 6 if old.startswith("group_by") else 7
    assert_handled(Outcome(outcome.code, outcome.stdout, lines[0], outcome.seconds), f"{tmp_path}/slo.yaml:{line}: ")
    assert message in outcome.stderr, outcome.stderr


def test_a_valid_grouping_passes_the_check(tmp_path, capsys):
    (tmp_path / "slo.yaml").write_text(SLOTH)
    (tmp_path / "monitor.yaml").write_text("slos: [slo.yaml]\n")
    outcome = run_in_process(["check", "--config", tmp_path / "monitor.yaml"], capsys)
    assert outcome.code == 0, outcome.stderr
