"""Broken lease settings (`state.lease_ttl`, `state.replica`): one line naming the file, line and key."""

from __future__ import annotations

import re

import pytest

from dataclasses import replace

from tests.hostile import assert_handled, run_in_process

CASES = {
    "a lease shorter than 2s would lapse between renewals": ("lease_ttl: 1s", "lease_ttl", "between 2s and 1h"),
    "a lease of a day would leave nobody paging for a day": ("lease_ttl: 1d", "lease_ttl", "between 2s and 1h"),
    "a lease TTL that is not a duration": ("lease_ttl: soon", "lease_ttl", ""),
    "a replica name with spaces and punctuation": ("replica: 'pod 1; drop'", "replica", "letters, digits"),
    "a replica name of 300 characters": ("replica: " + "r" * 300, "replica", "1-200"),
}


@pytest.mark.parametrize("setting, key, says", list(CASES.values()), ids=list(CASES))
def test_broken_lease_settings_are_one_line_naming_the_key(tmp_path, capsys, setting, key, says):
    config = tmp_path / "monitor.yaml"
    config.write_text(f"state:\n  path: {tmp_path / 'state.db'}\n  {setting}\n")
    outcome = run_in_process(["check", "--config", config], capsys)
    # `monitor check` ends with its count of problems: the problem itself is the one line.
    outcome = replace(outcome, stderr="".join(line for line in outcome.stderr.splitlines(keepends=True)
                                              if not line.rstrip().endswith("problem(s) found")))
    assert_handled(outcome, re.compile(rf"{re.escape(str(config))}:3.*{key}"))
    assert says in outcome.stderr
