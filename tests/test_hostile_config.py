"""Hostile and broken input to the files we read and the times we are given: one clear line each.

Every row is a file (or flag) a new user could write by mistake or an attacker on
purpose: YAML bombs and tags, values that type-check but mean nothing (NaN
prices, `slo_period: 0s`, a PromQL injection through `version_label`), template
bombs, times far from now. Each must end as `tests/hostile.py` says: exit 1 or 2,
one line naming the file and line (or the flag), no traceback, within the bound.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.alerting.events import AlertGroupEvent
from monitor.report.charts import daily_cost_chart, distribution_chart
from monitor.report.model import DailyCost, PredictionDistribution
from monitor.typed_yaml import MAX_FILE_BYTES
from tests.hostile import Outcome, assert_handled, run_in_process

SLOTH = """\
version: prometheus/v1
service: checkout
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total[{{.window}}]))
"""

OPENSLO = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: availability
spec:
  service: checkout
  budgetingMethod: Occurrences
  timeWindow:
    - duration: 28d
      isRolling: true
  objectives:
    - target: 0.999
  indicator:
    metadata: {name: availability}
    spec:
      ratioMetric:
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(ok_total[{{.window}}]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(all_total[{{.window}}]))'}}}
"""

RULES = """\
version: monitor/v1
groups:
  - name: g
    rules:
      - alert: BurnPage
        condition: slo_page == 1
        labels: {severity: page}
        annotations: {summary: "SUMMARY"}
"""

# "Billion laughs": nine lines, each nine aliases of the line above: 9^9 values when expanded.
BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]\n" for name, prev in zip("bcdefghi", "abcdefgh"))


def model(**fields: str) -> str:
    """A config with one model; `fields` replace or add its keys (each on its own line from line 3)."""
    keys = {"name": "ranker", "inferences": "'nv_inference_count{model=\"ranker\"}'", **fields}
    return "models:\n" + "".join(f"  {'-' if i == 0 else ' '} {k}: {v}\n" for i, (k, v) in enumerate(keys.items()))


def with_slos(spec: str) -> dict[str, str]:
    return {"monitor.yaml": "slos: [slo.yaml]\n", "slo.yaml": spec}


def with_rules(rules: str) -> dict[str, str]:
    return {"monitor.yaml": "rules: [rules.yaml]\n", "rules.yaml": rules}


def template(text: str) -> dict[str, str]:
    return with_rules(RULES.replace("SUMMARY", text.replace('"', '\\"')))


@dataclass(frozen=True)
class Row:
    files: dict[str, str | bytes]
    where: str                                   # "monitor.yaml:3", "monitor.yaml" or "--at"
    argv: list[str] = field(default_factory=lambda: ["check", "--config", "{dir}/monitor.yaml"])


def config(text: str | bytes, where: str) -> Row:
    return Row({"monitor.yaml": text}, where)


