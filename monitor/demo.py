"""`make demo`: the main job end to end on the simulated fleet, on loopback.

Simulates 7 days ending now, backfills them into a private Prometheus on a free
127.0.0.1 port, validates the fleet's config, runs each stage of the cycle that
exists and writes its outputs under the demo directory, then stops Prometheus and
prints where everything is.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import time
from pathlib import Path

import yaml

from monitor.cli import main as cli_main
from monitor.simulate.fleet import generate_fleet
from monitor.simulate.local_prometheus import LocalPrometheus, backfill
from monitor.simulate.writers import write_fleet


def run_cli(args: list[str], output: Path) -> int:
    """Run a `monitor` command, saving what it prints to `output`."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli_main(args)
    output.write_text(buffer.getvalue(), encoding="utf-8")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args(argv)

    out: Path = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.monotonic()

    fleet = generate_fleet(days=args.days, seed=1)
    paths = write_fleet(fleet, out)
    print(f"[demo] simulated {args.days} days of {len(fleet.series)} series ending {fleet.end:%Y-%m-%d %H:%M} UTC")
    backfill(paths["metrics"], out / "prometheus-data")
    prometheus = LocalPrometheus(out / "prometheus-data", log_path=out / "prometheus.log")
    prometheus.start()
    print(f"[demo] prometheus serving the history at {prometheus.url}")
    try:
        config = yaml.safe_load(paths["config"].read_text())
        config["prometheus"]["url"] = prometheus.url
        paths["config"].write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        at = fleet.end.isoformat()
        steps = [("check", ["check", "--config", str(paths["config"])], out / "check.txt")]
        steps += [(name, [*cmd, "--config", str(paths["config"]), "--at", at], out / f"{name}.txt")
                  for name, cmd in optional_steps()]
        failed = []
        for name, cmd, output in steps:
            code = run_cli(cmd, output)
            status = "ok" if code == 0 else f"exit {code}"
            print(f"[demo] monitor {' '.join(cmd[:2]) if cmd[0] != 'check' else 'check'}: {status} -> {output}")
            if code != 0:
                failed.append(name)
    finally:
        prometheus.stop()
    print(f"[demo] done in {time.monotonic() - started:.0f}s. Outputs in {out}:")
    for role, path in paths.items():
        print(f"  {role:12s} {path}")
    print(f"  {'prometheus':12s} {out / 'prometheus-data'} (restart with: prometheus "
          f"--storage.tsdb.path={out / 'prometheus-data'} --storage.tsdb.retention.time=3650d)")
    return 1 if failed else 0


def optional_steps() -> list[tuple[str, list[str]]]:
    """The cycle's stages that exist so far, as CLI commands evaluated at the fleet's end."""
    from monitor.commands import COMMAND_MODULES

    known = {m.rsplit(".", 1)[1] for m in COMMAND_MODULES}
    steps = []
    if "slo" in known:
        steps.append(("slo", ["slo"]))
    return steps


if __name__ == "__main__":
    sys.exit(main())
