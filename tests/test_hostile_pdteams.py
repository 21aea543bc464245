"""Broken PagerDuty and Teams receiver configs: `monitor check` says what is wrong in one line with FILE:LINE."""

from __future__ import annotations

import textwrap

import pytest

from tests.hostile import Outcome, assert_handled, run_in_process

HEAD = """\
state:
  path: state.db
outputs:
  route:
    receiver: oncall
  receivers:
    - name: oncall
"""


def config(integration: str, body: str) -> str:
    """One integration entry under the receiver, `body` (YAML lines) as its keys."""
    keys = textwrap.indent(textwrap.dedent(body).strip(), " " * 10)[10:]
    return HEAD + f"      {integration}:\n        - {keys}\n"


ROWS = [
    ("pagerduty_configs", "source: host-a", 9, "routing_key_env",
     "a PagerDuty config without a routing key names routing_key_env"),
    ("pagerduty_configs", "routing_key_env: PD\nrouting_key_file: /run/secrets/pd", 10, "not both",
     "a PagerDuty routing key from both a variable and a file is refused"),
    ("pagerduty_configs", "routing_key_env: PD\nurl: ftp://events.example/v2/enqueue", 10, "url",
     "a PagerDuty URL that is not http(s) is refused"),
    ("pagerduty_configs", "routing_key_env: PD\nclient_url: not a url", 10, "client_url",
     "a PagerDuty client_url that is not a URL is refused"),
    ("pagerduty_configs", "routing_key_env: PD\ntimeout: 0s", 10, "timeout",
     "a PagerDuty timeout of zero is refused"),
    ("pagerduty_configs", "routing_key_env: PD\nrouting_kye: typo", 10, "routing_kye",
     "a misspelt PagerDuty key is refused"),
    ("msteams_configs", "send_resolved: true", 9, "webhook_url_env",
     "a Teams config without a webhook URL names webhook_url_env"),
    ("msteams_configs", "webhook_url_env: T\nwebhook_url_file: /run/secrets/teams", 10, "not both",
     "a Teams webhook URL from both a variable and a file is refused"),
    ("msteams_configs", "webhook_url_env: T\nsend_resolved: maybe", 10, "send_resolved",
     "a Teams send_resolved that is not a boolean is refused"),
]


def _without_check_summary(outcome: Outcome) -> Outcome:
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert lines and lines[-1] == "1 problem(s) found", outcome.stderr
    return Outcome(outcome.code, outcome.stdout, "\n".join(lines[:-1]), outcome.seconds)


@pytest.mark.parametrize("integration, body, line, words", [r[:4] for r in ROWS], ids=[r[4] for r in ROWS])
def test_a_broken_integration_config_is_one_line_naming_file_and_line(tmp_path, capsys, integration, body, line,
                                                                       words):
    path = tmp_path / "monitor.yaml"
    path.write_text(config(integration, body))
    outcome = run_in_process(["check", "--config", path], capsys)
    assert_handled(_without_check_summary(outcome), f"{path}:{line}: ")
    assert words in outcome.stderr


def test_a_valid_pagerduty_and_teams_receiver_passes_check(tmp_path, capsys):
    path = tmp_path / "monitor.yaml"
    path.write_text(HEAD + "      pagerduty_configs:\n        - routing_key_env: PD\n"
                           "      msteams_configs:\n        - webhook_url_file: /run/secrets/teams\n")
    outcome = run_in_process(["check", "--config", path], capsys)
    assert outcome.code == 0, outcome.stderr
