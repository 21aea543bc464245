"""Load YAML files into frozen dataclasses, with errors that name FILE:LINE and the field.

Every file format we read (our config, Sloth and OpenSLO specs, rule files) goes
through here, so they all reject unknown keys, duplicate keys and wrong types the
same way, and report every problem at once rather than the first.

A dataclass field maps to the YAML key of the same name unless its metadata names
another (`field(metadata={"key": "timeWindow"})`). After a dataclass is built, its
optional `yaml_check()` method may return `(key_or_None, message)` pairs for
semantic problems; they are reported at that key's line.

These files are untrusted text (a config reloaded on SIGHUP, specs from another
team), so reading one is bounded before anything walks it: its size
(`MAX_FILE_BYTES`), its nesting (`MAX_DEPTH`) and the values its aliases add
(`MAX_EXPANDED_NODES`: a "billion laughs" file is a few lines that expand to 10^9
values). Only the YAML core schema's tags are accepted, merge keys (`<<`) are
refused rather than half-supported, and a second document is refused unless the
format has several (Sloth and OpenSLO files). Values are ints, floats, booleans,
null or text: a date-like scalar stays the text written, and a field typed `str` takes
any scalar but null as the text written (`true`, `2022-12-30T00:00:00Z`, `0.250`), as
the Go tools whose files we read do.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import types
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from yaml.events import AliasEvent, ScalarEvent
from yaml.nodes import MappingNode, ScalarNode

from monitor.durations import parse_duration
from monitor.errors import ConfigError, Problem

# Bounds on one file. Our largest real files (a fleet's SLO specs) are tens of kB,
# nest under 15 levels and use aliases, if at all, for a few shared label sets.
# A file of short entries composes at about 0.6 MB per CPU second (LibYAML's parser,
# our composer in Python), so 2 MiB keeps a file at the bound to a few seconds.
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64
MAX_EXPANDED_NODES = 200_000

# Keys that look like an inline secret: we point the user at *_env / *_file instead.
_INLINE_SECRET_KEYS = {"token", "secret", "password", "api_key", "bearer_token", "url_secret"}
_CORE = "tag:yaml.org,2002:"
# Explicit tags a file may carry (`!!str 0123`); `!!python/object`, `!!binary`, `!custom` are refused.
_ALLOWED_TAGS = {_CORE + name for name in ("str", "int", "float", "bool", "null", "map", "seq")} | {"!"}
_MERGE_TAG = _CORE + "merge"


class _Invalid:
    """Marker for a value that failed validation (its problem is already recorded)."""


INVALID = _Invalid()


def node_line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Refused(Exception):
    """A construct the bounded loader does not accept, at a line (1-based)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer, refusing deep nesting, alias bombs, unknown tags and merge keys.

    Each node's expanded size (what walking it, aliases followed, visits) and height
    are known the moment it is composed, so a bomb is refused at the alias that
    crosses the bound, long before anything expands it. Only what aliases add is
    bounded: a long file of plain values is bounded by its size.
    """

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._written = 0  # distinct nodes composed in this document
        self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)

    def compose_document(self):
        node = super().compose_document()
        self._measured.clear()
        self._written = 0
        return node

    def compose_node(self, parent, index):
        event = self.peek_event()
        line = event.start_mark.line + 1
        if type(event) is AliasEvent:
            node = super().compose_node(parent, index)
            if type(node) is ScalarNode:
                return node  # each alias of a scalar is written out in the file: bounded by its size
            measured = self._measured.get(id(node))
            if measured is None:
                # An alias to a collection still being composed: it would contain itself.
                raise _Refused(line, "an alias refers to a collection that contains it (recursive alias)")
            self._check(measured, line)
            return node
        if event.tag is not None and event.tag not in _ALLOWED_TAGS:
            tag = event.tag.replace(_CORE, "!!", 1)
            raise _Refused(line, f"YAML tag {tag!r} is not allowed (only plain YAML values are)")
        self._written += 1
        if type(event) is ScalarEvent:
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        measured = self._measured[id(node)] = self._measure(node)
        self._check(measured, line)
        return node

    def _check(self, measured: tuple[int, int], line: int) -> None:
        size, height = measured
        if height > MAX_DEPTH:
            raise _Refused(line, f"aliases nest deeper than {MAX_DEPTH} levels")
        if size - self._written > MAX_EXPANDED_NODES:
            raise _Refused(line, f"aliases expand to more than {MAX_EXPANDED_NODES:,} values (an alias bomb?)")

    def _measure(self, node: yaml.Node) -> tuple[int, int]:
        """(expanded size, height) of a just-composed collection, from its children's (a scalar's is 1, 1)."""
        if isinstance(node, MappingNode):
            for key, _ in node.value:
                if key.tag == _MERGE_TAG:
                    raise _Refused(node_line(key), "merge keys (<<) are not supported: write the keys out")
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value
        size, height = 1, 1
        for child in children:
            child_size, child_height = self._measured.get(id(child), (1, 1))
            size += child_size
            height = max(height, child_height + 1)
        return size, height


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _BoundedLoader(_BoundedComposer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """LibYAML's parser under our composer (the composer's methods come first in the MRO)."""

        def __init__(self, text: str):
            CParser.__init__(self, text)
            _BoundedComposer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
else:  # pragma: no cover - PyYAML without LibYAML: the pure-Python parser, slower on big files
    class _BoundedLoader(_BoundedComposer, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,  # type: ignore[no-redef]
                         yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        def __init__(self, text: str):
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            _BoundedComposer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)


def _read_text(path: str) -> str:
    """The file as text, bounded in size; one clear problem when it is too big or not UTF-8."""
    try:
        # A FIFO or a device matched by a glob would block the read or never end.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ConfigError([Problem(path, None, "not a regular file")])
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([Problem(path, None, f"cannot read file: {exc.strerror}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([Problem(path, None, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(path, None, f"not UTF-8 text (byte {exc.start})")]) from None
    return text.removeprefix("\ufeff")


def _compose(path: str, text: str, multi_document: bool) -> list[yaml.Node]:
    loader = None
    documents: list[yaml.Node] = []
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters here
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if documents and not multi_document:
                raise _Refused(node_line(node), "a second YAML document: this file holds one document "
                                                "(remove the '---' and what follows, or merge it into the first)")
            documents.append(node)
    except _Refused as exc:
        raise ConfigError([Problem(path, exc.line, f"invalid YAML: {exc.message}")]) from None
    except yaml.MarkedYAMLError as exc:
        # The context mark is where the broken construct began (an unclosed list
        # or quote), which is the line to fix; the problem mark may be end of file.
        mark = exc.context_mark or exc.problem_mark
        line = mark.line + 1 if mark else None
        detail = f"{exc.context}: {exc.problem}" if exc.context else str(exc.problem or exc)
        raise ConfigError([Problem(path, line, f"invalid YAML: {detail}")]) from None
    except yaml.reader.ReaderError as exc:
        # A control character: LibYAML knows its byte offset in the UTF-8 text, not its line.
        line = text.encode("utf-8")[:exc.position].count(b"\n") + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ConfigError([Problem(path, line, f"invalid YAML: control character U+{code:04X} is not allowed "
                                               f"(byte {exc.position})")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(path, None, f"invalid YAML: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents


class YamlFile:
    """A YAML file's documents as line-annotated nodes, plus the problems found building from them.

    `multi_document` allows several `---` documents (Sloth and OpenSLO files); other
    formats hold one, and a second is refused rather than silently ignored.
    """

    def __init__(self, path: str | Path, text: str | None = None, *, multi_document: bool = False):
        self.path = str(path)
        self.problems: list[Problem] = []
        if text is None:
            text = _read_text(self.path)
        elif len(text) > MAX_FILE_BYTES:
            raise ConfigError([Problem(self.path, None, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")])
        self.documents: list[yaml.Node] = _compose(self.path, text, multi_document)
        for doc in self.documents:
            self._check_duplicates(doc, set())

    def error(self, node: yaml.Node | None, message: str) -> None:
        self.problems.append(Problem(self.path, node_line(node) if node is not None else None, message))

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)

    def _check_duplicates(self, node: yaml.Node, visited: set[int]) -> None:
        # An aliased collection is checked (and its problems reported) once.
        if id(node) in visited:
            return
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        self.error(key_node, f"duplicate key {key_node.value!r} "
                                             f"(first defined on line {node_line(seen[key_node.value])})")
                    seen.setdefault(key_node.value, key_node)
                self._check_duplicates(value_node, visited)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                self._check_duplicates(item, visited)

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
            if tp is str and isinstance(value, (int, float)):
                # A number or boolean where text is wanted (`generated: true`, `version: 2`):
                # its text as written, as Go's YAML decoding into a string gives it.
                return node.value
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
                target = _problem_node(given, key, node)
                path = f"{where}.{key}" if where and key else (key or where or "document")
                self.error(target, f"{path}: {message}")
            if semantic_problems:
                return INVALID
        return instance

    def _fail(self, node: yaml.Node, message: str) -> _Invalid:
        self.error(node, message)
        return INVALID


def _problem_node(given: dict[str, tuple[yaml.Node, yaml.Node]], key: str | None, node: yaml.Node) -> yaml.Node:
    """The node a `yaml_check` problem is reported at: its key's line, or with `key[i]`
    (`matchers[2]`) that list item's line; the object's own line for None or a key not given."""
    if key in given:
        return given[key][0]
    found = _INDEXED_KEY.match(key or "")
    if found and found.group(1) in given:
        items = given[found.group(1)][1]
        index = int(found.group(2))
        if isinstance(items, yaml.SequenceNode) and index < len(items.value):
            return items.value[index]
        return given[found.group(1)][0]
    return node


_INDEXED_KEY = re.compile(r"^(\w+)\[(\d+)\]$")


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


# Tags whose values we construct; any other scalar (an implicit timestamp such as
# 2026-01-01, YAML 1.1's `=`) is kept as the text written.
_CONSTRUCTED_TAGS = {_CORE + name for name in ("int", "float", "bool", "null")}


def _scalar(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _CONSTRUCTED_TAGS:
            return node.value
        try:
            return _constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError):
            return node.value
        finally:
            # The constructor memoises every node it builds, and each node's marks hold its
            # file's whole text; this one outlives every file (SLO and rule files are read
            # each cycle), so forget them or the daemon grows by the files' size per cycle.
            _constructor.constructed_objects.clear()
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
