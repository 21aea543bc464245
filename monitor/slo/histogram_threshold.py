"""Threshold SLIs ("99% of requests under 250 ms") as event queries over a Prometheus histogram.

A classic Prometheus histogram counts observations at or below each bucket boundary
(`<name>_bucket{le="0.25"}`) and all of them (`<name>_count`). "Under the threshold" is
then exactly one bucket: good = that bucket's rate, total = the count's rate. A threshold
between two boundaries has no exact answer (interpolating, as `histogram_quantile` does,
invents events), so it is refused; the boundaries are only known to the server, so
`check_threshold_is_boundary` asks Prometheus for the `le` values of the selected series
when it is reachable. Offline, the threshold is taken as written, and a threshold that is
no boundary matches no series: its SLO reads "no data", never healthy.

The threshold is in the histogram's unit: seconds for Prometheus' `_seconds` histograms,
so 250 ms is 0.25. `monitor check` is offline and takes the threshold as written;
`monitor slo`, which asks Prometheus anyway, refuses one that is no boundary there
(`threshold_problems`). A whole-number boundary has two spellings in real data: Go clients
and Prometheus 2 write `le="1"`, Prometheus 3 stores `le="1.0"` (it normalises `le` on
ingestion), so such a bucket is matched as `le=~"1|1.0"`; any other boundary has one.
(Pyrra's `slo/prometheus3.go`, `convertLeMatcherForPrometheus3`, rewrites `le` the same way
when its Prometheus 3 migration is on; Pyrra specs themselves are read with their `le` as
written, as Pyrra does by default.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from monitor.slo.counter_query import WINDOW, NotACounterSelector, selector
from monitor.slo.spec import EventsSli, SloSpec
from monitor.sources.prometheus import QueryError


class ThresholdError(ValueError):
    """A threshold SLI that cannot be built or is not a bucket boundary; the message says why."""


@dataclass(frozen=True)
class BucketThresholdSli(EventsSli):
    """Events read from one histogram bucket, remembering which, so a server can confirm the boundary."""

    histogram: str = ""     # the `<name>_bucket{...}` selector, without `le`
    threshold: float = 0.0  # the bucket boundary, in the histogram's unit


class Comparison(Enum):
    """OpenSLO's `op`: how a good observation compares with the threshold."""

    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"


@dataclass(frozen=True)
class HistogramSelector:
    """A histogram's base name and the label matchers (without `le`) of the selected series."""

    name: str
    matchers: str

    def bucket(self, threshold: float) -> str:
        return f"{self.name}_bucket{{{_joined(self.matchers, le_matcher(threshold))}}}"

    def count(self) -> str:
        return f"{self.name}_count{{{self.matchers}}}"

    def buckets(self) -> str:
        return f"{self.name}_bucket{{{self.matchers}}}"


def histogram_selector(query: str) -> HistogramSelector:
    """The histogram named by a `<name>_bucket{...}` selector; ThresholdError when it is not one."""
    try:
        vector = selector(query)
    except NotACounterSelector as exc:
        raise ThresholdError(f"a histogram threshold needs a <name>_bucket selector: {exc}") from None
    if not vector.name or not vector.name.endswith("_bucket"):
        raise ThresholdError(f"a histogram threshold needs a <name>_bucket selector, got {query.strip()!r}")
    matchers = []
    for matcher in vector.matchers.matchers:
        if matcher.name == "le":
            raise ThresholdError("the selector must not match le: the threshold chooses the bucket")
        if matcher.name != "__name__":
            matchers.append(str(matcher))
    return HistogramSelector(vector.name.removesuffix("_bucket"), ",".join(matchers))


def le_matcher(threshold: float) -> str:
    """The `le` matcher of one bucket boundary: `le="0.25"`, or `le=~"1|1.0"` for a whole number."""
    if float(threshold).is_integer():
        whole = f"{int(threshold)}"
        return f'le=~"{whole}|{whole}\\\\.0"'
    return f'le="{threshold!r}"'


def threshold_sli(query: str, op: Comparison, threshold: float) -> BucketThresholdSli:
    """The events SLI of "observations `op` threshold are good" over the histogram `query` selects.

    `le` buckets count observations <= the boundary, so `lt` and `lte` read the same bucket
    (and `gt`/`gte` its complement): observations exactly at a boundary are rare for
    continuous quantities such as latency, and the histogram cannot tell them apart anyway.
    """
    if not math.isfinite(threshold):
        raise ThresholdError(f"threshold {threshold:g} is not a finite bucket boundary")
    histogram = histogram_selector(query)
    fast = f"rate({histogram.bucket(threshold)}[{WINDOW}])"
    total = f"rate({histogram.count()}[{WINDOW}])"
    if op in (Comparison.LT, Comparison.LTE):
        return BucketThresholdSli(f"sum({total}) - sum({fast})", total, query.strip(), threshold)
    return BucketThresholdSli(fast, total, query.strip(), threshold)


def bucket_boundaries_query(query: str) -> str:
    """The PromQL whose series' `le` labels are the histogram's bucket boundaries."""
    return f"count by (le) ({histogram_selector(query).buckets()})"


def check_threshold_is_boundary(threshold: float, le_values: list[str], query: str) -> None:
    """Raise ThresholdError unless `threshold` is one of the boundaries Prometheus has (its `le` values).

    `le_values` come from `bucket_boundaries_query` answered by Prometheus. No series at all
    is reported too: a selector matching nothing would make the SLO "no data" forever.
    """
    boundaries = set()
    for text in le_values:
        try:
            boundaries.add(float(text))
        except ValueError:
            continue
    if not boundaries:
        raise ThresholdError(f"no histogram series match {histogram_selector(query).buckets()}")
    if threshold not in boundaries:
        finite = sorted(b for b in boundaries if math.isfinite(b))
        raise ThresholdError(f"threshold {threshold:g} is not a bucket boundary of "
                             f"{histogram_selector(query).name} (boundaries: {', '.join(f'{b:g}' for b in finite)})")


def threshold_problems(source, specs: list[SloSpec], at: datetime) -> list[str]:
    """`FILE:LINE: ...` for each histogram-threshold SLO whose threshold is no bucket boundary on the server.

    One query per histogram. A histogram with no series at `at` says nothing about its
    boundaries (its SLO reads "no data" anyway), and a failed query is the evaluation's to
    report: both are skipped.
    """
    boundaries: dict[str, list[str] | None] = {}
    out = []
    for spec in specs:
        sli = spec.sli
        if not isinstance(sli, BucketThresholdSli):
            continue
        if sli.histogram not in boundaries:
            try:
                result = source.instant(bucket_boundaries_query(sli.histogram), at)
                boundaries[sli.histogram] = [sample.labels.get("le", "") for sample in result.samples]
            except QueryError:
                boundaries[sli.histogram] = None
        le_values = boundaries[sli.histogram]
        if not le_values:
            continue
        try:
            check_threshold_is_boundary(sli.threshold, le_values, sli.histogram)
        except ThresholdError as exc:
            out.append(f"{spec.source}: SLO {spec.id!r}: {exc}")
    return out


def _joined(*parts: str) -> str:
    return ",".join(part for part in parts if part)


__all__ = ["BucketThresholdSli", "Comparison", "HistogramSelector", "ThresholdError", "bucket_boundaries_query",
           "check_threshold_is_boundary", "histogram_selector", "le_matcher", "threshold_problems", "threshold_sli"]
