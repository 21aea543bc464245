"""Hostile `outputs.dashboard_url` templates: `monitor check` refuses each with one line naming the file and line."""

from __future__ import annotations

import pytest

from tests.hostile import assert_handled, run_in_process
from tests.test_hostile_config import _without_check_summary


@pytest.mark.parametrize("template", [
    "https://grafana.example/d/x?var-service={{ labels.service",
    "https://grafana.example/{{ 9**9**9 }}",
    "https://grafana.example/{{ 'a' * 10**9 }}",
    "https://grafana.example/{% set x = 1 %}",
    "https://grafana.example/{{ labels.service.encode() }}",
    "javascript:alert({{ labels.service }})",
], ids=["an unclosed expression is refused", "an integer bomb is refused", "a string bomb is refused",
        "a statement the sandbox forbids is refused", "a method call outside the sandbox is refused",
        "a template that renders to a non-http URL is refused"])
def test_a_hostile_dashboard_template_is_refused_at_its_line(tmp_path, capsys, template):
    config = tmp_path / "monitor.yaml"
    config.write_text("state: {path: state.db}\noutputs:\n  report_url: https://reports.example/\n"
                      f"  dashboard_url: {template!r}\n")
    outcome = run_in_process(["check", "--config", config], capsys)
    assert_handled(_without_check_summary(outcome), f"{config}:4")
    assert "dashboard_url" in outcome.stderr
