"""Hostile and mistaken `models[]` cost keys (tokens, cpu/memory, resource_source, seldon-v2): one clear line each.

Each row is a config a user could write by mistake; `monitor check` must end as
`tests/hostile.py` says: exit 1 or 2, one line naming the file and line, no traceback.
"""

from __future__ import annotations

import pytest

from tests.hostile import Outcome, assert_handled, run_in_process

HEAD = "models:\n  - name: chat\n"


def _rows():
    rows = [
        ("    preset: vllm\n    tokens: {prompt: '{model=\"chat\"}', generation: 'gen_total'}\n", 4,
         "token counters given as bare matchers, with no metric, name the tokens line"),
        ("    preset: vllm\n    tokens: {}\n", 4, "an empty tokens mapping names its line"),
        ("    preset: vllm\n    tokens: {prompt: 'a_total{', generation: 'b_total'}\n", 4,
         "a token counter that is not a selector names its line"),
        ("    preset: vllm\n    tokens: {input: 'a_total'}\n", 4, "an unknown tokens key is refused at its line"),
        ("    preset: seldon-v2\n    cpu: '{namespace=\"ml\"}'\n    resource_source: limits\n", 5,
         "a resource source other than usage or requests names its line"),
        ("    preset: seldon-v3\n", 3, "an unknown preset names the line"),
        ("    preset: seldon-v2\n    memory: '{namespace=~\"(\"}'\n", 4,
         "a memory selector with a broken regex names its line"),
    ]
    return [pytest.param(body, line, id=name) for body, line, name in rows]


@pytest.mark.parametrize("body, line", _rows())
def test_a_broken_model_cost_key_is_one_line_naming_its_file_and_line(tmp_path, capsys, body, line):
    path = tmp_path / "monitor.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    outcome = run_in_process(["check", "--config", str(path)], capsys)
    lines = [x for x in outcome.stderr.splitlines() if x.strip()]
    assert lines and lines[-1] == "1 problem(s) found", outcome.stderr
    assert_handled(Outcome(outcome.code, outcome.stdout, "\n".join(lines[:-1]), outcome.seconds), f"{path}:{line}: ")
