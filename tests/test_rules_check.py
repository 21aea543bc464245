"""`monitor check` rejects every broken rule file variant with FILE:LINE, and accepts the defaults."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from monitor.alerting.rule_spec import load_rule_file
from monitor.cli import main
from monitor.simulate.local_prometheus import free_port

REPO = Path(__file__).resolve().parent.parent

GOOD_RULE = """\
version: monitor/v1
groups:
  - name: g
    rules:
      - alert: Fine
        condition: slo_page == 1
        labels: {severity: page}
"""


def write_config(tmp_path: Path, url: str, rules: str = "rules/*.yaml") -> Path:
    config = tmp_path / "monitor.yaml"
    config.write_text(f"prometheus: {{url: '{url}', timeout: 5s}}\nrules: ['{rules}']\n")
    return config


def check(config: Path, capsys) -> tuple[int, str, str]:
    code = main(["check", "--config", str(config)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BROKEN = [
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: slo_pages == 1
                labels: {severity: page}
        """, 6, "unknown signal 'slo_pages'", id="an unknown signal"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                labels: {severity: page}
                expr: sum(rate(http_requests_total[5m])
        """, 7, "invalid PromQL", id="bad PromQL"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: slo_page == 1
                for: 5 minutes
                labels: {severity: page}
        """, 7, "invalid duration '5 minutes'", id="a bad duration"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - condition: slo_page == 1
                labels: {severity: page}
        """, 5, "missing required field 'groups[0].rules[0].alert'", id="a missing alert name"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: slo_page == 1
        """, 5, "needs a 'severity' label", id="a missing severity label"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                labels: {severity: page}
        """, 5, "needs exactly one of 'condition'", id="neither condition nor expr"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: slo_page == 1
                expr: up == 0
                labels: {severity: page}
        """, 5, "needs exactly one of 'condition'", id="both condition and expr"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: slo_page == 1
                labels: {severity: page}
                severity: page
        """, 8, "unknown field 'groups[0].rules[0].severity'", id="an unknown field"),
    pytest.param("""\
        version: prometheus/v1
        groups: []
        """, 1, "must be one of 'monitor/v1'", id="a wrong version"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: slo_page == 1 and
                labels: {severity: page}
        """, 6, "column 18: expected a signal name, found the end", id="a condition that does not parse"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: drift_psi{colum="prediction"} > 0.2
                labels: {severity: page}
        """, 6, "signal 'drift_psi' has no label 'colum'", id="a label the signal does not carry"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: slo_page == 1
                labels: {severity: page}
                annotations:
                  summary: "{{ $labels.service }"
        """, 9, "invalid template", id="an annotation template that does not compile"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: slo_page == 1
                labels: {severity: page}
                actions: [rollback]
        """, 8, "rollback needs alerts labelled with model and version", id="a rollback on alerts without a version"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: slo_page == 1
                labels: {severity: page}
                actions: [restart]
        """, 8, "must be one of 'rollback'", id="an unknown action"),
    pytest.param("""\
        version: monitor/v1
        groups:
          - name: g
            rules:
              - alert: X
                condition: slo_page == 1
                for: -5m
                labels: {severity: page}
        """, 7, "invalid duration", id="a negative duration"),
]


