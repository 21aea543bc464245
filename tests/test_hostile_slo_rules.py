"""Hostile arguments to `monitor slo rules`: one line naming the flag, exit 1 or 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile import Outcome, assert_handled, run_in_process

SPEC = Path(__file__).parent / "fixtures" / "sloth" / "getting-started.yml"

ROWS = {
    "a label without a value": (["--extra-labels", "novalue"], "--extra-labels"),
    "a label name Prometheus refuses": (["--extra-labels", "1bad=x"], "--extra-labels"),
    "a reserved double-underscore label name": (["--extra-labels", "__name__=x"], "--extra-labels"),
    "a label the generator sets itself": (["--extra-labels", "sloth_id=x"], "--extra-labels"),
    "a namespace without --format prometheusrule": (["--namespace", "monitoring"], "--namespace"),
    "an object label without --format prometheusrule": (["--metadata-label", "a=b"], "--metadata-label"),
    "a PrometheusRule name Kubernetes refuses": (["--format", "prometheusrule", "--name", "Not_A_Name"], "--name"),
    "a namespace Kubernetes refuses": (["--format", "prometheusrule", "--namespace=-x"], "--namespace"),
    "an object label value Kubernetes refuses": (["--format", "prometheusrule", "--metadata-label", "a=b c"],
                                                 "--metadata-label"),
    "an unknown format": (["--format", "yaml"], "--format"),
    "an output path under a plain file": (["-o", "{file}/rules.yml"], "-o {file}/rules.yml"),
    "an output path that is a directory": (["-o", "{dir}"], "-o {dir}"),
}


@pytest.mark.parametrize("args, flag", list(ROWS.values()), ids=list(ROWS))
def test_bad_rules_arguments_are_handled(capsys, tmp_path, args, flag):
    plain = tmp_path / "plain"
    plain.write_text("")
    fill = {"file": plain, "dir": tmp_path}
    args, flag = [a.format(**fill) for a in args], flag.format(**fill)
    outcome = _without_usage(run_in_process(["slo", "rules", "--spec", SPEC, *args], capsys))
    assert_handled(outcome, flag)
    assert outcome.stdout == ""


def _without_usage(outcome: Outcome) -> Outcome:
    """argparse prints its usage (a few lines) before the one error line; the error line is what we judge."""
    lines = outcome.stderr.splitlines()
    if lines and lines[0].startswith("usage:"):
        lines = [line for line in lines if not (line.startswith("usage:") or line.startswith(" "))]
    return Outcome(outcome.code, outcome.stdout, "\n".join(lines), outcome.seconds)
