"""Safe YAML loading that remembers where every value came from.

PyYAML's C composer builds the node tree (fast, safe); we construct plain Python values
ourselves so that we can report duplicate keys, refuse unsafe tags and read YAML the way a
user means it: ``16:9`` is a string (not the base-60 integer 969 of YAML 1.1), and so are
``yes``/``no``/``on``/``off``. The node tree is kept as a :class:`SourceMap` to turn a key path
into a file and line when something needs reporting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runner.errors import Diagnostics, KeyPath, Location

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"

_scalar = yaml.constructor.SafeConstructor()


class SourceMap:
    """Maps key paths of a loaded document back to lines of its file."""

    def __init__(self, file: Path | None, root: yaml.Node | None) -> None:
        self.file = file
        self._root = root
        self._index: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = {}

    def locate(self, path: KeyPath, *, key: bool = False) -> Location:
        """The line of the value at ``path`` (or of its key with ``key=True``).

        When the path goes further than the document (a missing key), the deepest existing
        value's line is used.
        """
        node = self._root
        line = node.start_mark.line + 1 if node is not None else None
        for i, part in enumerate(path):
            if node is None:
                break
            child: yaml.Node | None = None
            key_node: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                key_node, child = self._entries(node).get(part, (None, None))
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                child = node.value[part]
            if child is None:
                break
            last = i == len(path) - 1
            shown = key_node if (last and key and key_node is not None) else child
            line = shown.start_mark.line + 1
            node = child
        return Location(self.file, line, tuple(path))

    def _entries(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        found = self._index.get(id(node))
        if found is None:
            found = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    found.setdefault(str(k.value), (k, v))
            self._index[id(node)] = found
        return found


class _Builder:
    """Turns composed YAML nodes into plain values, collecting problems as it goes."""

    def __init__(self, file: Path | None, diags: Diagnostics) -> None:
        self.file = file
        self.diags = diags
        self._active: set[int] = set()

    def value(self, node: yaml.Node, path: KeyPath) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self._active:
            self._error(node, path, "yaml-recursive", "a YAML alias refers to itself")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ:
                    self._unsupported_tag(node, path)
                return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP:
                    self._unsupported_tag(node, path)
                return self.mapping(node, path)
        finally:
            self._active.discard(id(node))
        return None  # pragma: no cover - the composer makes no other node types

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.update(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._error(key_node, path, "yaml-key", "mapping keys must be plain strings")
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first_line:
                self._error(
                    key_node,
                    (*path, key),
                    "yaml-duplicate-key",
                    f"duplicate key '{key}' (first defined on line {first_line[key]})",
                    "YAML keeps only one of them; remove or rename one",
                )
                continue
            first_line[key] = line
            out[key] = self.value(value_node, (*path, key))
        for key, value in merged.items():
            out.setdefault(key, value)
        return out

    def _merge_sources(self, node: yaml.Node, path: KeyPath) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            value = self.value(source, path)
            if isinstance(value, dict):
                merged.update(value)
            else:
                self._error(source, path, "yaml-merge", "'<<' can only merge mappings")
        return merged

    def scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        tag, text = node.tag, node.value
        if tag in (_STR, _TIMESTAMP):
            return str(text)
        if tag == _NULL:
            return None
        if tag == _BOOL:
            # YAML 1.2: only true/false are booleans; yes/no/on/off stay words.
            lowered = text.lower()
            return lowered == "true" if lowered in ("true", "false") else text
        if tag in (_INT, _FLOAT):
            if ":" in text:  # YAML 1.1 base 60 (16:9 -> 969); a user means the text
                return text
            return _scalar.yaml_constructors[tag](_scalar, node)
        self._unsupported_tag(node, path)
        return text

    def _unsupported_tag(self, node: yaml.Node, path: KeyPath) -> None:
        self._error(
            node,
            path,
            "yaml-tag",
            f"unsupported YAML tag '{node.tag}'",
            "pipelines are plain data: remove the tag",
        )

    def _error(
        self, node: yaml.Node, path: KeyPath, code: str, message: str, hint: str | None = None
    ) -> None:
        location = Location(self.file, node.start_mark.line + 1, path)
        self.diags.error(code, message, location, hint)


def load_yaml(text: str, file: Path | None, diags: Diagnostics) -> tuple[Any, SourceMap]:
    """Parse one YAML document. Syntax errors and unsafe content become diagnostics."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        diags.error(
            "yaml-syntax",
            f"YAML syntax error: {problem}",
            Location(file, line),
            "check indentation, colons and quotes around this line",
        )
        return None, SourceMap(file, None)
    except yaml.YAMLError as exc:
        diags.error("yaml-syntax", f"YAML error: {exc}", Location(file, None))
        return None, SourceMap(file, None)
    finally:
        loader.dispose()
    if root is None:
        return None, SourceMap(file, None)
    return _Builder(file, diags).value(root, ()), SourceMap(file, root)


def read_yaml_file(path: Path, diags: Diagnostics) -> tuple[Any, SourceMap]:
    """Read and parse ``path``; a file that cannot be read is a diagnostic too."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        diags.error("file-missing", f"no such file: {path}", Location(path))
        return None, SourceMap(path, None)
    except (OSError, UnicodeDecodeError) as exc:
        diags.error("file-unreadable", f"cannot read {path}: {exc}", Location(path))
        return None, SourceMap(path, None)
    return load_yaml(text, path, diags)
