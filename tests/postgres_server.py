"""A private PostgreSQL cluster on loopback, from Debian's `postgresql` package.

`initdb` and `pg_ctl` make and start a throwaway cluster in a temporary directory, on a
free 127.0.0.1 port, with no Unix socket outside it: nothing of the machine's own
PostgreSQL (if any) is touched. PostgreSQL refuses to run as root, so as root the cluster
belongs to the `postgres` user the Debian package creates. A missing binary fails the
test that needs it, naming the package; it never skips.

Tests get a fresh database each (`PostgresServer.new_database`), cloned from an empty
template, so they cannot see each other's rows.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from monitor.simulate.local_prometheus import free_port

SUPERUSER = "monitor_test"


def find_pg_binary(name: str) -> str:
    """`initdb`, `pg_ctl`, `postgres`: on PATH, or in Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise RuntimeError(f"{name} not found: install Debian's postgresql package (make test does)")


class PostgresServer:
    """One cluster: start(), url(database), new_database(), stop(), and the faults the HA tests need
    (stop_server/start_server for a restart)."""

    def __init__(self) -> None:
        self.initdb = find_pg_binary("initdb")
        self.pg_ctl = find_pg_binary("pg_ctl")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "postgres.log"
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL will not run as root: hand the cluster to the package's `postgres` user.
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no `postgres` user: install Debian's postgresql "
                                   "package (make test does)") from None
            os.chmod(self.root, 0o755)
            self.socket_dir.mkdir()
            os.chown(self.socket_dir, owner.pw_uid, owner.pw_gid)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._run_as = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--clear-groups", "--"]
        else:
            self.socket_dir.mkdir()

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run([*self._run_as, *args], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}\n{log}")

    def start(self) -> "PostgresServer":
        self._run(self.initdb, "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                  "--no-locale", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            # Loopback only, and durability traded for speed: a test cluster is thrown away.
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.socket_dir}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       "max_connections = 200\nshared_buffers = 32MB\n")
        self.start_server()
        return self

    def start_server(self) -> None:
        if self._run_as:
            subprocess.run(["touch", str(self.log)], check=True)
            os.chown(self.log, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server (mode: smart, fast or immediate), keeping the cluster for start_server()."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self.stop_server("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)
