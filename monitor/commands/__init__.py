"""One module per CLI command; each exposes `register(subparsers)`.

Commands parse arguments and call into the package; they hold no logic of their own
beyond presenting results (tables or JSON) and choosing the exit code.
"""

# Order is the order `monitor --help` lists them in.
COMMAND_MODULES = [
    "monitor.commands.check",
    "monitor.commands.simulate",
    "monitor.commands.slo",
    "monitor.commands.cost",
    "monitor.commands.drift",
    "monitor.commands.gpu_exporter",
    "monitor.commands.run",
    "monitor.commands.alerts",
    "monitor.commands.silence",
    "monitor.commands.deliver",
    "monitor.commands.deliveries",
    "monitor.commands.webhooks",
    "monitor.commands.report",
    "monitor.commands.warm_cache",
]
