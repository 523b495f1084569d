"""Reading a pipeline again after an edit: only the node blocks that changed.

Reading a 5,000-node pipeline whole takes a third of a second, and an edit usually touches
a node or two. The document read last time (its text, values and line maps, kept beside the
compile memo by ``runner.compile.memo``) gives every node block outside the lines that
changed; the blocks those lines fall in are read alone, at their own line numbers, and put
in their place; the blocks after them move by the number of lines added or removed. The
result is the full read's: the same values in the same order, the same lines, the same
number of values (the document's bound).

That holds where the file splits into blocks YAML reads one by one, so on any doubt the
whole file is read:

- a text with what can reach across blocks or change how lines are read: anchors and
  aliases, merge keys, tabs, line breaks other than LF, a byte order mark, directives and
  document markers;
- a document whose ``nodes`` is not a block mapping under a top-level ``nodes:`` line, with
  each node's key at the start of its own line at the same indentation;
- a change outside the node blocks (above the first one, or past the last one);
- re-read blocks that do not start with a key at the nodes' indentation (a flow mapping
  there is not one), hold a line less indented than that, have any finding (the full read
  reports it, with its context), or name a node that another block names too; more values
  than the document may hold.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from runner.errors import Diagnostics
from runner.pipeline.sourcemap import Lines, SourceMap
from runner.pipeline.textfile import TextProblem, decode
from runner.pipeline.yamlsrc import MAX_VALUES, load_yaml, load_yaml_bytes

# What makes a text unsafe to split (see the module docstring): anywhere in it, and at the
# start of a line. Looked for one by one with ``in`` (a scan of memory each): one regular
# expression of them all tries every position of the text, ten times slower.
_UNSAFE = ("&", "*", "\t", "\r", "\x85", "\u2028", "\u2029", "\ufeff", "<<")
_UNSAFE_LINE_STARTS = ("%", "---", "...")
_NODES_LINE = re.compile(r"nodes:[ ]*(?:#.*)?")
_BLANK = re.compile(r"[ ]*(?:#.*)?")
# A line that opens a flow collection (after a tag; two tags are a syntax error anyway):
# read alone, a block starting so is a document of its own, where the file has it in the
# nodes' block mapping.
_FLOW = re.compile(r"[ ]*(?:![^ ]*[ ]+)?[{\[]")
# A document read again from more than this share of new lines is kept as the next one to
# start from; a smaller edit leaves the kept one (writing it costs more than the read saves).
_KEEP_SHARE = 8


@dataclass(frozen=True)
class Document:
    """A pipeline file as read: its text, values, line maps (by ``id()`` of each container)
    and number of values."""

    text: str
    root: dict[str, Any]
    lines: dict[int, Lines]
    values: int

    def state(self) -> tuple[str, dict[str, Any], list[tuple[Any, Lines]], int]:
        """What pickles it: the line maps by container rather than by ``id()``."""
        containers: list[tuple[Any, Lines]] = []
        _containers(self.root, self.lines, containers)
        return self.text, self.root, containers, self.values

    @classmethod
    def from_state(cls, state: Any) -> Document | None:
        """The document :meth:`state` gave, as unpickled; None when it is not one."""
        if not (isinstance(state, tuple) and len(state) == 4):
            return None
        text, root, containers, values = state
        if not (isinstance(text, str) and isinstance(root, dict) and isinstance(values, int)):
            return None
        if not isinstance(containers, list):
            return None
        lines: dict[int, Lines] = {}
        for item in containers:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict)):
                return None
            lines[id(item[0])] = item[1]
        return cls(text, root, lines, values)


@dataclass
class DocumentMemo:
    """The document read last time (``earlier``), and this read's, pickled (``kept``) when
    it should be the one the next read starts from."""

    earlier: Document | None = None
    kept: bytes | None = None

    def keep(self, text: str, source: SourceMap) -> None:
        if isinstance(source.root, dict) and splittable(text):
            document = Document(text, source.root, source.lines, source.values)
            # Now, before the loader changes anything in it.
            self.kept = pickle.dumps(document.state(), protocol=pickle.HIGHEST_PROTOCOL)


def read_pipeline_yaml(
    data: bytes, file: Path, diags: Diagnostics, memo: DocumentMemo | None
) -> tuple[Any, SourceMap]:
    """``load_yaml_bytes(data)``, starting from ``memo``'s earlier document when it can,
    and leaving this read's document in ``memo`` when it should be kept."""
    if memo is None:
        return load_yaml_bytes(data, file, diags)
    try:
        text = decode(data)
    except TextProblem:
        return load_yaml_bytes(data, file, diags)  # which reports it
    if memo.earlier is not None:
        try:
            spliced = splice(memo.earlier, text, file)
        except (LookupError, TypeError, ValueError, AttributeError):
            spliced = None  # a kept document not as this code keeps one: read it whole
        memo.earlier = None  # its values may be the new document's now
        if spliced is not None:
            source, read_again = spliced
            if read_again * _KEEP_SHARE > text.count("\n"):
                memo.keep(text, source)
            return source.root, source
    before = len(diags.items)
    document, source = load_yaml(text, file, diags)
    if len(diags.items) == before:
        memo.keep(text, source)
    return document, source


