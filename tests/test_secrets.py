"""Secrets: refused when malformed, never echoed in any spelling, in logs, errors or JSON output."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from monitor.log_format import JsonFormatter, PlainFormatter, configure_logging
from monitor.secrets import SecretError, read_secret, redact
from monitor.simulate.local_prometheus import free_port

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.mark.parametrize("value, what", [
    ("line-one\nline-two", "a newline"), ("token\r", "a carriage return"), ("to\tken", "a tab"),
    ("tok\x7fen", "control character U+007F"), ("tok\x1ben", "control character U+001B"),
], ids=["an embedded newline", "a trailing carriage return", "a tab", "a DEL", "an escape character"])
def test_an_environment_secret_with_a_control_character_is_refused_by_name_never_by_value(value, what,
                                                                                           monkeypatch):
    monkeypatch.setenv("MONITOR_TEST_SECRET", value)
    with pytest.raises(SecretError) as caught:
        read_secret("MONITOR_TEST_SECRET", None, "slack token")
    message = str(caught.value)
    assert message.startswith("slack token: environment variable MONITOR_TEST_SECRET contains " + what)
    assert value not in message and repr(value)[1:-1] not in message and "line-one" not in message


def test_a_file_secret_with_an_embedded_newline_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("xoxb-first-half\nxoxb-second-half\n")
    with pytest.raises(SecretError) as caught:
        read_secret(None, str(path), "slack token")
    assert str(caught.value) == (f"slack token: secret file {path} contains a newline inside its value; "
                                 f"a secret must be one line of printable text")


def test_a_file_secrets_trailing_newline_is_stripped(tmp_path):
    path = tmp_path / "token"
    path.write_text("xoxb-file-secret-value\n")
    assert read_secret(None, str(path), "slack token") == "xoxb-file-secret-value"


def test_a_file_secret_that_is_not_utf8_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "token"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(SecretError, match=rf"^slack token: secret file {path} is not UTF-8 text$"):
        read_secret(None, str(path), "slack token")


SECRET = 'xoxb-"quoted"\\back/slash é+plus'


@pytest.fixture
def secret(monkeypatch) -> str:
    monkeypatch.setenv("MONITOR_TEST_SPELLINGS", SECRET)
    return read_secret("MONITOR_TEST_SPELLINGS", None, "token")


@pytest.mark.parametrize("spelling", [
    lambda s: s, lambda s: json.dumps(s)[1:-1], lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    lambda s: repr(s)[1:-1], lambda s: quote(s, safe=""), lambda s: quote(s),
    lambda s: s.encode("unicode_escape").decode(),
], ids=["raw", "JSON-escaped", "JSON-escaped keeping non-ASCII", "repr-escaped", "percent-encoded",
        "percent-encoded keeping slashes", "unicode-escaped"])
def test_every_spelling_of_a_secret_is_redacted(secret, spelling):
    text = f"before {spelling(secret)} after"
    assert redact(text) == "before [redacted] after"


@pytest.mark.parametrize("text, expected", [
    ("GET http://admin:hunter22@prom.internal:9090/api/v1/query failed",
     "GET http://[redacted]@prom.internal:9090/api/v1/query failed"),
    ("https://token@hooks.example.com/x", "https://[redacted]@hooks.example.com/x"),
    ("s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/key", "s3://[redacted]@bucket/key"),
    ("mail me at ops@example.com about http://prom:9090/", "mail me at ops@example.com about http://prom:9090/"),
], ids=["user and password in an http URL", "a token as the user", "any scheme",
        "an e-mail address and a URL without userinfo are left alone"])
def test_url_userinfo_is_redacted_whatever_its_source(text, expected):
    assert redact(text) == expected


def test_third_party_log_lines_are_redacted_and_their_info_noise_quieted(secret):
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    try:
        urllib3 = logging.getLogger("urllib3.connectionpool")
        urllib3.info("Starting new HTTPS connection (1): slack.com:443")
        # Its retry warnings are quieted (the query's own error says it); errors still come through.
        urllib3.warning("Retrying (Retry(total=1)) after connection broken: /api/v1/query")
        urllib3.error("Failed after %r to http://u:pw-in-url@host/ with token %s", secret, secret)
        logging.getLogger("apscheduler.scheduler").info("Added job 'cycle' to job store 'default'")
        logging.getLogger("slack_sdk.web.base_client").warning("token=%s", json.dumps(secret))
    finally:
        configure_logging("WARNING", "plain")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["logger"] for e in lines] == ["urllib3.connectionpool", "slack_sdk.web.base_client"]
    text = stream.getvalue()
    assert SECRET not in text and json.dumps(SECRET)[1:-1] not in text and repr(SECRET)[1:-1] not in text
    assert "pw-in-url" not in text and lines[0]["msg"].count("[redacted]") == 3


def test_a_traceback_quoting_a_secret_is_redacted_in_plain_and_json_logs(secret):
    try:
        raise ValueError(f"bad header value {secret!r}")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    for formatter in (PlainFormatter(), JsonFormatter()):
        line = formatter.format(record)
        assert "Traceback" in line and "[redacted]" in line
        assert SECRET not in line and repr(SECRET)[1:-1] not in line and json.dumps(SECRET)[1:-1] not in line


# -- failing runs, as a user would see them -------------------------------------------------------

URL_PASSWORD = "Pa55w0rd-in-the-URL"
TOKEN = 'bearer-"tok\\en"-value'


def _forms(value: str) -> list[str]:
    return [value, json.dumps(value)[1:-1], repr(value)[1:-1], quote(value, safe="")]


@pytest.fixture
def failing_config(tmp_path) -> Path:
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "a.yaml").write_text((FIXTURES / "sloth" / "getting-started.yml").read_text())
    path = tmp_path / "monitor.yaml"
    # A Prometheus that refuses connections: every query fails, so errors quote the URL.
    path.write_text(f"prometheus:\n  url: http://monitor:{URL_PASSWORD}@127.0.0.1:{free_port()}\n"
                    f"  bearer_token_env: MONITOR_TEST_BEARER\nstate:\n  path: {tmp_path / 'state.db'}\n"
                    f"slos:\n  - slos/*.yaml\n")
    return path


@pytest.mark.parametrize("argv", [
    ["slo", "--json"], ["slo"], ["cost", "--json"], ["cost"], ["run", "--once", "--json"], ["run", "--once"],
    ["report", "--week", "2026-W47"],
], ids=["slo --json", "slo table", "cost --json", "cost table", "run --once --json", "run --once",
        "report"])
def test_no_secret_in_any_form_leaves_a_failing_run(argv, failing_config, tmp_path):
    result = subprocess.run([sys.executable, "-m", "monitor", "--log-level", "DEBUG", *argv,
                             "--config", str(failing_config)], capture_output=True, text=True, timeout=180,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), "MONITOR_TEST_BEARER": TOKEN})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    text = result.stdout + result.stderr
    assert "127.0.0.1" in text  # the failure was reported, with its URL
    for form in _forms(URL_PASSWORD) + _forms(TOKEN):
        assert form not in text, f"{form!r} leaked:\n{text[-3000:]}"


def test_no_secret_in_any_form_in_the_daemons_json_log_of_failing_cycles(failing_config, tmp_path):
    import signal
    import time

    config = failing_config.read_text().replace("state:", f"http:\n  listen: 127.0.0.1:{free_port()}\n"
                                                          f"schedule:\n  evaluate_every: 1s\nstate:")
    failing_config.write_text(config)
    log_path = tmp_path / "daemon.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(failing_config),
                                    "--log-format", "json", "--log-level", "DEBUG"], stdout=log,
                                   stderr=subprocess.STDOUT, cwd=tmp_path,
                                   env={**os.environ, "PYTHONPATH": str(ROOT), "MONITOR_TEST_BEARER": TOKEN})
    try:
        deadline = time.monotonic() + 120
        while "cycle failed" not in log_path.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    text = log_path.read_text()
    entries = [json.loads(line) for line in text.splitlines()]  # every line is JSON: no stray tracebacks
    assert any("cycle failed" in e["msg"] and "127.0.0.1" in e["msg"] for e in entries)
    for form in _forms(URL_PASSWORD) + _forms(TOKEN):
        assert form not in text, f"{form!r} leaked"
