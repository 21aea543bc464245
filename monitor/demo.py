"""`make demo`: the main job end to end on the simulated fleet, on loopback only.

1. Simulate 7 days ending now and backfill them into a private Prometheus on a free
   127.0.0.1 port.
2. Start local stand-ins for the Slack Web API and for a deployer's webhook receiver
   (the same ones the tests use: the receiver verifies every Standard Webhooks
   signature and dedups on webhook-id).
3. `monitor check` the fleet's config, then step `monitor run --once` through the last
   two days of history, so alert state, incidents and model versions build up as a
   daemon running all along would have left them.
4. Run the daemon itself (`monitor run`) for a few cycles: it delivers the queued
   Slack messages and rollback webhooks and serves /metrics, which is saved.
5. Write the weekly report for the simulated week, stop everything, print where to look.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import requests
import yaml

from monitor.cli import main as cli_main
from monitor.progress import progress
from monitor.simulate.fleet import generate_fleet
from monitor.simulate.local_prometheus import LocalPrometheus, backfill, free_port
from monitor.simulate.writers import write_fleet

# The stand-ins live with the tests (they are test doubles); the demo runs from a
# source checkout (`make demo`) and reuses them so it shows exactly what is tested.
_TESTS = Path(__file__).resolve().parent.parent / "tests"
HISTORY_STEP = timedelta(minutes=30)
HISTORY_SPAN = timedelta(hours=54)
DAEMON_CYCLES = 3


def run_cli(args: list[str], output: Path | None = None) -> int:
    """Run a `monitor` command in-process, saving what it prints to `output`."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli_main(args)
    if output is not None:
        output.write_text(buffer.getvalue(), encoding="utf-8")
    return code


def step(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args(argv)
    if not (_TESTS / "standins").is_dir():
        print("monitor demo: error: run it from a source checkout (make demo): tests/standins is missing",
              file=sys.stderr)
        return 1
    sys.path.insert(0, str(_TESTS))
    from standins.configs import new_webhook_secret
    from standins.slack_api import SlackStandIn
    from standins.webhook_receiver import WebhookReceiver

    out: Path = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.monotonic()

    fleet = generate_fleet(days=args.days, seed=1)
    paths = write_fleet(fleet, out)
    step(f"simulated {args.days} days of {len(fleet.series)} series ending {fleet.end:%Y-%m-%d %H:%M} UTC "
         f"with {len(fleet.incidents)} incidents ({paths['truth'].name})")
    backfill(paths["metrics"], out / "prometheus-data")
    prometheus = LocalPrometheus(out / "prometheus-data", log_path=out / "prometheus.log").start()
    step(f"prometheus serving the history at {prometheus.url}")

    slack_token = "xoxb-demo-" + os.urandom(6).hex()
    webhook_secret = new_webhook_secret()
    os.environ["MONITOR_DEMO_SLACK_TOKEN"] = slack_token
    os.environ["MONITOR_DEMO_WEBHOOK_SECRET"] = webhook_secret
    slack = SlackStandIn(token=slack_token)
    receiver = WebhookReceiver(secret=webhook_secret)
    daemon: subprocess.Popen | None = None
    failed: list[str] = []
    try:
        slack.server.start()
        receiver.start()
        step(f"Slack Web API stand-in at {slack.base_url}, deployer webhook receiver at {receiver.url}")
        listen = f"127.0.0.1:{free_port()}"
        write_demo_config(paths["config"], prometheus.url, slack.base_url, receiver.url, out, listen)

        if run_cli(["check", "--config", str(paths["config"])], out / "check.txt") != 0:
            raise SystemExit("[demo] monitor check rejected the demo config (problems above)")
        step(f"monitor check: {(out / 'check.txt').read_text().strip()}")

        steps = int((HISTORY_SPAN - HISTORY_STEP) / HISTORY_STEP) + 1
        history = [fleet.end - HISTORY_SPAN + i * HISTORY_STEP for i in range(steps)]
        cycles = 0
        for history_at in progress(history, desc="replaying history", unit="cycle"):
            code = run_cli(["run", "--once", "--config", str(paths["config"]), "--at", history_at.isoformat()])
            failed += ["run --once"] if code != 0 else []
            cycles += 1
        run_cli(["alerts", "--all", "--config", str(paths["config"])], out / "alerts.txt")
        step(f"stepped {cycles} cycles through the last {HISTORY_SPAN.total_seconds() / 3600:.0f}h of history; "
             f"alerts: {out / 'alerts.txt'}")

        daemon_log = out / "daemon.log"
        with open(daemon_log, "wb") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(paths["config"]), "--log-format", "json",
                 "--replay-from", fleet.end.isoformat()],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        metrics_text = wait_for_daemon(f"http://{listen}", daemon)
        (out / "metrics.txt").write_text(metrics_text, encoding="utf-8")
        step(f"daemon ran {DAEMON_CYCLES}+ cycles and delivered the outbox; /metrics saved to {out / 'metrics.txt'}")
        daemon.send_signal(signal.SIGTERM)
        if daemon.wait(60) != 0:
            failed.append("daemon exit")
        daemon = None

        week_from = (fleet.end - timedelta(days=7)).isoformat()
        if run_cli(["report", "--config", str(paths["config"]), "--from", week_from, "--to", fleet.end.isoformat(),
                    "--out", str(out / "reports")], out / "report.txt") != 0:
            failed.append("report")
        save_received(out, slack, receiver)
    finally:
        if daemon is not None:
            daemon.kill()
        slack.server.stop()
        receiver.stop()
        prometheus.stop()

    rollbacks = [e for e in receiver.events.values() if e.get("type") == "rollback.requested"]
    step(f"Slack stand-in received {len(slack.accepted('chat.postMessage'))} messages and "
         f"{len(slack.accepted('chat.update'))} updates; the deployer received {len(receiver.events)} signed events "
         f"({len(rollbacks)} rollback.requested), every signature verified: "
         f"{all(a.valid for a in receiver.attempts)}")
    for event in rollbacks:
        data = event["data"]
        step(f"  rollback.requested: {data['model']} {data['bad_version']} -> {data['last_known_good_version']}: "
             f"{data['reason']}")
    reports = sorted((out / "reports").glob("*/index.html"))
    step(f"done in {time.monotonic() - started:.0f}s. Where to look (under {out}):")
    for label, path in [("weekly report", reports[0] if reports else out / "reports"),
                        ("report archive", out / "reports" / "index.html"),
                        ("Slack messages", out / "slack-messages.json"),
                        ("webhook events", out / "webhook-events.json"),
                        ("daemon /metrics", out / "metrics.txt"),
                        ("daemon log", out / "daemon.log"),
                        ("alerts", out / "alerts.txt"),
                        ("config", paths["config"]),
                        ("truth", paths["truth"]),
                        ("state", out / "monitor-state.db")]:
        print(f"  {label:16s} {path}")
    if failed:
        print(f"[demo] failed steps: {', '.join(sorted(set(failed)))}", file=sys.stderr)
    return 1 if failed else 0


