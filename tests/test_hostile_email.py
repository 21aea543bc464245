"""Broken email receiver configs: `monitor check` answers one line naming the file and line of the field."""

from __future__ import annotations

import pytest

from tests.hostile import Outcome, assert_handled, run_in_process


def receiver_config(email_yaml: str) -> str:
    return ("outputs:\n"
            "  receivers:\n"
            "    - name: finance\n"
            "      email_configs:\n"
            "        - to: [finance@example.com]\n"
            + "".join(f"          {line}\n" for line in email_yaml.splitlines()))


ROWS = [
    pytest.param("smarthost: smtp.example.com", 6, id="a smarthost without a port is refused"),
    pytest.param("smarthost: 'smtp.example.com:70000'", 6, id="a smarthost port out of range is refused"),
    pytest.param("smarthost: ':25'", 6, id="a smarthost without a host is refused"),
    pytest.param("auth_password_env: SMTP_PASSWORD", 5, id="a password without auth_username is refused"),
    pytest.param("auth_username: monitor\nauth_password_env: A\nauth_password_file: /run/secrets/b", 8,
                 id="a password from both an env var and a file is refused"),
    pytest.param("timeout: 0s", 6, id="a zero timeout is refused"),
    pytest.param("require_tls: maybe", 6, id="require_tls that is not a boolean is refused"),
    pytest.param("starttls: true", 6, id="an unknown key (a typo) is refused"),
]


def _without_check_summary(outcome: Outcome) -> Outcome:
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert lines and lines[-1] == "1 problem(s) found", outcome.stderr
    return Outcome(outcome.code, outcome.stdout, "\n".join(lines[:-1]), outcome.seconds)


@pytest.mark.parametrize("email_yaml, line", ROWS)
def test_a_broken_email_config_is_one_line_naming_its_file_and_line(tmp_path, capsys, email_yaml, line):
    path = tmp_path / "monitor.yaml"
    path.write_text(receiver_config(email_yaml))
    outcome = run_in_process(["check", "--config", path], capsys)
    assert_handled(_without_check_summary(outcome), f"{path}:{line}")


def test_an_empty_recipient_list_is_refused(tmp_path, capsys):
    path = tmp_path / "monitor.yaml"
    path.write_text(receiver_config("").replace("to: [finance@example.com]", "to: []"))
    outcome = run_in_process(["check", "--config", path], capsys)
    assert_handled(_without_check_summary(outcome), f"{path}:5")


def test_announcing_to_an_unknown_receiver_is_refused(tmp_path, capsys):
    path = tmp_path / "monitor.yaml"
    path.write_text(receiver_config("") + "reports:\n  announce: [finance, leadership]\n")
    outcome = run_in_process(["check", "--config", path], capsys)
    assert_handled(_without_check_summary(outcome), f"{path}:7")
    assert "'leadership'" in outcome.stderr and "'finance'" not in outcome.stderr
