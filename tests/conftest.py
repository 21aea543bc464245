"""Session fixtures: the simulated fleet, backfilled into a real Prometheus on loopback.

The fleet ends at a fixed instant (Monday 2026-11-23 00:00 UTC, so its 7 days are
exactly ISO week 2026-W47) and is generated from a fixed seed, so every test's
expected numbers are computed from the same in-memory series that were written.
Backfilled blocks are cached under .test-cache/ keyed by the simulator's source, so
a second local run skips promtool; CI starts from a clean clone and builds them.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

import monitor.simulate.fleet as fleet_module
import monitor.simulate.writers as writers_module
from monitor.simulate.fleet import generate_fleet
from monitor.simulate.local_prometheus import LocalPrometheus, backfill, find_binary
from monitor.simulate.writers import write_fleet
from monitor.sources.prometheus import PrometheusSource

FLEET_END = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
FLEET_DAYS = 7
FLEET_SEED = 1
REPO = Path(__file__).resolve().parent.parent
CACHE_ROOT = REPO / ".test-cache"


def _fleet_key() -> str:
    digest = hashlib.sha256()
    for module in (fleet_module, writers_module):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(f"{FLEET_END.isoformat()}|{FLEET_DAYS}|{FLEET_SEED}".encode())
    return digest.hexdigest()[:16]


@pytest.fixture(autouse=True)
def _no_logging_setup_leaks_between_tests():
    """A CLI command run in-process installs its stderr log handler (as the real process
    would); it must not outlive the test, or later tests' stderr gets its lines."""
    import logging

    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_monitor_handler", False)]:
        root.removeHandler(handler)


@pytest.fixture(scope="session")
def fleet():
    """The simulated fleet's series in memory: the source of truth for expected values."""
    return generate_fleet(days=FLEET_DAYS, seed=FLEET_SEED, end=FLEET_END)


@pytest.fixture(scope="session")
def fleet_end() -> datetime:
    return FLEET_END


@pytest.fixture(scope="session")
def sim_dir(fleet, tmp_path_factory) -> Path:
    """The fleet written as `monitor simulate` writes it, with TSDB blocks in sim_dir/blocks."""
    for tool in ("promtool", "prometheus"):
        try:
            find_binary(tool)
        except Exception as exc:  # fail loudly: CI installs it, tests never silently skip
            pytest.fail(str(exc))
    cached = CACHE_ROOT / _fleet_key()
    if not (cached / "blocks").is_dir():
        # Several pytest sessions may build at once: each builds in its own directory
        # and the first rename wins; the others use the winner's blocks.
        CACHE_ROOT.mkdir(exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f"{_fleet_key()}.", dir=CACHE_ROOT))
        paths = write_fleet(fleet, building)
        backfill(paths["metrics"], building / "blocks")
        paths["metrics"].unlink()  # 100 MB; the blocks and the in-memory fleet hold the same data
        try:
            building.rename(cached)
        except OSError:
            shutil.rmtree(building, ignore_errors=True)
    target = tmp_path_factory.mktemp("sim")
    shutil.copytree(cached, target, dirs_exist_ok=True)
    return target


@pytest.fixture(scope="session")
def prometheus(sim_dir):
    """A real Prometheus serving the simulated history on a free 127.0.0.1 port."""
    server = LocalPrometheus(sim_dir / "blocks", log_path=sim_dir / "prometheus.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def prom(prometheus):
    """A Prometheus source for the session's server (restarted if a test stopped it)."""
    if not prometheus.running:
        prometheus.start()
    source = PrometheusSource(prometheus.url, timeout=10)
    yield source
    source.close()


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL cluster (Debian's package, initdb/pg_ctl) on a free 127.0.0.1 port."""
    from tests.postgres_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database in the session's PostgreSQL cluster (restarted if a test stopped it)."""
    import psycopg

    try:
        psycopg.connect(postgres_server.url(), connect_timeout=2).close()
    except psycopg.OperationalError:
        postgres_server.start_server()
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_backend(request) -> str:
    """Each state backend in turn: the store contract tests run on both."""
    return request.param


@pytest.fixture
def open_state(state_backend, request, tmp_path):
    """Opens this test's state on `state_backend`: a new store object on the same state each call (a
    restart), an SQLite file in tmp_path or a fresh PostgreSQL database."""
    from monitor.store import StateStore
    from monitor.store_postgres import PostgresStore

    if state_backend == "sqlite":
        path = tmp_path / "state.db"
        return lambda: StateStore(path)
    url = request.getfixturevalue("postgres_url")
    return lambda: PostgresStore(url)


@pytest.fixture
def state_store(open_state):
    """A state store on each backend in turn (see `open_state`)."""
    with open_state() as store:
        yield store


@pytest.fixture
def fleet_config_path(sim_dir, prometheus) -> Path:
    """The simulated fleet's monitor.yaml, pointing at the session's Prometheus."""
    import yaml

    path = sim_dir / "monitor.yaml"
    config = yaml.safe_load(path.read_text())
    config["prometheus"]["url"] = prometheus.url
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