def write_demo_config(path: Path, prometheus_url: str, slack_url: str, webhook_url: str, out: Path,
                      listen: str) -> None:
    config = yaml.safe_load(path.read_text())
    config["prometheus"]["url"] = prometheus_url
    config["schedule"] = {"evaluate_every": "2s"}
    config["http"] = {"listen": listen}
    config["reports"] = {"dir": str(out / "reports")}
    # The daemon has watched v1 serve for 24h before v2 arrives in the stepped history.
    config["alerting"] = {"last_known_good_after": "12h"}
    config["outputs"] = {
        "slack": {"channel": "#ml-alerts", "token_env": "MONITOR_DEMO_SLACK_TOKEN", "base_url": slack_url,
                  "allow_private": True},
        "webhooks": [{"name": "deployer", "url": webhook_url, "secret_env": "MONITOR_DEMO_WEBHOOK_SECRET",
                      "events": ["rollback.requested", "rollback.cancelled"], "allow_private": True}],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def wait_for_daemon(url: str, daemon: subprocess.Popen, timeout_s: float = 180) -> str:
    """Wait until the daemon has run a few cycles and its outbox is empty; return /metrics."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode}; see daemon.log")
        try:
            text = requests.get(f"{url}/metrics", timeout=5).text
        except requests.RequestException:
            time.sleep(0.5)
            continue
        values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
        cycles = float(values.get('monitor_cycles_total{result="success"}', 0))
        pending = float(values.get("monitor_outbox_pending", 1))
        if cycles >= DAEMON_CYCLES and pending == 0:
            return text
        time.sleep(0.5)
    raise RuntimeError("the daemon did not run its cycles and empty its outbox in time; see daemon.log")


def save_received(out: Path, slack, receiver) -> None:
    messages = [{"method": c.method, "channel": c.args.get("channel"), "thread_ts": c.args.get("thread_ts"),
                 "text": c.args.get("text")} for c in slack.accepted()]
    (out / "slack-messages.json").write_text(json.dumps(messages, indent=2) + "\n", encoding="utf-8")
    events = [receiver.events[i] for i in receiver.order]
    (out / "webhook-events.json").write_text(json.dumps(events, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
