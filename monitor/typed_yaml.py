"""Load YAML files into frozen dataclasses, with errors that name FILE:LINE and the field.

Every file format we read (our config, Sloth and OpenSLO specs, rule files) goes
through here, so they all reject unknown keys, duplicate keys and wrong types the
same way, and report every problem at once rather than the first.

A dataclass field maps to the YAML key of the same name unless its metadata names
another (`field(metadata={"key": "timeWindow"})`). After a dataclass is built, its
optional `yaml_check()` method may return `(key_or_None, message)` pairs for
semantic problems; they are reported at that key's line.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from monitor.durations import parse_duration
from monitor.errors import ConfigError, Problem

# Keys that look like an inline secret: we point the user at *_env / *_file instead.
_INLINE_SECRET_KEYS = {"token", "secret", "password", "api_key", "bearer_token", "url_secret"}


class _Invalid:
    """Marker for a value that failed validation (its problem is already recorded)."""


INVALID = _Invalid()


def node_line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class YamlFile:
    """A YAML file's documents as line-annotated nodes, plus the problems found building from them."""

    def __init__(self, path: str | Path, text: str | None = None):
        self.path = str(path)
        self.problems: list[Problem] = []
        if text is None:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError([Problem(self.path, None, f"cannot read file: {exc.strerror}")]) from None
        try:
            self.documents: list[yaml.Node] = [
                doc for doc in yaml.compose_all(text, Loader=yaml.SafeLoader) if doc is not None
            ]
        except yaml.MarkedYAMLError as exc:
            # The context mark is where the broken construct began (an unclosed list
            # or quote), which is the line to fix; the problem mark may be end of file.
            mark = exc.context_mark or exc.problem_mark
            line = mark.line + 1 if mark else None
            detail = f"{exc.context}: {exc.problem}" if exc.context else str(exc.problem or exc)
            raise ConfigError([Problem(self.path, line, f"invalid YAML: {detail}")]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([Problem(self.path, None, f"invalid YAML: {exc}")]) from None
        for doc in self.documents:
            self._check_duplicates(doc)

    def error(self, node: yaml.Node | None, message: str) -> None:
        self.problems.append(Problem(self.path, node_line(node) if node is not None else None, message))

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)

    def _check_duplicates(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen and key_node.value != "<<":
                        self.error(key_node, f"duplicate key {key_node.value!r} "
                                             f"(first defined on line {node_line(seen[key_node.value])})")
                    seen.setdefault(key_node.value, key_node)
                self._check_duplicates(value_node)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                self._check_duplicates(item)

    # -- building typed values -------------------------------------------------

    def build(self, tp: Any, node: yaml.Node, where: str) -> Any:
        """Build a value of type `tp` from `node`; record problems and return INVALID on failure."""
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if tp is Any:
            return plain(node)
        if tp is yaml.Node:
            return node
        if origin in (Union, types.UnionType):
            options = [a for a in args if a is not type(None)]
            if _is_null(node):
                if type(None) in args:
                    return None
                return self._fail(node, f"{where}: must not be empty")
            if len(options) == 1:
                return self.build(options[0], node, where)
            # Several options: take the first that builds without problems.
            for option in options:
                trial = YamlFile.__new__(YamlFile)
                trial.path, trial.problems = self.path, []
                value = trial.build(option, node, where)
                if not trial.problems:
                    return value
            return self._fail(node, f"{where}: expected {' or '.join(_type_name(o) for o in options)}")
        if origin is Literal:
            value = _scalar(node)
            if value not in args:
                return self._fail(node, f"{where}: must be one of {', '.join(repr(a) for a in args)}, got {value!r}")
            return value
        if origin in (list, tuple):
            if not isinstance(node, yaml.SequenceNode):
                return self._fail(node, f"{where}: expected a list")
            item_tp = args[0] if args else Any
            items = [self.build(item_tp, item, f"{where}[{i}]") for i, item in enumerate(node.value)]
            if any(item is INVALID for item in items):
                return INVALID
            return tuple(items) if origin is tuple else items
        if origin is dict:
            if not isinstance(node, yaml.MappingNode):
                return self._fail(node, f"{where}: expected a mapping")
            key_tp, value_tp = args if args else (str, Any)
            out = {}
            for key_node, value_node in node.value:
                key = self.build(key_tp, key_node, f"{where} key")
                out[key] = self.build(value_tp, value_node, f"{where}.{key}")
            if any(v is INVALID or k is INVALID for k, v in out.items()):
                return INVALID
            return out
        if dataclasses.is_dataclass(tp):
            return self._build_dataclass(tp, node, where)
        if tp is timedelta:
            value = _scalar(node)
            if not isinstance(value, str):
                return self._fail(node, f"{where}: expected a duration such as 30s, 5m or 28d, got {value!r}")
            try:
                return parse_duration(value)
            except ValueError as exc:
                return self._fail(node, f"{where}: {exc}")
        if tp in (str, int, float, bool):
            if not isinstance(node, yaml.ScalarNode):
                return self._fail(node, f"{where}: expected {_type_name(tp)}, got a {_node_kind(node)}")
            value = _scalar(node)
            if tp is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
                return node.value  # a number where text is wanted: keep the text as written
            if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
                return self._fail(node, f"{where}: expected {_type_name(tp)}, got {value!r}")
            return value
        raise TypeError(f"typed_yaml cannot build {tp!r}")

    def _build_dataclass(self, cls: Any, node: yaml.Node, where: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self._fail(node, f"{where or 'document'}: expected a mapping, got a {_node_kind(node)}")
        hints = typing.get_type_hints(cls)
        by_key = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls)
                  if f.init and f.metadata.get("yaml", True)}
        given: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node))
            given[key] = (key_node, value_node)
        kwargs: dict[str, Any] = {}
        failed = False
        for key, (key_node, value_node) in given.items():
            path = f"{where}.{key}" if where else key
            if key not in by_key:
                hint = ""
                if key in _INLINE_SECRET_KEYS:
                    hint = f"; secrets are never inline: use {key}_env (an environment variable) or {key}_file"
                known = ", ".join(sorted(by_key))
                self.error(key_node, f"unknown field {path!r}{hint} (known fields: {known})")
                failed = True
                continue
            f = by_key[key]
            value = self.build(hints[f.name], value_node, path)
            if value is INVALID:
                failed = True
            kwargs[f.name] = value
        for key, f in by_key.items():
            if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                path = f"{where}.{key}" if where else key
                self.error(node, f"missing required field {path!r}")
                failed = True
        if failed:
            return INVALID
        instance = cls(**kwargs)
        check = getattr(instance, "yaml_check", None)
        if check is not None:
            semantic_problems = check()
            for key, message in semantic_problems:
                target = given[key][0] if key in given else node
                path = f"{where}.{key}" if where and key else (key or where or "document")
                self.error(target, f"{path}: {message}")
            if semantic_problems:
                return INVALID
        return instance

    def _fail(self, node: yaml.Node, message: str) -> _Invalid:
        self.error(node, message)
        return INVALID


def plain(node: yaml.Node) -> Any:
    """A node as plain Python values (dicts, lists, scalars)."""
    if isinstance(node, yaml.MappingNode):
        return {str(_scalar(k)): plain(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [plain(item) for item in node.value]
    return _scalar(node)


def mapping_get(node: yaml.Node, key: str) -> yaml.Node | None:
    """The value node under `key` in a mapping node, or None."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value_node
    return None


_constructor = yaml.SafeLoader.__new__(yaml.SafeLoader)
yaml.constructor.SafeConstructor.__init__(_constructor)


def _scalar(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value = _constructor.construct_object(node, deep=True)
        # The constructor memoises every node it builds, and each node's marks hold its
        # file's whole text; this one outlives every file (SLO and rule files are read
        # each cycle), so forget them or the daemon grows by the files' size per cycle.
        _constructor.constructed_objects.clear()
        return value
    return plain(node)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _node_kind(node: yaml.Node) -> str:
    return {yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}.get(type(node), "scalar")


def _type_name(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if typing.get_origin(tp) in (list, tuple):
        return "a list"
    if typing.get_origin(tp) is dict:
        return "a mapping"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             timedelta: "a duration"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))