@pytest.mark.prometheus
@pytest.mark.parametrize("text, line, message", BROKEN)
def test_broken_rule_files_are_rejected_with_file_and_line(tmp_path, prom, text, line, message, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    path = rules / "broken.yaml"
    path.write_text(textwrap.dedent(text))
    code, _out, err = check(write_config(tmp_path, prom.url), capsys)
    assert code == 1
    problems = [p for p in err.splitlines() if p.startswith(str(path))]
    assert any(p.startswith(f"{path}:{line}: ") and message in p for p in problems), err


def test_a_duplicate_alert_name_across_files_names_both_places(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(GOOD_RULE)
    (rules / "b.yaml").write_text(GOOD_RULE)
    code, _out, err = check(write_config(tmp_path, f"http://127.0.0.1:{free_port()}"), capsys)
    assert code == 1
    assert f"{rules / 'b.yaml'}:5: duplicate alert name 'Fine' (first defined at {rules / 'a.yaml'}:5)" in err


def test_every_problem_in_a_file_is_reported_at_once(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "two.yaml").write_text(GOOD_RULE.replace("slo_page", "nope") + """\
      - alert: Other
        condition: slo_ticket == 1
        for: soon
        labels: {severity: ticket}
""")
    code, _out, err = check(write_config(tmp_path, f"http://127.0.0.1:{free_port()}"), capsys)
    assert code == 1
    assert f"{rules / 'two.yaml'}:6:" in err and f"{rules / 'two.yaml'}:10:" in err


@pytest.mark.prometheus
def test_the_default_rules_pass_check_with_the_fleet_config(fleet_config_path, capsys):
    code, out, err = check(fleet_config_path, capsys)
    assert code == 0, err
    assert "10 alert rules" in out and "1 rule PromQL expressions syntax-checked" in out
    assert "14 SLO queries syntax-checked" in out  # 7 SLOs, an error and a total query each


def test_the_rules_directory_holds_the_packaged_default_rules():
    shipped = sorted(p.name for p in (REPO / "monitor" / "default_rules").glob("*.yaml"))
    assert sorted(p.name for p in (REPO / "rules").glob("*.yaml")) == shipped
    for name in shipped:
        assert (REPO / "rules" / name).read_text() == (REPO / "monitor" / "default_rules" / name).read_text()
        assert load_rule_file(REPO / "rules" / name)


BAD_PROMQL = GOOD_RULE.replace("condition: slo_page == 1", "expr: rate(x[5m]")


@pytest.mark.parametrize("server", ["stopped", "absent"], ids=["with Prometheus stopped", "with no Prometheus"])
def test_bad_promql_is_caught_offline_without_the_server_or_promtool(tmp_path, capsys, monkeypatch, server):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(BAD_PROMQL)
    # Neither the server nor promtool is asked: the parser is the authority.
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    url = f"http://127.0.0.1:{free_port()}" if server == "stopped" else "http://no-such-host.invalid:9090"
    code, _out, err = check(write_config(tmp_path, url), capsys)
    assert code == 1
    assert f"{rules / 'r.yaml'}:6: groups[g].rules[Fine].expr: invalid PromQL: unclosed left parenthesis" in err
    assert os.environ["PATH"].endswith("empty-bin")


def test_a_type_error_is_a_syntax_error_offline(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(GOOD_RULE.replace("condition: slo_page == 1", "expr: rate(sum(x)) > 0"))
    code, _out, err = check(write_config(tmp_path, f"http://127.0.0.1:{free_port()}"), capsys)
    assert code == 1
    assert (f"{rules / 'r.yaml'}:6: groups[g].rules[Fine].expr: invalid PromQL: expected type matrix in call "
            f"to function 'rate', got vector") in err


# -- where alerts go: warnings, never failures ----------------------------------------

ROLLBACK_RULE = """\
version: monitor/v1
groups:
  - name: d
    rules:
      - alert: Drifted
        condition: drift_detected == 1
        labels: {severity: page, team: ml}
        actions: [rollback]
"""


def write_outputs_config(tmp_path: Path, outputs: str, rules: str = GOOD_RULE) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yaml").write_text(rules)
    config = tmp_path / "monitor.yaml"
    config.write_text(f"prometheus: {{url: 'http://127.0.0.1:{free_port()}'}}\nrules: ['rules/*.yaml']\n"
                      + textwrap.dedent(outputs))
    return config


SLACK = """\
outputs:
  slack: {channel: '#alerts', token_env: SLACK_TOKEN}
"""
ALERTMANAGER = """\
outputs:
  alertmanager: {url: 'http://alertmanager.example:9093'}
"""


@pytest.mark.parametrize("outputs", ["", """\
    outputs:
      webhooks:
        - {name: deploys, url: 'https://deploy.example/hook', secret_env: HOOK_SECRET}
    """], ids=["no outputs at all", "only a webhook, which receives rollback events only"])
def test_check_warns_when_alerts_have_nowhere_to_go_and_still_exits_0(tmp_path, capsys, outputs):
    config = write_outputs_config(tmp_path, outputs)
    code, out, err = check(config, capsys)
    assert code == 0 and out.startswith("ok: ")
    [warning] = err.splitlines()
    assert warning.startswith(f"{config}: warning: alerts have nowhere to go: no outputs.slack or "
                              f"outputs.alertmanager is configured")
    assert warning.endswith("so 1 alert rules only show in `monitor alerts`")
    assert ("webhooks receive only rollback events" in warning) == bool(outputs)


@pytest.mark.parametrize("outputs", [SLACK, ALERTMANAGER], ids=["Slack", "Alertmanager"])
def test_check_is_quiet_when_alerts_have_somewhere_to_go(tmp_path, capsys, outputs):
    code, out, err = check(write_outputs_config(tmp_path, outputs), capsys)
    assert code == 0 and out.startswith("ok: ") and err == ""


@pytest.mark.parametrize("webhooks, warned", [
    ("[]", "no webhook subscribes to rollback.requested"),
    ("[{name: ranker, url: 'https://d.example/h', secret_env: S, match: {team: search}}]",
     "no webhook subscribed to rollback.requested has a `match` its labels can satisfy"),
    ("[{name: ranker, url: 'https://d.example/h', secret_env: S, match: {cluster: eu}}]",
     "no webhook subscribed to rollback.requested has a `match` its labels can satisfy"),
    ("[{name: ranker, url: 'https://d.example/h', secret_env: S, events: [ping]}]",
     "no webhook subscribes to rollback.requested"),
    ("[{name: ranker, url: 'https://d.example/h', secret_env: S, match: {team: ml, model: ranker}}]", None),
    ("[{name: all, url: 'https://d.example/h', secret_env: S}]", None),
], ids=["no webhook", "a match on a rule label with another value", "a match on a label no alert carries",
        "a webhook not subscribed to rollback requests", "a match on the rule's label and an instance label",
        "a webhook without a match"])
def test_check_warns_about_a_rollback_rule_no_webhook_would_receive(tmp_path, capsys, webhooks, warned):
    config = write_outputs_config(tmp_path, SLACK + f"  webhooks: {webhooks}\n", rules=ROLLBACK_RULE)
    code, out, err = check(config, capsys)
    assert code == 0 and out.startswith("ok: ")
    if warned is None:
        assert err == ""
    else:
        assert err.splitlines() == [f"{tmp_path / 'rules' / 'r.yaml'}:5: warning: rule Drifted requests rollbacks "
                                    f"but {warned}"]


def test_check_exits_2_on_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check", "--no-such-flag"])
    assert exited.value.code == 2
    assert "--no-such-flag" in capsys.readouterr().err


# -- model selectors and SLO queries: parsed offline as well ---------------------------

@pytest.mark.parametrize("model, line, message", [
    # A histogram and a version label are refused as selectors and label names at config load
    # (monitor.promql_selectors), before any query is built from them.
    ("{name: m, inferences: 'x_total', predictions: 'rate(score_bucket[5m])'}", 3,
     "models[0].predictions: 'rate(score_bucket[5m])' is not a PromQL series selector"),
    ("{name: m, inferences: 'x_total', cpu: 'sum(rate(cpu_seconds[5m])'}", 3,
     "models[m].cpu: 'sum(rate(cpu_seconds[5m])' does not make valid PromQL (unclosed left parenthesis)"),
    ("{name: m, inferences: 'x_total', memory: 'rate(sum(bytes))'}", 3,
     "models[m].memory: 'rate(sum(bytes))' does not make valid PromQL (expected type matrix in call to "
     "function 'rate', got vector)"),
    ("{name: m, inferences: 'x_total', version_label: 'version) or vector(1'}", 3,
     "models[0].version_label: 'version) or vector(1' is not a valid label name"),
], ids=["a prediction histogram that is not a selector", "an unclosed cpu expression",
        "a memory expression with a type error", "a version label that would inject PromQL"])
def test_model_selectors_are_parsed_offline_as_they_will_be_queried(tmp_path, capsys, model, line, message):
    config = tmp_path / "monitor.yaml"
    config.write_text(f"prometheus: {{url: 'http://127.0.0.1:{free_port()}'}}\nmodels:\n  - {model}\n")
    code, _out, err = check(config, capsys)
    assert code == 1
    assert any(p.startswith(f"{config}:{line}: {message}") for p in err.splitlines()), err


def test_an_slo_query_with_a_type_error_is_refused_offline_at_its_spec(tmp_path, capsys):
    (tmp_path / "slo.yaml").write_text(textwrap.dedent("""\
        version: prometheus/v1
        service: s
        slos:
          - name: ok
            objective: 99
            sli: {raw: {error_ratio_query: 'rate(errors[{{.window}}])'}}
          - name: typo
            objective: 99
            sli:
              events:
                error_query: rate(sum(errors)[{{.window}}])
                total_query: sum(rate(requests[{{.window}}]))
        """))
    config = tmp_path / "monitor.yaml"
    config.write_text(f"prometheus: {{url: 'http://127.0.0.1:{free_port()}'}}\nslos: [slo.yaml]\n")
    code, _out, err = check(config, capsys)
    assert code == 1
    assert err.splitlines() == [
        f"{tmp_path / 'slo.yaml'}:7: SLO 's-typo': error query: invalid PromQL: ranges only allowed for vector "
        f"selectors: rate(sum(errors)[{{{{.window}}}}])", "1 problem(s) found"]


# A route tree with a receiver that notifies (pager) and a null receiver (blackhole, as
# Alertmanager allows); rules whose alerts can only land on blackhole are warned about.
ROUTED = """\
outputs:
  receivers:
    - name: pager
      webhook_configs: [{url: 'https://hooks.example/pager'}]
    - name: blackhole
  route:
    receiver: pager
    routes:
      - {matchers: [severity=info], receiver: blackhole}
      - {matchers: [severity=page], receiver: blackhole, continue: true}
      - {matchers: [severity=page], receiver: pager}
      - {matchers: ['model=~"shadow-.*"'], receiver: blackhole}
      - {matchers: ['team=""', severity=ticket], receiver: blackhole}
"""


def one_rule(rule: str) -> str:
    return "version: monitor/v1\ngroups:\n  - name: g\n    rules:\n      - " + rule.replace("\n", "\n        ") + "\n"


@pytest.mark.parametrize("outputs, rule, warned", [
    (ROUTED, "alert: Noise\nexpr: up == 0\nlabels: {severity: info}", ["blackhole"]),
    (ROUTED, "alert: Paged\ncondition: slo_page == 1\nlabels: {severity: page}", None),
    (ROUTED, "alert: Drift\ncondition: drift_share > 0.5\nlabels: {severity: warning}", None),
    (ROUTED, "alert: SloTicket\ncondition: slo_ticket == 1\nlabels: {severity: ticket}", ["blackhole"]),
    (ROUTED, "alert: TeamTicket\ncondition: slo_ticket == 1\nlabels: {severity: ticket, team: ml}", None),
    (ROUTED, "alert: StaleTicket\nexpr: time() - last_success > 3600\nlabels: {severity: ticket}", None),
    (ROUTED.replace("      - {matchers: [severity=page], receiver: pager}\n", ""),
     "alert: Paged\ncondition: slo_page == 1\nlabels: {severity: page}", ["blackhole"]),
    (ROUTED.replace("receiver: pager\n    routes", "receiver: blackhole\n    routes"),
     "alert: Anything\nexpr: up == 0\nlabels: {severity: warning}", ["blackhole"]),
    (ROUTED + "  alertmanager: {url: 'http://alertmanager.example:9093'}\n",
     "alert: Noise\nexpr: up == 0\nlabels: {severity: info}", None),
], ids=["a rule whose severity routes only to the null receiver is warned about",
        "continue takes a page on from the null receiver to one that notifies",
        "a model matcher on a signal that carries model may or may not match: no warning",
        "a team matcher on a signal without that label sees the empty string and matches",
        "the rule's own team label keeps it off the null receiver",
        "a PromQL rule's instances may carry a team label: no warning",
        "a route that continues but is the only match is where the alert ends, not its parent",
        "a null root receiver takes what no child takes",
        "Alertmanager receives every alert: no warning"])
def test_check_warns_when_a_rules_alerts_reach_only_receivers_with_no_integrations(tmp_path, capsys, outputs,
                                                                                    rule, warned):
    code, out, err = check(write_outputs_config(tmp_path, outputs, rules=one_rule(rule)), capsys)
    assert code == 0 and out.startswith("ok: "), err
    if warned is None:
        assert err == ""
    else:
        name = rule.split("\n")[0].removeprefix("alert: ")
        assert err.splitlines() == [f"{tmp_path / 'rules' / 'r.yaml'}:5: warning: rule {name}'s alerts reach only "
                                    f"receivers with no integrations ({', '.join(warned)}): nobody is notified"]