CONFIG_ROWS = [
    # -- untrusted text is bounded -------------------------------------------------
    pytest.param(config(BOMB, "monitor.yaml:6"),
                 id="a billion-laughs alias bomb is refused at the alias that crosses the bound"),
    pytest.param(config("a: &a [*a]\n", "monitor.yaml:1"), id="an alias that contains itself is refused"),
    pytest.param(config("slos: " + "[" * 5000 + "]" * 5000 + "\n", "monitor.yaml:1"),
                 id="five thousand nested lists are refused, not a recursion error"),
    pytest.param(config("x: " + "{a: " * 100 + "1" + "}" * 100 + "\n", "monitor.yaml:1"),
                 id="a hundred nested mappings are refused"),
    pytest.param(config("a0: &a0 1\n" + "".join(f"a{i}: &a{i} {'[' * 10}*a{i - 1}{']' * 10}\n" for i in range(1, 8)),
                        "monitor.yaml:8"), id="aliases stacking shallow lists into a deep one are refused"),
    pytest.param(config('prometheus: !!python/object/apply:os.system ["touch /tmp/pwned"]\n', "monitor.yaml:1"),
                 id="a python object tag is refused"),
    pytest.param(config("slo_period: !env SLO_PERIOD\n", "monitor.yaml:1"), id="a custom tag is refused"),
    pytest.param(config("slo_period: !!binary aGVsbG8=\n", "monitor.yaml:1"), id="a binary tag is refused"),
    pytest.param(config("base: &b {url: 'http://127.0.0.1:9090'}\nprometheus:\n  <<: *b\n", "monitor.yaml:3"),
                 id="a merge key is refused clearly"),
    pytest.param(config("slo_period: 30d\n---\nslo_period: 1d\n", "monitor.yaml:3"),
                 id="a second YAML document in the config is refused"),
    pytest.param(config(b"slo_period: 30d\nreports: {dir: \xff\xfe}\n", "monitor.yaml: not UTF-8 text (byte 31)"),
                 id="a file that is not UTF-8 names the byte"),
    pytest.param(config("# padding\n" * (MAX_FILE_BYTES // 10 + 1), "monitor.yaml: file is larger"),
                 id="a file over the size bound is refused before it is parsed"),
    pytest.param(config("slo_period: 30d\nreports: {dir: \"a\x00b\"}\n", "monitor.yaml:2"),
                 id="a NUL character names its line"),
    pytest.param(config("# ééééé\nslo_period: 30d\nreports: {dir: \"a\x07b\"}\n", "monitor.yaml:3"),
                 id="a control character after multi-byte text names its line"),
    pytest.param(config("slos: 'slos/*.yaml'\n", "monitor.yaml:1"), id="slos given a string instead of a list"),
    pytest.param(config("slos:\n  - {path: slo.yaml}\n", "monitor.yaml:2"), id="slos given a list of mappings"),
    pytest.param(config("rules: ['']\n", "monitor.yaml:1"), id="an empty rule file pattern"),
    # -- durations -------------------------------------------------------------------
    pytest.param(config("slo_period: 99999999999999999999d\n", "monitor.yaml:1"),
                 id="an overflowing duration is refused, not an OverflowError"),
    pytest.param(config("slo_period: 1h1h\n", "monitor.yaml:1"),
                 id="a duration repeating a unit is refused as promtool does"),
    pytest.param(config("slo_period: 5m1h\n", "monitor.yaml:1"), id="a duration with units out of order is refused"),
    pytest.param(config("slo_period: 11y\n", "monitor.yaml:1"), id="a duration over ten years is refused"),
    pytest.param(config("slo_period: 0s\n", "monitor.yaml:1"), id="a zero SLO period is refused"),
    pytest.param(config("schedule:\n  evaluate_every: 0s\n", "monitor.yaml:2"), id="evaluating every 0s is refused"),
    pytest.param(config("prometheus:\n  timeout: 0s\n", "monitor.yaml:2"), id="a zero Prometheus timeout is refused"),
    pytest.param(config("outputs:\n  alertmanager: {url: 'http://am:9093', timeout: 0s}\n", "monitor.yaml:2"),
                 id="a zero Alertmanager timeout is refused"),
    pytest.param(config(model(drift="{reference: 7d, current: 0s}"), "monitor.yaml:4"),
                 id="a zero current drift window is refused"),
    pytest.param(config("outputs:\n  expire_after: 1d1d\n", "monitor.yaml:2"), id="a malformed expiry is refused"),
    # -- numbers ---------------------------------------------------------------------
    pytest.param(config("cost:\n  pricing:\n    GPU: .nan\n", "monitor.yaml:3"), id="a NaN GPU price is refused"),
    pytest.param(config("cost:\n  pricing:\n    CPU: .inf\n", "monitor.yaml:3"), id="an infinite CPU price is refused"),
    pytest.param(config("cost:\n  pricing:\n    RAM: -0.01\n", "monitor.yaml:3"), id="a negative RAM price is refused"),
    pytest.param(config("cost:\n  pricing:\n    gpu_models: {H100: .nan}\n", "monitor.yaml:3"),
                 id="a NaN price for a GPU model is refused"),
    pytest.param(config(model(drift="{thresholds: {psi: -0.2}}"), "monitor.yaml:4"),
                 id="a negative PSI threshold is refused"),
    pytest.param(config(model(drift="{thresholds: {js: .nan}}"), "monitor.yaml:4"), id="a NaN JS threshold is refused"),
    pytest.param(config(model(drift="{columns: {age: {wasserstein_norm: -1}}}"), "monitor.yaml:4"),
                 id="a negative per-column Wasserstein threshold is refused"),
    pytest.param(config(model(drift="{dataset_drift_share: 1.5}"), "monitor.yaml:4"),
                 id="a dataset drift share above one is refused"),
    pytest.param(config(model(drift="{min_samples: -5}"), "monitor.yaml:4"), id="a negative sample count is refused"),
    pytest.param(config("slo_min_events: -1\n", "monitor.yaml:1"), id="a negative event count is refused"),
    pytest.param(config("slo_min_events: .nan\n", "monitor.yaml:1"), id="a NaN event count is refused"),
    # -- names, labels and selectors ---------------------------------------------------
    pytest.param(config(model(name="''"), "monitor.yaml:2"), id="an empty model name is refused"),
    pytest.param(config(model(version_label="'version) or vector(1'"), "monitor.yaml:4"),
                 id="a PromQL injection through version_label is refused"),
    pytest.param(config(model(version_label="'1version'"), "monitor.yaml:4"),
                 id="a version label that is not a label name is refused"),
    pytest.param(config(model(gpus="'{namespace=\"ranker\"'"), "monitor.yaml:4"),
                 id="a gpus selector without its closing brace is refused"),
    pytest.param(config(model(gpus="'{namespace==\"ranker\"}'"), "monitor.yaml:4"),
                 id="a gpus matcher with a doubled operator is refused"),
    pytest.param(config(model(gpus="'{namespace=ranker}'"), "monitor.yaml:4"),
                 id="an unquoted matcher value is refused"),
    pytest.param(config(model(cpu="'{1pod=\"x\"}'"), "monitor.yaml:4"),
                 id="a cpu matcher with an invalid label name is refused"),
    pytest.param(config(model(memory="'{pod=\"x\"} or vector(1)'"), "monitor.yaml:4"),
                 id="a memory selector with an injected expression is refused"),
    pytest.param(config(model(inferences="'sum(rate(x[5m]))'"), "monitor.yaml:3"),
                 id="an inference counter that is an expression, not a selector, is refused"),
    pytest.param(config(model(predictions="'score_bucket{model=\"r\"} or vector(1)'"), "monitor.yaml:4"),
                 id="a predictions selector with an injected expression is refused"),
    pytest.param(config(model(predictions="'score_bucket{model=\"r\\q\"}'"), "monitor.yaml:4"),
                 id="a matcher value with an unknown escape is refused"),
    pytest.param(config("alerting:\n  group_by: [alertname, 'model-name']\n", "monitor.yaml:2"),
                 id="grouping by something that is not a label name is refused"),
    pytest.param(config("alerting:\n  inhibit:\n    - {source_match: {'a b': x}, target_match: {b: y}}\n",
                        "monitor.yaml:3"), id="an inhibit rule matching an invalid label name is refused"),
    pytest.param(config("reports:\n  dir: ''\n", "monitor.yaml:2"), id="an empty reports directory is refused"),
    pytest.param(config("state:\n  path: ' '\n", "monitor.yaml:2"), id="a blank state path is refused"),
    # -- URLs and listen addresses ------------------------------------------------------
    pytest.param(config("outputs:\n  webhooks:\n    - {name: deploy, url: 'https:///hook', secret_env: S}\n",
                        "monitor.yaml:3"), id="a webhook URL with no host is refused"),
    pytest.param(config("outputs:\n  webhooks:\n    - {name: deploy, url: 'ftp://deploy/hook', secret_env: S}\n",
                        "monitor.yaml:3"), id="a webhook URL that is not http is refused"),
    pytest.param(config("outputs:\n  webhooks:\n    - {name: '', url: 'https://deploy/hook', secret_env: S}\n",
                        "monitor.yaml:3"), id="a webhook with an empty name is refused"),
    pytest.param(config("prometheus:\n  url: 'http://localhost:99999'\n", "monitor.yaml:2"),
                 id="a Prometheus URL with a port out of range is refused"),
    pytest.param(config("prometheus:\n  url: 'http://[::1'\n", "monitor.yaml:2"),
                 id="a Prometheus URL with an unclosed IPv6 bracket is refused"),
    pytest.param(config("outputs:\n  alertmanager: {url: 'http://'}\n", "monitor.yaml:2"),
                 id="an Alertmanager URL with no host is refused"),
    pytest.param(config("outputs:\n  slack: {webhook_url_env: HOOK, base_url: 'slack.com/api/'}\n", "monitor.yaml:2"),
                 id="a Slack base URL without a scheme is refused"),
    pytest.param(config("outputs:\n  report_url: 'http://reports example.com/'\n", "monitor.yaml:2"),
                 id="a report URL with a space is refused"),
    pytest.param(config("prometheus:\n  headers: {X-Scope-OrgID: \"a\\r\\nInjected: 1\"}\n", "monitor.yaml:2"),
                 id="a header value with a line break is refused"),
    pytest.param(config("http:\n  listen: nonsense\n", "monitor.yaml:2"), id="an unparsable listen address is refused"),
    pytest.param(config("http:\n  listen: '127.0.0.1:70000'\n", "monitor.yaml:2"),
                 id="a listen port out of range is refused"),
    pytest.param(config("http:\n  listen: '::1:9464'\n", "monitor.yaml:2"),
                 id="an IPv6 listen host without brackets is refused"),
    pytest.param(config("http:\n  listen: 'exa mple:9464'\n", "monitor.yaml:2"),
                 id="a listen host with a space is refused"),
]

SPEC_ROWS = [
    pytest.param(Row(with_slos(BOMB), "slo.yaml:6"), id="an alias bomb in an SLO spec is refused"),
    pytest.param(Row(with_slos(SLOTH.replace("service: checkout", "service: !!python/name:os.system")), "slo.yaml:2"),
                 id="a python tag in a Sloth spec is refused"),
    pytest.param(Row(with_slos(SLOTH.replace("objective: 99.9", "objective: .nan")), "slo.yaml:5"),
                 id="a NaN Sloth objective is refused"),
    pytest.param(Row(with_slos(SLOTH.replace("objective: 99.9", "objective: -5")), "slo.yaml:5"),
                 id="a negative Sloth objective is refused"),
    pytest.param(Row(with_slos(SLOTH.replace("name: availability", "name: ''")), "slo.yaml:4"),
                 id="an empty Sloth SLO name is refused"),
    pytest.param(Row(with_slos(SLOTH.replace("service: checkout", "service: ' '")), "slo.yaml:2"),
                 id="a blank Sloth service is refused"),
    pytest.param(Row(with_slos("version: prometheus/v1\nservice: checkout\nslos: availability\n"), "slo.yaml:3"),
                 id="Sloth slos given a string is refused"),
    pytest.param(Row(with_slos(OPENSLO.replace("target: 0.999", "target: .inf")), "slo.yaml:12"),
                 id="an infinite OpenSLO target is refused"),
    pytest.param(Row(with_slos(OPENSLO.replace("target: 0.999", "targetPercent: .nan")), "slo.yaml:12"),
                 id="a NaN OpenSLO target percent is refused"),
    pytest.param(Row(with_slos(OPENSLO.replace("duration: 28d", "duration: 99999999999999d")), "slo.yaml:9"),
                 id="an overflowing OpenSLO time window is refused"),
    pytest.param(Row(with_slos(OPENSLO.replace("  name: availability\nspec", "  name: ''\nspec")), "slo.yaml:4"),
                 id="an empty OpenSLO name is refused"),
    pytest.param(Row(with_slos(OPENSLO.replace("duration: 28d\n      isRolling: true",
                                               "duration: 1M\n      isRolling: false\n"
                                               "      calendar: {startTime: '9999-12-31T23:00:00-14:00'}")),
                     "slo.yaml:9"), id="an OpenSLO calendar start that overflows in its own zone is refused"),
    pytest.param(Row(with_slos(OPENSLO.replace("duration: 28d\n      isRolling: true",
                                               "duration: 1M\n      isRolling: false\n"
                                               "      calendar: {startTime: '2500-01-01T00:00:00Z'}")),
                     "slo.yaml:9"), id="an OpenSLO calendar starting beyond the year 2199 is refused"),
]

RULE_ROWS = [
    pytest.param(Row(template("{{ 9**9**9 }}"), "rules.yaml:8"),
                 id="a template whose constant power Jinja would fold at compile time is refused quickly"),
    pytest.param(Row(template("{{ 'a' * 10**9 }}"), "rules.yaml:8"),
                 id="a template building a gigabyte string is refused"),
    pytest.param(Row(template("{{ 'a'.center(1000000000) }}"), "rules.yaml:8"),
                 id="a template calling a padding method is refused"),
    pytest.param(Row(template("{% set x = 'ab' %}{{ x ~ x }}"), "rules.yaml:8"),
                 id="a template assigning variables is refused"),
    pytest.param(Row(template("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"), "rules.yaml:8"),
                 id="a recursive template macro is refused"),
    pytest.param(Row(template("{{ range(100000) | join(',') }}"), "rules.yaml:8"),
                 id="a template calling range is refused"),
    pytest.param(Row(template("{{ $labels.model "), "rules.yaml:8"), id="an unclosed template is refused"),
    pytest.param(Row(template("{{ 1 / 0 }}"), "rules.yaml:8"),
                 id="a template that fails when rendered is refused at check"),
    pytest.param(Row(with_rules(RULES + "---\nversion: monitor/v1\ngroups: []\n"), "rules.yaml:10"),
                 id="a second document in a rule file is refused"),
    pytest.param(Row(with_rules(RULES.replace("alert: BurnPage", "alert: !!python/object:x BurnPage")), "rules.yaml:5"),
                 id="a python tag in a rule file is refused"),
    pytest.param(Row(with_rules(RULES.replace("condition: slo_page == 1", "condition: slo_page == 1\n        for: 1h1h")),
                     "rules.yaml:7"), id="a rule's for with a repeated unit is refused"),
    pytest.param(Row(with_rules(RULES.replace("condition: slo_page == 1",
                                              "condition: slo_page == 1\n        keep_firing_for: 999999y")),
                     "rules.yaml:7"), id="a rule's keep_firing_for beyond ten years is refused"),
    pytest.param(Row(with_rules(RULES.replace("condition: slo_page == 1",
                                              "condition: slo_page == 1\n        no_data: silence")),
                     "rules.yaml:7: groups[0].rules[0].no_data: must be one of 'alert', 'ok', 'keep'"),
                 id="a no_data policy that is not alert, ok or keep is refused"),
    pytest.param(Row(with_rules(RULES.replace("condition: slo_page == 1",
                                              "condition: slo_page == 1\n        no_data_for: 30")),
                     "rules.yaml:7: groups[0].rules[0].no_data_for"),
                 id="a no_data_for without a unit is refused"),
]


# A route tree over two receivers; ROUTE's children (from line 7) are replaced per row.
ROUTE_HEAD = ("outputs:\n  receivers:\n    - {name: ops, webhook_configs: [{url: 'https://hooks.example/ops'}]}\n"
              "    - {name: pager}\n  route:\n    receiver: ops\n")


def route_row(children: str, where: str, *, head: str = ROUTE_HEAD) -> Row:
    return Row({"monitor.yaml": head + "    routes:\n" + children}, where)


ROUTE_ROWS = [
    pytest.param(route_row("      - receiver: pagr\n        matchers: [severity=page]\n",
                           "monitor.yaml:8: outputs.route.routes[0].receiver: unknown receiver 'pagr'"),
                 id="a route to an unknown receiver names the line of its receiver"),
    pytest.param(route_row("      - receiver: pager\n        routes:\n          - {receiver: nobody}\n",
                           "monitor.yaml:10: outputs.route.routes[0].routes[0].receiver: unknown receiver"),
                 id="a nested route to an unknown receiver names its path in the tree"),
    pytest.param(route_row("      - receiver: pager\n        matchers:\n          - severity=page\n"
                           "          - 'team=~\"(rank\"'\n",
                           "monitor.yaml:11: outputs.route.routes[0].matchers[1]: invalid regex"),
                 id="a matcher with an invalid regex names its own line"),
    pytest.param(route_row("      - receiver: pager\n        matchers: ['severity page']\n",
                           "monitor.yaml:9: outputs.route.routes[0].matchers[0]: invalid matcher 'severity page': expected label=value"),
                 id="a matcher with no operator is refused"),
    pytest.param(route_row("      - receiver: pager\n        matchers: ['1team=ranking']\n",
                           "monitor.yaml:9: outputs.route.routes[0].matchers[0]"),
                 id="a matcher on an invalid label name is refused"),
    pytest.param(route_row("      - {receiver: pager, group_by: [alertname, 'model-name']}\n",
                           "monitor.yaml:8: outputs.route.routes[0].group_by"),
                 id="a route grouping by something that is not a label name is refused"),
    pytest.param(route_row("      - {receiver: pager, repeat_interval: 0s}\n",
                           "monitor.yaml:8: outputs.route.routes[0].repeat_interval: must be longer than 0s"),
                 id="a route repeating every 0s is refused"),
    pytest.param(route_row("      - {receiver: pager, group_wait: -1m}\n", "monitor.yaml:8"),
                 id="a negative group_wait is refused"),
    pytest.param(route_row("      - {receiver: pager}\n",
                           "monitor.yaml:5: outputs.route: the root route needs a receiver",
                           head=ROUTE_HEAD.replace("    receiver: ops\n", "    group_by: [alertname]\n")),
                 id="a root route without a receiver is refused"),
    pytest.param(route_row("      - {receiver: ops}\n",
                           "monitor.yaml:4: outputs.receivers[1].name: duplicate receiver name 'ops'",
                           head=ROUTE_HEAD.replace("name: pager", "name: ops")),
                 id="two receivers with one name are refused at the second"),
    pytest.param(route_row("      - {receiver: pager}\n",
                           "monitor.yaml:4: reports.announce[1]: unknown receiver 'finance'",
                           head="reports:\n  announce:\n    - ops\n    - finance\n" + ROUTE_HEAD),
                 id="a report announced to an unknown receiver is refused at its name"),
    pytest.param(route_row("      - {receiver: default}\n",
                           "monitor.yaml:8: outputs.route.routes[0].receiver: unknown receiver 'default'"),
                 id="the implicit default receiver exists only with the legacy outputs.slack"),
]

TIME_ROWS = [
    pytest.param(Row({"monitor.yaml": ""}, "--at", ["run", "--once", "--at", "9999-12-31T00:00:00Z"]),
                 id="run at the year 9999 is a usage error naming --at"),
    pytest.param(Row({"monitor.yaml": ""}, "--at", ["run", "--once", "--at", "1969-07-20T20:17:00Z"]),
                 id="run before 1970 is a usage error naming --at"),
    pytest.param(Row({"monitor.yaml": ""}, "--at", ["run", "--once", "--at", "0001-01-01T00:00:00+14:00"]),
                 id="a time that overflows when made UTC names --at"),
    pytest.param(Row({"monitor.yaml": "prometheus: {url: 'http://127.0.0.1:1'}\n"}, "--at",
                     ["slo", "--config", "{dir}/monitor.yaml", "--at", "2500-01-01T00:00:00Z"]),
                 id="an SLO evaluation in the year 2500 names --at"),
    pytest.param(Row({"monitor.yaml": ""}, "--week",
                     ["report", "--config", "{dir}/monitor.yaml", "--week", "9999-W52"]),
                 id="a report for the year 9999 names --week"),
    pytest.param(Row({"monitor.yaml": ""}, "--week",
                     ["report", "--config", "{dir}/monitor.yaml", "--week", "1900-W01"]),
                 id="a report for the year 1900 names --week"),
    pytest.param(Row({"monitor.yaml": ""}, "--from/--to",
                     ["report", "--config", "{dir}/monitor.yaml", "--from", "2026-11-16T00:00:00Z",
                      "--to", "2026-11-16T00:30:00Z"]), id="a report period under an hour names --from/--to"),
    pytest.param(Row({"monitor.yaml": ""}, "--from/--to",
                     ["report", "--config", "{dir}/monitor.yaml", "--from", "0001-01-01T00:00:00Z",
                      "--to", "2026-11-16T00:00:00Z"]), id="a report starting in the year 1 names --from/--to"),
    pytest.param(Row({"monitor.yaml": ""}, "--to",
                     ["cost", "--config", "{dir}/monitor.yaml", "--to", "3000-01-01T00:00:00Z"]),
                 id="a cost window ending in the year 3000 names --to"),
    pytest.param(Row({"monitor.yaml": ""}, "--at", ["silence", "list", "--at", "1900-01-01T00:00:00Z"]),
                 id="listing silences at 1900 names --at"),
]

LISTEN_ROWS = [
    pytest.param(Row({"monitor.yaml": ""}, "--listen",
                     ["run", "--config", "{dir}/monitor.yaml", "--listen", "nonsense"]),
                 id="a daemon listen flag without a port names --listen"),
    pytest.param(Row({"monitor.yaml": ""}, "--listen",
                     ["run", "--config", "{dir}/monitor.yaml", "--listen", "127.0.0.1:99999"]),
                 id="a daemon listen port out of range names --listen"),
    pytest.param(Row({"monitor.yaml": ""}, "--listen",
                     ["run", "--config", "{dir}/monitor.yaml", "--listen", "[::zz]:9464"]),
                 id="a daemon listen address with a malformed IPv6 host names --listen"),
    pytest.param(Row({}, "--port", ["gpu-exporter", "--port", "70000"]),
                 id="a GPU exporter port out of range names --port"),
    pytest.param(Row({}, "--hostname-label", ["gpu-exporter", "--hostname-label", "host"]),
                 id="a GPU exporter host label other than hostname or Hostname names --hostname-label"),
]


def _materialise(row: Row, directory: Path) -> list[str]:
    for name, content in row.files.items():
        path = directory / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return [arg.replace("{dir}", str(directory)) for arg in row.argv]


def _without_usage(outcome: Outcome) -> Outcome:
    """argparse prints its usage (a few lines) before the one error line; the error line is what we judge."""
    lines = outcome.stderr.splitlines()
    if lines and lines[0].startswith("usage:"):
        lines = [line for line in lines if not (line.startswith("usage:") or line.startswith(" "))]
    return Outcome(outcome.code, outcome.stdout, "\n".join(lines), outcome.seconds)


def _without_check_summary(outcome: Outcome) -> Outcome:
    """`monitor check` ends its problems with a count; exactly one problem must precede it."""
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert lines and lines[-1] == "1 problem(s) found", outcome.stderr
    return Outcome(outcome.code, outcome.stdout, "\n".join(lines[:-1]), outcome.seconds)


@pytest.mark.parametrize("row", CONFIG_ROWS + SPEC_ROWS + RULE_ROWS + ROUTE_ROWS)
def test_a_broken_file_is_one_line_naming_its_file_and_line(tmp_path, capsys, row):
    outcome = run_in_process(_materialise(row, tmp_path), capsys)
    # "FILE:LINE: message", or "FILE: message" for a file-wide problem with no line.
    where = row.where if " " in row.where else f"{row.where}: "
    assert_handled(_without_check_summary(outcome), f"{tmp_path}/{where}")


@pytest.mark.parametrize("row", TIME_ROWS)
def test_a_time_far_from_now_is_one_line_naming_its_flag(tmp_path, capsys, row):
    outcome = run_in_process(_materialise(row, tmp_path), capsys)
    assert_handled(_without_usage(outcome), row.where)
    assert re.search(r"1970|2199|an hour", outcome.stderr), outcome.stderr


@pytest.mark.parametrize("row", LISTEN_ROWS)
def test_a_bad_listen_address_flag_is_one_line_naming_the_flag(tmp_path, capsys, row):
    outcome = run_in_process(_materialise(row, tmp_path), capsys)
    assert_handled(_without_usage(outcome), row.where, codes=(1, 2))


def test_the_alias_bomb_is_refused_well_within_two_seconds(tmp_path, capsys):
    (tmp_path / "monitor.yaml").write_text(BOMB)
    started = time.monotonic()
    outcome = run_in_process(["check", "--config", tmp_path / "monitor.yaml"], capsys)
    assert time.monotonic() - started < 2.0
    assert "alias bomb" in outcome.stderr


def test_a_named_pipe_matched_by_a_glob_is_refused_without_blocking(tmp_path, capsys):
    import os

    (tmp_path / "slos").mkdir()
    os.mkfifo(tmp_path / "slos" / "slo.yaml")
    (tmp_path / "monitor.yaml").write_text("slos: ['slos/*.yaml']\n")
    outcome = run_in_process(["check", "--config", tmp_path / "monitor.yaml"], capsys)
    assert_handled(_without_check_summary(outcome), f"{tmp_path}/slos/slo.yaml: not a regular file")


def test_a_multi_document_openslo_file_still_loads(tmp_path, capsys):
    (tmp_path / "monitor.yaml").write_text("slos: [slo.yaml]\n")
    (tmp_path / "slo.yaml").write_text(OPENSLO + "---\n" + SLOTH.replace("checkout", "search"))
    assert run_in_process(["check", "--config", tmp_path / "monitor.yaml"], capsys).code == 0


def test_anchors_and_aliases_within_the_bound_still_load(tmp_path, capsys):
    (tmp_path / "monitor.yaml").write_text(
        "models:\n  - name: a\n    inferences: &counter 'nv_inference_count{model=\"a\"}'\n"
        "    drift: &drift {reference: 7d, current: 1h}\n"
        "  - name: b\n    inferences: *counter\n    drift: *drift\n")
    outcome = run_in_process(["check", "--config", tmp_path / "monitor.yaml"], capsys)
    assert outcome.code == 0, outcome.stderr


@pytest.mark.parametrize("label", ["v$1$", "v$\\alpha$_x", "a_b\\c", "$^$"])
def test_chart_text_is_drawn_as_written_not_as_maths(label):
    from datetime import datetime, timezone

    daily = daily_cost_chart([DailyCost(day=datetime(2026, 11, 16, tzinfo=timezone.utc), cost_usd_by_model={label: 1.0})],
                             title=f"cost of {label}")
    distribution = distribution_chart(PredictionDistribution(
        model="ranker", version=label, bucket_upper_bounds=[0.5, 1.0, float("inf")],
        reference_share=[0.5, 0.5, 0.0], current_share=[0.4, 0.6, 0.0]), title=f"ranker {label} predictions")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", daily + distribution)
    unescaped = [t.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">") for t in texts]
    assert label in unescaped
    assert f"cost of {label}" in unescaped and f"ranker {label} predictions" in unescaped


def test_a_slack_webhook_url_without_a_scheme_fails_the_delivery_without_printing_it(tmp_path, monkeypatch, caplog):
    import random

    from monitor.outputs.assembly import build_delivery
    from monitor.store import StateStore
    from standins.clock import ManualClock
    from standins.configs import write_config

    secret_path = "s3cr3t-webhook-path"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"hooks.slack.com/services/T0/B0/{secret_path}")
    config = write_config(tmp_path, """
        retry_schedule: [0s]
        expire_after: 10m
        slack:
          webhook_url_env: SLACK_WEBHOOK_URL""")
    clock = ManualClock()
    service = build_delivery(config, StateStore(tmp_path / "state.db"), clock, rng=random.Random(1))
    payload = {"kind": "firing", "status": "firing", "groupKey": "g", "groupLabels": {"alertname": "A"},
               "alerts": [{"status": "firing", "labels": {"alertname": "A", "severity": "page"}, "annotations": {},
                           "startsAt": "2026-11-22T21:00:00Z", "value": 1.0, "endsAt": None, "evidence": {}}],
               "firing": 1, "resolved": 0}
    event = AlertGroupEvent.from_dict(payload, "2026-11-22T21:05:00Z")
    service.outbox.enqueue(service.router.route("f", event), clock.now())
    service.worker.run_until_idle()
    (delivery,) = service.outbox.deliveries()
    assert delivery.attempts == 1 and "SLACK_WEBHOOK_URL" in delivery.last_error
    assert secret_path not in delivery.last_error and secret_path not in caplog.text