def splittable(text: str) -> bool:
    """Whether nothing in ``text`` forbids reading it block by block (the first list of
    the module docstring)."""
    if any(mark in text for mark in _UNSAFE):
        return False
    return not any(text.startswith(start) or f"\n{start}" in text for start in _UNSAFE_LINE_STARTS)


def splice(
    earlier: Document, text: str, file: Path | None, max_values: int = MAX_VALUES
) -> tuple[SourceMap, int] | None:
    """The document of ``text`` (and how many lines were read), built from ``earlier``'s
    and the node blocks that changed; None when that cannot be told to equal the full read.
    ``earlier``'s values become the new document's."""
    if text == earlier.text:
        return SourceMap(file, earlier.root, earlier.lines, earlier.values), 0
    if not splittable(text):
        return None
    old, new = earlier.text.split("\n"), text.split("\n")
    blocks = _blocks(earlier, old)
    if blocks is None:
        return None
    starts, end, indent = blocks
    first = _same_lines(old, new)
    last = len(old) - _same_lines(old[first:][::-1], new[first:][::-1])
    key = re.compile(rf"[ ]{{{indent}}}[^ #].*")
    lo = max((s for s in starts.values() if s <= first), default=None)
    if lo is not None and lo == first and not (first < len(new) and key.fullmatch(new[lo])):
        # Lines inserted before a node's key end the node above it (and a file cut there
        # ends with it).
        lo = max((s for s in starts.values() if s < first), default=None)
    if lo is None:
        return None  # a change above the first node
    hi = min((s for s in starts.values() if s >= last and s > lo), default=end)
    if last > end:
        return None  # a change past the last node
    shift = len(new) - len(old)
    part = new[lo : hi + shift]
    if part and (not key.fullmatch(part[0]) or _FLOW.match(part[0])):
        return None
    if any(not line.startswith(" " * indent) and not _BLANK.fullmatch(line) for line in part):
        return None
    fragment = "\n".join(part) + ("" if hi + shift == len(new) else "\n")
    diags = Diagnostics()
    read, source = load_yaml("\n" * lo + fragment, file, diags, max_values, depth=1)
    if diags.items or not isinstance(read if part else {}, dict):
        return None
    read = read or {}
    root, lines = earlier.root, earlier.lines
    nodes: dict[str, Any] = root["nodes"]
    before = {name: value for name, value in nodes.items() if starts[name] < lo}
    after = {name: value for name, value in nodes.items() if starts[name] >= hi}
    if any(name in before or name in after for name in read):
        return None  # a node named twice: the full read reports it
    gone = [value for name, value in nodes.items() if lo <= starts[name] < hi]
    values = earlier.values + sum(1 + _events(v) for v in read.values())
    values -= sum(1 + _events(v) for v in gone)
    joined = before | read | after
    if values > max_values or not joined:
        return None
    if part and source.lines[id(read)][next(iter(read))][0] != lo + 1:
        return None
    node_lines = lines.pop(id(nodes))
    for value in gone:
        _forget(value, lines)
    lines.update(source.lines)
    lines.pop(id(read), None)
    joined_lines: Lines = {name: node_lines[name] for name in before}
    joined_lines.update(source.lines.get(id(read), {}))
    joined_lines.update({name: _moved(node_lines[name], shift) for name in after})
    if shift:
        for value in after.values():
            _shift(value, lines, shift)
        _shift_after_nodes(root, lines, shift)
    root["nodes"] = joined
    lines[id(joined)] = joined_lines
    return SourceMap(file, root, lines, values), len(part)


