"""A grouped SLO instance's ids: readable for people, unambiguous and stable for state."""

from __future__ import annotations

import pytest

from monitor.slo.groups import by_clause, group_from_key, group_key, group_of, instance_id

ODD_VALUES = ['/v1/search', 'say "hi"', 'back\\slash', 'two\nlines', '', 'ünïcode', '{a="b"}', '["x",1]']


@pytest.mark.parametrize("value", ODD_VALUES)
def test_the_display_id_escapes_values_as_promql_strings(value):
    shown = instance_id("gw-availability", (("endpoint", value),))
    inner = shown.removeprefix('gw-availability{endpoint="').removesuffix('"}')
    # PromQL's string escapes, undone, give the value back.
    assert inner.encode().decode("unicode_escape").encode("latin-1").decode() == value
    assert "\n" not in shown


@pytest.mark.parametrize("value", ODD_VALUES)
def test_the_state_key_round_trips_and_is_ascii(value):
    group = (("endpoint", value), ("method", "POST"))
    key = group_key(group)
    assert key.isascii() and group_from_key(key) == group


def test_distinct_groups_never_share_a_key():
    groups = [(("a", x), ("b", y)) for x in ODD_VALUES for y in ODD_VALUES]
    assert len({group_key(g) for g in groups}) == len(groups)
    assert len({instance_id("s", g) for g in groups}) == len(groups)


def test_an_ungrouped_spec_keeps_its_id_and_the_empty_key():
    assert instance_id("gw-availability", ()) == "gw-availability"
    assert group_key(()) == "" and group_from_key("") == ()


def test_an_absent_label_is_the_empty_value_as_in_sum_by():
    assert group_of({"endpoint": "/x"}, ("endpoint", "method")) == (("endpoint", "/x"), ("method", ""))
    assert by_clause(" rate(x[5m]) ", ("endpoint", "method")) == "sum by (endpoint, method) (rate(x[5m]))"


@pytest.mark.parametrize("query, expected", [
    ("sum by (endpoint) (rate(x[5m]))", "sum by (endpoint) (rate(x[5m]))"),
    ("sum by(endpoint)(rate(x[5m]))", "sum by(endpoint)(rate(x[5m]))"),
    ("sum by (endpoint) (rate(x[5m])) / sum by (endpoint) (rate(y[5m]))",
     "sum by (endpoint) (sum by (endpoint) (rate(x[5m])) / sum by (endpoint) (rate(y[5m])))"),
    ("sum by (route) (rate(x[5m]))", "sum by (endpoint) (sum by (route) (rate(x[5m])))"),
    ('sum(rate(x{a=")"}[5m])) by (endpoint)', 'sum by (endpoint) (sum(rate(x{a=")"}[5m])) by (endpoint))'),
], ids=["a plain sum by the group labels is kept",
        "without spaces too",
        "a ratio of two sums is wrapped whole",
        "a sum by other labels is regrouped",
        "the trailing by form is wrapped"])
def test_the_group_sum_wraps_only_what_needs_it(query, expected):
    assert by_clause(query, ("endpoint",)) == expected
