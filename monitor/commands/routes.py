"""`monitor routes test LABEL=VALUE ...`: which receivers a label set reaches (`amtool config routes test`)."""

from __future__ import annotations

import argparse
import json
import sys

from monitor.commands.arguments import add_config_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("routes", help="test the route tree: which receivers a label set reaches",
                                   description="The route tree of outputs.route (Alertmanager's routing).")
    actions = parser.add_subparsers(dest="routes_command", metavar="ACTION", required=True)
    test = actions.add_parser(
        "test", help="print the receivers an alert with these labels reaches",
        description="Print the receivers an alert with the given labels reaches, comma-separated on one line, "
                    "as 'amtool config routes test' does. A label not given is the empty string, as in "
                    "Alertmanager. Exits 1 when --verify-receivers differs, 2 for bad arguments.")
    test.add_argument("labels", nargs="*", type=label_argument, metavar="LABEL=VALUE",
                      help="the alert's labels, e.g. severity=page service=ranker")
    test.add_argument("--tree", action="store_true", help="print the route tree, marking the routes matched")
    test.add_argument("--verify-receivers", type=receiver_list, metavar="A,B",
                      help="exit 1 unless exactly these receivers are reached (in this order)")
    test.add_argument("--json", action="store_true", help="print JSON")
    add_config_argument(test)
    test.set_defaults(func=run_test)


def label_argument(text: str) -> tuple[str, str]:
    """`name=value` (the value may be double-quoted) for argparse."""
    from monitor.promql_selectors import is_label_name

    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep:
        raise argparse.ArgumentTypeError(f"expected LABEL=VALUE, got {text!r}")
    if not is_label_name(name):
        raise argparse.ArgumentTypeError(f"{name!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*) in {text!r}")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return name, value


def receiver_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected receiver names separated by commas, got {text!r}")
    return names


def run_test(args: argparse.Namespace) -> int:
    from monitor.alerting.route_check import route_check
    from monitor.alerting.routes import receivers_reached, route_tree
    from monitor.config import config_path_from, load_config

    labels: dict[str, str] = {}
    for name, value in args.labels:
        if name in labels and labels[name] != value:
            print(f"monitor routes test: error: label {name!r} given twice ({labels[name]!r} and {value!r})",
                  file=sys.stderr)
            return 2
        labels[name] = value
    config = load_config(config_path_from(args.config))
    route_check(config)  # unknown receivers are a config problem (ConfigError: FILE:LINE, exit 1)
    tree = route_tree(config.outputs, config.alerting)
    matches = tree.match(labels)
    receivers = list(receivers_reached(tree, labels))
    verified = args.verify_receivers is None or args.verify_receivers == receivers
    if args.json:
        out = {"labels": labels, "receivers": receivers,
               "routes": [{"route_id": m.route_id, "receiver": m.receiver, "group_by": list(m.group_by),
                           "group_wait": _seconds(m.group_wait), "group_interval": _seconds(m.group_interval),
                           "repeat_interval": _seconds(m.repeat_interval)} for m in matches]}
        if args.verify_receivers is not None:
            out["expected_receivers"] = args.verify_receivers
            out["verified"] = verified
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        if args.tree:
            print("Routing tree:")
            for line in tree_lines(tree, {m.route_id for m in matches}):
                print(line)
            print()
        print(",".join(receivers))
    if not verified:
        print(f"monitor routes test: labels reach {','.join(receivers) or 'no receiver'}, "
              f"expected {','.join(args.verify_receivers)}", file=sys.stderr)
        return 1
    return 0


def _seconds(value) -> float:
    return value.total_seconds()


def tree_lines(tree, matched: set[str]) -> list[str]:
    """The tree as amtool draws it, one route a line, `*` before the routes an alert landed on."""
    from monitor.alerting.routes import matcher_text
    from monitor.durations import format_duration

    lines: list[str] = []

    def describe(node, label: str) -> str:
        s = node.settings
        mark = "* " if node.route_id in matched else ""
        extras = [f"receiver: {s.receiver}", f"group_by: [{', '.join(s.group_by)}]"]
        extras += [f"group_wait: {format_duration(s.group_wait)}",
                   f"group_interval: {format_duration(s.group_interval)}",
                   f"repeat_interval: {format_duration(s.repeat_interval)}"]
        if node.continue_:
            extras.append("continue: true")
        return f"{mark}{label}  {'  '.join(extras)}"

    def walk(node, prefix: str) -> None:
        for index, child in enumerate(node.children):
            last = index == len(node.children) - 1
            matchers = "{" + ", ".join(matcher_text(m) for m in child.matchers) + "}"
            lines.append(prefix + ("└── " if last else "├── ") + describe(child, matchers))
            walk(child, prefix + ("    " if last else "│   "))

    lines.append(describe(tree.root, "default-route"))
    walk(tree.root, "")
    return lines


