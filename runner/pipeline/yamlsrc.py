"""Safe YAML loading that remembers where every value came from.

libyaml parses (safely and fast); the events it emits are turned into plain Python values
here, so that we can report duplicate keys, refuse unsafe tags and read YAML the way a user
means it, with YAML 1.2 scalars: ``16:9`` is a string (not the base-60 integer 969 of YAML
1.1), and so are ``yes``/``no``/``on``/``off`` and dates. The line of every key and list item
is kept in a :class:`SourceMap`, which turns a key path back into a file and line.

A pipeline file is untrusted input, so the document is bounded while it is built: aliases may
repeat values but not multiply the document (a "billion laughs" stops at the alias that
crosses the bound, in microseconds), nesting is bounded, and so are the digits of an integer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.errors import Diagnostics, KeyPath, Location
from runner.pipeline.sourcemap import Lines, SourceMap
from runner.pipeline.textfile import TextProblem, decode
from runner.pipeline.yaml_scalars import resolve_plain, too_long_integer

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"

# A document's values (every key, scalar, list and mapping): the 5,000-node benchmark
# pipeline holds about 105,000. Checking costs time and memory per value, so a pipeline and
# the files it imports hold at most this many together.
MAX_VALUES = 250_000
# Aliases may add this many values to a document, plus one per value actually written: a
# real pipeline reuses a preset or a look in every node, an alias bomb multiplies them.
ALIAS_ALLOWANCE = 100_000
ALIAS_RATIO = 1
MAX_DEPTH = 64
MAX_INT_DIGITS = 100
# A value's weight: 1 per node, plus 1 per 100 characters of a scalar (aliasing one long
# string a thousand times is a bomb too).
_CHARS_PER_WEIGHT = 100


class _Abort(Exception):
    """The document is too big to build; the error is already reported."""


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    path: KeyPath
    anchor: str | None
    line: int
    lines: Lines = field(default_factory=dict)
    key: str | None = None
    key_line: int = 0
    merges: list[tuple[Any, int]] = field(default_factory=list)
    weight: int = 1


class _Builder:
    """Builds values from parser events, collecting problems as it goes."""

    def __init__(
        self, file: Path | None, diags: Diagnostics, max_values: int, depth: int = 0
    ) -> None:
        self.file = file
        self.diags = diags
        self.max_values = max_values
        self.depth = depth  # how deep in its document the part read sits
        self.stack: list[_Frame] = []
        self.anchors: dict[str, Any] = {}
        self.lines: dict[int, Lines] = {}
        self.root: Any = None
        self.done = False
        self.weights: dict[int, int] = {}  # by id() of each container
        self.events = 0
        self.expanded = 0  # values added by aliases

    def feed(self, event: yaml.Event) -> None:
        mark = event.start_mark
        line = mark.line + 1 if mark is not None else 0
        self.events += 1
        self._check_size(line)
        if type(event) is yaml.ScalarEvent:
            self._value(self._scalar(event, line), line, event.anchor, is_key_text=event.value)
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event, line)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._start(event, line)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            frame = self.stack.pop()
            if isinstance(frame.container, dict):
                self._merge(frame)
            self.lines[id(frame.container)] = frame.lines
            self.weights[id(frame.container)] = frame.weight
            if frame.anchor is not None:
                self.anchors[frame.anchor] = frame.container
            self._value(frame.container, frame.line, None, is_key_text=None, closing=True)
        elif isinstance(event, yaml.DocumentStartEvent) and self.done:
            self._error(
                line,
                (),
                "yaml-multiple-documents",
                "a pipeline file holds one YAML document",
                "remove the extra '---'",
            )

    def _start(self, event: yaml.Event, line: int) -> None:
        tag = getattr(event, "tag", None)
        mapping = isinstance(event, yaml.MappingStartEvent)
        expected = _CORE + ("map" if mapping else "seq")
        path = self._child_path()
        if tag not in (None, "!", expected):
            self._unsupported_tag(tag, line, path)
        if len(self.stack) + self.depth >= MAX_DEPTH:
            self._error(
                line,
                path,
                "yaml-depth",
                f"values are nested more than {MAX_DEPTH} levels deep",
                "a pipeline needs a few levels; flatten this value",
            )
            raise _Abort
        container: dict[str, Any] | list[Any] = {} if mapping else []
        self.stack.append(_Frame(container, path, getattr(event, "anchor", None), line))

    def _child_path(self) -> KeyPath:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.container, list):
            return (*top.path, len(top.container))
        return (*top.path, top.key) if top.key is not None else top.path

    def _alias(self, event: yaml.AliasEvent, line: int) -> None:
        anchor = event.anchor
        if anchor not in self.anchors:
            open_anchor = any(frame.anchor == anchor for frame in self.stack)
            message = (
                "a YAML alias refers to the value that contains it"
                if open_anchor
                else (f"unknown YAML alias '*{anchor}'")
            )
            self._error(line, self._child_path(), "yaml-alias", message)
            self._value(None, line, None, is_key_text=None)
            return
        value = self.anchors[anchor]
        self.expanded += self._weight(value)
        allowed = ALIAS_ALLOWANCE + ALIAS_RATIO * self.events
        if self.expanded > allowed:
            self._error(
                line,
                self._child_path(),
                "yaml-alias-bomb",
                f"YAML aliases expand this document past {allowed:,} values",
                "an alias may repeat a value, not multiply the document: write the values "
                "out, or use fewer levels of aliases of aliases",
            )
            raise _Abort
        self._check_size(line)
        self._value(value, line, None, is_key_text=None)

    def _check_size(self, line: int) -> None:
        if self.events + self.expanded > self.max_values:
            self._error(
                line,
                self._child_path(),
                "yaml-size",
                f"the pipeline and its imports hold more than {MAX_VALUES:,} values",
                "split the pipeline into several files",
            )
            raise _Abort

    def _weight(self, value: Any) -> int:
        found = self.weights.get(id(value))
        if found is not None:
            return found
        return 1 + len(value) // _CHARS_PER_WEIGHT if isinstance(value, str) else 1

    def _value(
        self,
        value: Any,
        line: int,
        anchor: str | None,
        *,
        is_key_text: str | None,
        closing: bool = False,
    ) -> None:
        if anchor is not None and not closing:
            self.anchors[anchor] = value
        if not self.stack:
            if not self.done:
                self.root, self.done = value, True
            return
        frame = self.stack[-1]
        frame.weight += self._weight(value)
        value_line = line
        if isinstance(frame.container, list):
            frame.lines[len(frame.container)] = (value_line, value_line)
            frame.container.append(value)
            return
        if frame.key is None:
            self._key(frame, value, line, is_key_text)
            return
        key, frame.key = frame.key, None
        if key == "<<" and frame.key_line < 0:
            frame.merges.append((value, -frame.key_line))
            return
        frame.lines[key] = (frame.key_line, value_line)
        frame.container[key] = value

    def _key(self, frame: _Frame, value: Any, line: int, text: str | None) -> None:
        if text is None:
            self._error(line, frame.path, "yaml-key", "mapping keys must be plain strings")
            text = f"<complex key at line {line}>"
        if text == "<<" and value == "<<":
            frame.key, frame.key_line = text, -line  # a merge key; negative marks it
            return
        if text in frame.lines:
            first = frame.lines[text][0]
            self._error(
                line,
                (*frame.path, text),
                "yaml-duplicate-key",
                f"duplicate key '{text}' (first defined on line {first})",
                "YAML keeps only one of them; remove or rename one",
            )
            text = f"<duplicate {text} at line {line}>"
        frame.key, frame.key_line = text, line

    def _merge(self, frame: _Frame) -> None:
        assert isinstance(frame.container, dict)
        for value, line in frame.merges:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    self._error(line, frame.path, "yaml-merge", "'<<' can only merge mappings")
                    continue
                for key, item in source.items():
                    if key not in frame.container:
                        frame.container[key] = item
                        frame.lines[key] = (line, line)
        for key in [k for k in frame.container if k.startswith("<duplicate ")]:
            del frame.container[key]

    def _scalar(self, event: yaml.ScalarEvent, line: int) -> Any:
        text, tag = event.value, event.tag
        plain = event.style in (None, "") and event.implicit[0]
        if (plain or tag == _CORE + "int") and too_long_integer(text, MAX_INT_DIGITS):
            digits = len(text.lstrip("+-"))
            self._error(
                line,
                self._child_path(),
                "yaml-integer",
                f"an integer of {digits:,} digits is too long (at most {MAX_INT_DIGITS})",
                "no parameter takes a number this large; put it in quotes if it is text",
            )
            return text
        if tag in (None, "!"):
            return resolve_plain(text) if plain else text
        if tag == _CORE + "str":
            return text
        kind = tag[len(_CORE) :] if tag.startswith(_CORE) else None
        if kind in ("int", "float", "bool", "null"):
            resolved: Any = resolve_plain(text)
            types: dict[str, type | tuple[type, ...]] = {
                "int": int,
                "float": (int, float),
                "bool": bool,
                "null": type(None),
            }
            wanted = types[kind]
            if isinstance(resolved, wanted) and not (kind == "int" and isinstance(resolved, bool)):
                return float(str(resolved)) if kind == "float" else resolved
            self._error(line, self._child_path(), "yaml-tag", f"'{text}' is not a valid !!{kind}")
            return text
        self._unsupported_tag(tag, line, self._child_path())
        return text

    def _unsupported_tag(self, tag: str, line: int, path: KeyPath) -> None:
        self._error(
            line,
            path,
            "yaml-tag",
            f"unsupported YAML tag '{tag}'",
            "pipelines are plain data: remove the tag",
        )

    def _error(
        self, line: int, path: KeyPath, code: str, message: str, hint: str | None = None
    ) -> None:
        self.diags.error(code, message, Location(self.file, line, path), hint)


def load_yaml(
    text: str,
    file: Path | None,
    diags: Diagnostics,
    max_values: int = MAX_VALUES,
    *,
    depth: int = 0,
) -> tuple[Any, SourceMap]:
    """Parse one YAML document of at most ``max_values`` values. Syntax errors and unsafe
    content become diagnostics. ``depth``: how deep the text's values sit in the document
    it is a part of (``runner.pipeline.yaml_splice``), which counts toward the nesting bound."""
    builder = _Builder(file, diags, max_values, depth)
    loader = _Loader(text)
    try:
        feed, next_event = builder.feed, loader.get_event
        while True:
            event = next_event()  # type: ignore[no-untyped-call]
            if event is None or isinstance(event, yaml.StreamEndEvent):
                break
            feed(event)
    except _Abort:
        return None, SourceMap(file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if "end of stream" in problem and exc.context_mark is not None and exc.context:
            # An unclosed quote or bracket: where it opened says more than the file's end.
            mark, problem = exc.context_mark, f"{problem} ({exc.context} opened here)"
        line = mark.line + 1 if mark is not None else None
        diags.error(
            "yaml-syntax",
            f"YAML syntax error: {problem}",
            Location(file, line),
            "check indentation, colons and quotes around this line",
        )
        return None, SourceMap(file)
    except yaml.YAMLError as exc:
        diags.error("yaml-syntax", f"YAML error: {exc}", Location(file, None))
        return None, SourceMap(file)
    finally:
        loader.dispose()
    values = builder.events + builder.expanded
    return builder.root, SourceMap(file, builder.root, builder.lines, values)


def load_yaml_bytes(
    data: bytes, file: Path | None, diags: Diagnostics, max_values: int = MAX_VALUES
) -> tuple[Any, SourceMap]:
    """Decode (with the line and column of bytes that are not text) and parse ``data``."""
    try:
        text = decode(data)
    except TextProblem as problem:
        diags.error("text", problem.message, Location(file, problem.line), problem.hint)
        return None, SourceMap(file)
    return load_yaml(text, file, diags, max_values)


def read_yaml_file(path: Path, diags: Diagnostics) -> tuple[Any, SourceMap]:
    """Read and parse a trusted file (shotgraph's own data)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        diags.error("file-unreadable", f"cannot read {path}: {exc.strerror}", Location(path))
        return None, SourceMap(path)
    return load_yaml_bytes(data, path, diags)
