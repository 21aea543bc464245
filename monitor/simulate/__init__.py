"""The simulated fleet shared by the demo, the tests and the benchmarks.

`fleet.py` generates realistic metric series with injected incidents whose true
start and end are known; `writers.py` writes them as OpenMetrics (for promtool's
backfill), the fleet's config and SLO specs, truth.json and Parquet prediction logs;
`local_prometheus.py` backfills and runs Debian's prometheus on loopback.
"""
