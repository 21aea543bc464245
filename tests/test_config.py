"""The config loader: the documented example loads, and every kind of mistake is reported as FILE:LINE."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import config_path_from, load_config
from monitor.errors import ConfigError
from monitor.simulate.writers import fleet_config, write_slo_specs

EXAMPLE = """\
prometheus:
  url: http://127.0.0.1:9090
  timeout: 30s
state:
  path: monitor-state.db
slo_period: 30d
slos: [slos/*.yaml]
models:
  - name: ranker
    inferences: 'nv_inference_count{model="ranker"}'
    version_label: version
    gpus: '{namespace="ranker"}'
    predictions: 'model_prediction_score_bucket{model="ranker"}'
    drift: {reference: 7d, current: 1h}
cost:
  pricing: {GPU: 2.50, CPU: 0.031611, RAM: 0.004237}
outputs:
  slack: {channel: "#ml-alerts", token_env: SLACK_BOT_TOKEN}
  webhooks:
    - name: deployer
      url: https://deploy.example.com/hooks/monitor
      secret_env: DEPLOYER_WEBHOOK_SECRET
      events: [rollback.requested, rollback.cancelled]
reports:
  dir: reports-out
schedule:
  evaluate_every: 1m
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    write_slo_specs(tmp_path / "slos")
    return tmp_path


def write(directory: Path, text: str) -> Path:
    path = directory / "monitor.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_documented_example_loads_with_typed_values(config_dir):
    config = load_config(write(config_dir, EXAMPLE))
    assert config.prometheus.timeout == timedelta(seconds=30)
    assert config.slo_period == timedelta(days=30)
    assert config.models[0].drift.reference == timedelta(days=7)
    assert config.cost.pricing.GPU == 2.5
    assert config.outputs.webhooks[0].events == ["rollback.requested", "rollback.cancelled"]
    assert len(config.slo_files) == len(list((config_dir / "slos").glob("*.yaml")))
    # Relative paths resolve against the config file's directory, not the working directory.
    assert config.resolve_path(config.state.path) == config_dir / "monitor-state.db"


BROKEN = [
    pytest.param("prometheus:\n  url: [unclosed\n", 2, "invalid YAML", id="invalid YAML names its line"),
    pytest.param(EXAMPLE.replace("  timeout: 30s", "  timeout: 30s\n  timout: 5s"), 4, "unknown field 'prometheus.timout'",
                 id="an unknown key is an error naming the field"),
    pytest.param(EXAMPLE.replace("GPU: 2.50", "GPU: cheap"), 16, "cost.pricing.GPU: expected a number",
                 id="a wrong type names the field"),
    pytest.param(EXAMPLE.replace("  evaluate_every: 1m", "  evaluate_every: 1m\n  evaluate_every: 2m"), 28,
                 "duplicate key 'evaluate_every'", id="a duplicate key names both lines"),
    pytest.param(EXAMPLE.replace("slos: [slos/*.yaml]", "slos: [missing/*.yaml]"), 7,
                 "no file matches 'missing/*.yaml'", id="a missing referenced file is reported"),
    pytest.param(EXAMPLE.replace("token_env: SLACK_BOT_TOKEN", "token: xoxb-not-allowed"), 18,
                 "secrets are never inline", id="an inline secret is refused and the right key suggested"),
    pytest.param(EXAMPLE.replace("timeout: 30s", "timeout: soon"), 3, "invalid duration 'soon'",
                 id="a bad duration is reported"),
    pytest.param(EXAMPLE.replace("    inferences: 'nv_inference_count{model=\"ranker\"}'\n", ""), 9,
                 "needs 'inferences'", id="a model without an inference counter or preset is rejected"),
    pytest.param(EXAMPLE.replace("drift: {reference: 7d, current: 1h}", "drift: {reference: 1h, current: 7d}"), 14,
                 "current window must be shorter", id="a current drift window longer than the reference is rejected"),
    pytest.param(EXAMPLE.replace("  dir: reports-out", "  dir: reports-out\n  weekly: someday 8am"), 26,
                 "expected '<weekday> HH:MM'", id="a malformed weekly report schedule is rejected"),
]


@pytest.mark.parametrize("text, line, message", BROKEN)
def test_broken_config_is_reported_as_file_line_message(config_dir, capsys, text, line, message):
    path = write(config_dir, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert any(p.line == line and message in p.message for p in raised.value.problems), raised.value.problems
    # `monitor check` prints the same problems as FILE:LINE: message and exits 1.
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:{line}: " in err and message in err


def test_every_problem_is_reported_not_just_the_first(config_dir):
    text = EXAMPLE.replace("timeout: 30s", "timeout: soon").replace("GPU: 2.50", "GPU: cheap")
    with pytest.raises(ConfigError) as raised:
        load_config(write(config_dir, text))
    assert {p.line for p in raised.value.problems} >= {3, 16}


def test_check_accepts_the_simulated_fleet_config(fleet_config_path, capsys):
    assert main(["check", "--config", str(fleet_config_path)]) == 0
    out = capsys.readouterr().out
    models = len(fleet_config("x")["models"])
    assert out.startswith("ok: ") and f"{models} models" in out


def test_a_missing_config_file_is_one_clear_error(tmp_path, capsys):
    assert main(["check", "--config", str(tmp_path / "nope.yaml")]) == 1
    assert "config file not found" in capsys.readouterr().err


def test_config_path_precedence(monkeypatch):
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    assert config_path_from(None) == "monitor.yaml"
    monkeypatch.setenv("MONITOR_CONFIG", "/etc/monitor/monitor.yaml")
    assert config_path_from(None) == "/etc/monitor/monitor.yaml"
    assert config_path_from("other.yaml") == "other.yaml"


def test_every_yaml_example_in_the_readme_loads(tmp_path):
    """The README's config and rule file examples are what users copy: they must stay valid."""
    import re

    from monitor.alerting.rule_spec import load_rule_file
    from monitor.slo.loading import load_spec_files

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    examples = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert len(examples) >= 2
    write_slo_specs(tmp_path / "slos")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "none.yaml").write_text("version: monitor/v1\ngroups: []\n")
    for i, example in enumerate(examples):
        path = tmp_path / f"example-{i}.yaml"
        path.write_text(example)
        if example.startswith("version: monitor/v1"):
            assert load_rule_file(path)
        elif example.startswith("version: prometheus/v1"):
            assert load_spec_files([path])
        else:
            load_config(path)


@pytest.mark.parametrize("text, seconds", [
    ("0", 0), ("30s", 30), ("500ms", 0.5), ("1h30m", 5400), ("28d", 28 * 86400), ("1w", 7 * 86400),
    ("1y2w3d4h5m6s7ms", 365 * 86400 + 14 * 86400 + 3 * 86400 + 4 * 3600 + 5 * 60 + 6.007), ("10y", 3650 * 86400),
])
def test_durations_promtool_accepts_parse_to_the_same_length(text, seconds):
    from monitor.durations import parse_duration

    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1h1h", "5m1h", "1ms1s", "1.5h", "-1h", "1x", "h", "", "3651d"])
def test_durations_promtool_refuses_are_refused(text):
    from monitor.durations import parse_duration

    with pytest.raises(ValueError):
        parse_duration(text)


def test_valid_selectors_urls_and_listen_addresses_load(tmp_path):
    path = write(tmp_path, """\
        prometheus: {url: 'http://user:pw@[::1]:9090/prom/'}
        models:
          - name: ranker
            inferences: 'nv_inference_count{model=~"ranker|ranker-canary", version!="", zone=`eu`, team=''ml'',}'
            version_label: model_version
            gpus: 'DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-1", namespace="a\\"b"}'
            cpu: 'sum(rate(container_cpu_usage_seconds_total{pod=~"ranker-.*"}[5m]))'
            memory: '{namespace="ranker"}'
            predictions: 'model_prediction_score_bucket'
        http: {listen: ':9464'}
        outputs:
          alertmanager: {url: 'https://alertmanager.internal.example:9093'}
        """)
    config = load_config(path)
    assert config.models[0].version_label == "model_version"
    for listen in ("[::1]:0", "localhost:9464", "0.0.0.0:9464"):
        load_config(write(tmp_path, f"http: {{listen: '{listen}'}}\n"))


def test_a_url_with_credentials_is_never_echoed_in_a_problem(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, "prometheus: {url: 'http://admin:hunter2@localhost:99999/'}\n"))
    assert "hunter2" not in str(raised.value) and "***@localhost" in str(raised.value)
