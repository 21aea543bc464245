"""One module per CLI command; each exposes `register(subparsers)`.

Commands parse arguments and call into the package; they hold no logic of their own
beyond presenting results (tables or JSON) and choosing the exit code.

`COMMANDS` is the light table `monitor --help` is built from: a command's module
(and with it numpy, pandas, Prometheus clients...) is imported only when that
command runs, so `monitor --version` and `--help` start in a fraction of a second.
"""

from __future__ import annotations


class Command:
    """One entry of the table (a plain class: `dataclasses` alone costs `--version` tens of ms)."""

    __slots__ = ("name", "module", "help")

    def __init__(self, name: str, module: str, help: str):  # noqa: A002 - argparse's word
        self.name = name
        self.module = module
        self.help = help  # the text the module's register() gives; tests/test_cli_startup.py checks they agree


# Order is the order `monitor --help` lists them in.
COMMANDS: tuple[Command, ...] = (
    Command("check", "monitor.commands.check", "validate the config, SLO specs and rule files"),
    Command("simulate", "monitor.commands.simulate", "write a simulated ML fleet's metrics and config"),
    Command("slo", "monitor.commands.slo", "SLO burn rates, error budgets and page/ticket decisions"),
    Command("cost", "monitor.commands.cost",
            "cost per 1k inferences, GPU-hours, utilisation and idle cost per model"),
    Command("drift", "monitor.commands.drift", "compare a current data file with a reference file (Parquet or CSV)"),
    Command("gpu-exporter", "monitor.commands.gpu_exporter", "serve local GPU metrics (dcgm-exporter names) from NVML"),
    Command("run", "monitor.commands.run", "run the daemon (or one cycle with --once)"),
    Command("alerts", "monitor.commands.alerts", "list current alerts"),
    Command("silence", "monitor.commands.silence", "add, list or expire silences"),
    Command("routes", "monitor.commands.routes", "test the route tree: which receivers a label set reaches"),
    Command("deliver", "monitor.commands.deliver",
            "send queued notifications (Slack, webhooks, Alertmanager) from the outbox"),
    Command("deliveries", "monitor.commands.deliveries",
            "list notification deliveries (Slack, webhooks, Alertmanager) and their status"),
    Command("state", "monitor.commands.state_file", "the state store: copy an SQLite state into PostgreSQL"),
    Command("webhooks", "monitor.commands.webhooks", "webhook subscriptions: send a test ping"),
    Command("report", "monitor.commands.report", "write the weekly HTML service-review report"),
    Command("warm-cache", "monitor.commands.warm_cache",
            "compile the drift kernels ahead of time (e.g. at container build)"),
    Command("completion", "monitor.commands.completion", "print a bash or zsh completion script"),
)

COMMAND_MODULES = [command.module for command in COMMANDS]