def _blocks(earlier: Document, old: list[str]) -> tuple[dict[str, int], int, int] | None:
    """Where each node's block starts (0-based line), where the last one ends, and the
    nodes' indentation; None when ``nodes`` is not laid out one block per node."""
    root, lines = earlier.root, earlier.lines
    nodes = root.get("nodes")
    root_lines, node_lines = lines.get(id(root)), lines.get(id(nodes))
    if not (isinstance(nodes, dict) and nodes and root_lines and node_lines):
        return None
    if not old or old[0].startswith(("{", "[")) or "nodes" not in root_lines:
        return None  # a flow mapping at the top
    key_line, value_line = root_lines["nodes"]
    if not _NODES_LINE.fullmatch(old[key_line - 1]):
        return None
    starts = {name: node_lines[name][0] - 1 for name in nodes}
    order = list(starts.values())
    if order[0] != value_line - 1 or any(a >= b for a, b in pairwise(order)):
        return None
    first_line = old[order[0]]
    indent = len(first_line) - len(first_line.lstrip(" "))
    for name, start in starts.items():
        line = old[start]
        if indent == 0 or not line.startswith(f"{' ' * indent}{name}:") or line[indent] == " ":
            return None
    keys = list(root)
    after = keys.index("nodes") + 1
    end = root_lines[keys[after]][0] - 1 if after < len(keys) else len(old)
    return starts, end, indent


def _same_lines(old: list[str], new: list[str]) -> int:
    """How many lines ``old`` and ``new`` begin with alike."""
    count = 0
    for a, b in zip(old, new, strict=False):
        if a != b:
            break
        count += 1
    return count


def _events(value: Any) -> int:
    """The parser events of a value (no aliases or merges: the text has none)."""
    if isinstance(value, dict):
        return 2 + sum(1 + _events(item) for item in value.values())
    if isinstance(value, list):
        return 2 + sum(_events(item) for item in value)
    return 1


def _containers(value: Any, lines: dict[int, Lines], into: list[tuple[Any, Lines]]) -> None:
    if isinstance(value, dict | list):
        into.append((value, lines.get(id(value), {})))
        for item in value.values() if isinstance(value, dict) else value:
            _containers(item, lines, into)


def _forget(value: Any, lines: dict[int, Lines]) -> None:
    if isinstance(value, dict | list):
        lines.pop(id(value), None)
        for item in value.values() if isinstance(value, dict) else value:
            _forget(item, lines)


def _moved(where: tuple[int, int], shift: int) -> tuple[int, int]:
    return where[0] + shift, where[1] + shift


def _shift(value: Any, lines: dict[int, Lines], shift: int) -> None:
    if isinstance(value, dict | list):
        mine = lines.get(id(value))
        if mine is not None:
            lines[id(value)] = {key: _moved(where, shift) for key, where in mine.items()}
        for item in value.values() if isinstance(value, dict) else value:
            _shift(item, lines, shift)


def _shift_after_nodes(root: dict[str, Any], lines: dict[int, Lines], shift: int) -> None:
    """Move the top-level keys after ``nodes`` (and their values) by ``shift`` lines."""
    keys = list(root)
    later = keys[keys.index("nodes") + 1 :]
    root_lines = dict(lines[id(root)])
    for key in later:
        root_lines[key] = _moved(root_lines[key], shift)
        _shift(root[key], lines, shift)
    lines[id(root)] = root_lines
