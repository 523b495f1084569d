"""Reading only the node blocks an edit changed (``runner.pipeline.yaml_splice``): after
every edit, either the spliced document is the full read's (values, key order, every line,
the number of values), or the splice declines and the full read decides."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from runner.compile.memo_payload import unpickle
from runner.errors import Diagnostics
from runner.pipeline import yamlsrc
from runner.pipeline.sourcemap import SourceMap
from runner.pipeline.yaml_splice import (
    Document,
    DocumentMemo,
    read_pipeline_yaml,
    splice,
    splittable,
)
from runner.pipeline.yamlsrc import load_yaml

FILE = Path("/project/p.yaml")
BASE = """\
version: 1
name: spliced
vars: {who: mara}
nodes:
  a:
    kind: t2v
    prompt: a cat
    params: {seed: 1, size: [1, 2]}
  # a comment between nodes
  b:
    kind: i2v
    prompt: |
      two
      lines
    image: {keyframe: mara.front}

  c:
    kind: extend
    video: b
    list:
      - x
      - y: 1
        z: 2
  d:
    kind: t2v
    prompt: "quoted
      over lines"
outputs:
  final: c
"""


def full(text: str, max_values: int = yamlsrc.MAX_VALUES) -> tuple[Any, SourceMap, Diagnostics]:
    diags = Diagnostics()
    value, source = load_yaml(text, FILE, diags, max_values)
    return value, source, diags


def remembered(text: str) -> Document:
    """The document of ``text`` as the memo keeps it and reads it back."""
    _, source, diags = full(text)
    assert not diags.items
    memo = DocumentMemo()
    memo.keep(text, source)
    assert memo.kept is not None
    document = Document.from_state(unpickle(memo.kept))
    assert document is not None
    return document


def shape(value: Any, source: SourceMap) -> Any:
    """Everything a read gives, in plain values: keys in order, each with its lines."""
    lines = source.lines
    if isinstance(value, dict):
        mine = lines[id(value)]
        return {"map": [(k, mine[k], shape(v, source)) for k, v in value.items()]}
    if isinstance(value, list):
        mine = lines[id(value)]
        return {"seq": [(i, mine[i], shape(v, source)) for i, v in enumerate(value)]}
    return repr(value)


def spliced(before: str, after: str, max_values: int = yamlsrc.MAX_VALUES) -> SourceMap | None:
    """The splice of ``after`` from ``before``'s document, checked against the full read."""
    got = splice(remembered(before), after, FILE, max_values)
    value, source, diags = full(after, max_values)
    if got is None:
        return None
    assert not diags.items, "a text the full read finds fault with was spliced"
    assert shape(got[0].root, got[0]) == shape(value, source)
    assert got[0].values == source.values
    assert got[0].file == FILE
    return got[0]


BENIGN = {
    "a value": ("prompt: a cat", "prompt: a dog"),
    "a line added": ("    video: b\n", "    video: b\n    seed: 3\n"),
    "lines removed": ("      - x\n", ""),
    "a node renamed": ("  c:\n", "  e:\n"),
    "a node added": ("\n  c:\n", "\n  new:\n    kind: t2v\n    prompt: hi\n  c:\n"),
    "a node removed": (
        "  c:\n    kind: extend\n    video: b\n    list:\n      - x\n      - y: 1\n        z: 2\n",
        "",
    ),
    "the last node": ('"quoted\n      over lines"', '"quoted\n      over\n      three lines"'),
    "a node appended": ("outputs:", "  f:\n    kind: t2v\noutputs:"),
    "a kept block scalar": ("    prompt: a cat\n", "    prompt: |+\n      kept\n\n"),
    "a comment in a node": ("    kind: i2v\n", "    kind: i2v\n    # why\n"),
    "a flow mapping across two edited nodes": (
        "    params: {seed: 1, size: [1, 2]}\n  # a comment between nodes\n  b:\n    kind: i2v",
        "    params: {seed: 1,\n      size: [1, 2]}\n  b:\n    kind: v2v",
    ),
    "the first node's key": ("  a:\n", "  first:\n"),
    "a node's block scalar made folded": ("    prompt: |\n", "    prompt: >-\n"),
    "lines inserted before a node's key": ("  d:\n", "        w: 3\n\n  d:\n"),
    "an empty block scalar before a key": ("    prompt: a cat\n", "    prompt: |\n"),
}


@pytest.mark.parametrize("edit", sorted(BENIGN))
def test_an_edit_inside_node_blocks_is_spliced_as_the_full_read(edit: str) -> None:
    old, new = BENIGN[edit]
    assert old in BASE
    assert spliced(BASE, BASE.replace(old, new, 1)) is not None


def test_lines_after_an_edit_move_exactly() -> None:
    source = spliced(BASE, BASE.replace("    video: b\n", "    video: b\n    a: 1\n    b: 2\n"))
    assert source is not None
    assert source.locate(("nodes", "d", "prompt")).line == 26 + 2
    assert source.locate(("outputs", "final")).line == 29 + 2


HOSTILE = {
    "a node renamed to an existing name": ("  c:\n", "  a:\n"),
    "a duplicate key in a node": ("    kind: t2v\n", "    kind: t2v\n    kind: i2v\n"),
    "a flow mapping left open into the next node": ("size: [1, 2]}", "size: [1, 2],"),
    "a quote left open into the next node": ("prompt: a cat", 'prompt: "a cat'),
    "an anchor in one node, an alias in another": ("prompt: a cat", "prompt: &p a cat"),
    "an alias": ("video: b", "video: *b"),
    "a merge key": ("    kind: extend\n", "    <<: {seed: 1}\n    kind: extend\n"),
    "a tab": ("    kind: extend", "\tkind: extend"),
    "a carriage return": ("prompt: a cat\n", "prompt: a cat\r\n"),
    "a byte order mark": ("version: 1", "\ufeffversion: 1"),
    "a document marker": ("  d:\n", "---\n  d:\n"),
    "a document end marker": ("  d:\n", "...\n  d:\n"),
    "a directive": ("  d:\n", "%TAG ! tag:x,2024:\n  d:\n"),
    "a next line character": ("prompt: a cat", "prompt: a\x85cat"),
    "a line separator": ("prompt: a cat", "prompt: a\u2028cat"),
    "a paragraph separator": ("prompt: a cat", "prompt: a\u2029cat"),
    "a top-level key": ("name: spliced", "name: changed"),
    "the nodes line": ("nodes:\n", "nodes: # all\n"),
    "a top-level key after the nodes": ("final: c", "final: d"),
    "a top-level key inside the nodes": ("  d:\n", "extra: 1\n  d:\n"),
    "a node indented differently": ("  c:\n    kind: extend", "   c:\n    kind: extend"),
    "an unsupported tag": ("prompt: a cat", "prompt: !!python/name:os.system a"),
    "a line less indented than the nodes": ("      - x\n", " - x\n"),
}


@pytest.mark.parametrize("edit", sorted(HOSTILE))
def test_an_edit_that_may_reach_across_blocks_is_read_whole(edit: str) -> None:
    old, new = HOSTILE[edit]
    assert old in BASE
    assert spliced(BASE, BASE.replace(old, new, 1)) is None


def test_a_layout_it_cannot_split_is_read_whole() -> None:
    flow = "version: 1\nnodes: {a: {kind: t2v}, b: {kind: t2v}}\n"
    assert spliced(flow, flow.replace("b: {kind: t2v}", "b: {kind: i2v}")) is None
    quoted = BASE.replace("  a:\n", '  "a":\n')
    assert spliced(quoted, quoted.replace("a cat", "a dog")) is None
    below = "version: 1\nnodes:\n  {a: {kind: t2v},\n  b: {kind: t2v}}\n"
    assert spliced(below, below.replace("b: {kind: t2v}", "b: {kind: i2v}")) is None


def test_the_bound_on_values_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    grown = BASE.replace("    video: b\n", "    video: b\n    more: [1, 2, 3]\n")
    _, source, _ = full(grown)
    assert spliced(BASE, grown, max_values=source.values) is not None
    assert spliced(BASE, grown, max_values=source.values - 1) is None
    monkeypatch.setattr(yamlsrc, "MAX_DEPTH", 5)  # a list's item in c is five deep
    assert spliced(BASE, BASE.replace("video: b", "video: {x: {y: {z: 1}}}")) is None
    assert spliced(BASE, BASE.replace("video: b", "video: {x: 1}")) is not None


def test_no_trailing_line_break() -> None:
    text = BASE.replace("outputs:\n  final: c\n", "")[:-1]
    assert spliced(text, text.replace("over lines", "over a line")) is not None
    assert spliced(text, text + "\n") is not None


POOL = [
    "  x:",
    "  a:",
    "    k: v",
    "    - item",
    "    kind: t2v",
    "  e: {a: 1,",
    "    }",
    "    prompt: |",
    "    prompt: >+",
    "      text",
    "    q: 'open",
    "    q: 'closed'",
    "",
    "# c",
    "  # c",
    "z: top",
    "   odd: 1",
    " bad: 1",
    "    s: !!str 1",
    "    n: !!int x",
    "    a: &x 1",
    "    b: *x",
    "\tt: 1",
    "    dup: 1",
    "    <<: {m: 1}",
    "      deep: [1, {2: 3}]",
    "---",
    '    q: "line',
    '      more"',
]


def test_random_edits_splice_as_the_full_read() -> None:
    chance = random.Random(13)
    lines = BASE.split("\n")
    spliced_count = 0
    for _ in range(600):
        edited = list(lines)
        for _ in range(chance.randint(1, 3)):
            at = chance.randrange(len(edited))
            operation = chance.choice(("replace", "insert", "delete"))
            if operation == "delete" and len(edited) > 1:
                del edited[at]
            elif operation == "insert":
                edited.insert(at, chance.choice(POOL))
            else:
                edited[at] = chance.choice(POOL)
        if spliced(BASE, "\n".join(edited)) is not None:
            spliced_count += 1
    assert spliced_count > 60  # the fast path is taken, and checked, often


def test_a_read_keeps_its_document_until_the_next_one_is_far_from_it() -> None:
    memo = DocumentMemo()
    document, _ = read_pipeline_yaml(BASE.encode(), FILE, Diagnostics(), memo)
    assert document["nodes"]["a"]["prompt"] == "a cat"
    assert memo.kept is not None  # read whole: kept
    more = "".join(f"  n{i}:\n    kind: t2v\n" for i in range(20))
    longer = BASE.replace("outputs:", f"{more}outputs:")
    small = DocumentMemo(remembered(longer))
    document, _ = read_pipeline_yaml(
        longer.replace("a cat", "a dog").encode(), FILE, Diagnostics(), small
    )
    assert document["nodes"]["a"]["prompt"] == "a dog"
    assert small.kept is None  # a few lines read again: the earlier one still serves
    rewritten = longer.replace("    kind: ", "    kind:  ")
    large = DocumentMemo(remembered(longer))
    read_pipeline_yaml(rewritten.encode(), FILE, Diagnostics(), large)
    assert large.kept is not None


def test_a_text_it_cannot_split_is_not_kept() -> None:
    memo = DocumentMemo()
    read_pipeline_yaml(BASE.replace("a cat", "&x a cat").encode(), FILE, Diagnostics(), memo)
    assert memo.kept is None
    broken = DocumentMemo()
    diags = Diagnostics()
    read_pipeline_yaml(BASE.replace("  c:\n", "  a:\n").encode(), FILE, diags, broken)
    assert diags.items and broken.kept is None


def test_a_kept_document_that_does_not_fit_its_text_is_not_trusted() -> None:
    kept = remembered(BASE)
    lines = dict(kept.lines)
    lines[id(kept.root["nodes"])] = {"elsewhere": (1, 1)}  # its nodes' lines lost
    damaged = Document(kept.text, kept.root, lines, kept.values)
    memo = DocumentMemo(damaged)
    edited = BASE.replace("a cat", "a dog")
    document, source = read_pipeline_yaml(edited.encode(), FILE, Diagnostics(), memo)
    value, expected, _ = full(edited)
    assert shape(document, source) == shape(value, expected)
    assert Document.from_state(("text", {}, [("not a pair",)], 1)) is None
    assert Document.from_state(["text", {}, [], 1]) is None


def test_a_spliced_document_kept_then_spliced_again_stays_the_full_read() -> None:
    """A big edit keeps the spliced document as the next one to start from: edits on
    edits must still give the full read."""
    chance = random.Random(31)
    chained = 0
    for _ in range(150):
        text = BASE
        kept = remembered(text)
        for _ in range(5):
            lines = text.split("\n")
            at = chance.randrange(len(lines))
            lines.insert(at, chance.choice([*POOL, "    k: v", "  m:", "    kind: t2v"]))
            edited = "\n".join(lines)
            got = splice(kept, edited, FILE)
            if got is None:
                break
            value, source, diags = full(edited)
            assert not diags.items
            assert shape(got[0].root, got[0]) == shape(value, source)
            assert got[0].values == source.values
            memo = DocumentMemo()
            memo.keep(edited, got[0])
            assert memo.kept is not None
            again = Document.from_state(unpickle(memo.kept))
            assert again is not None
            text, kept = edited, again
            chained += 1
    assert chained > 50


@pytest.mark.parametrize("mark", ["&", "*", "\t", "\r", "\x85", "\u2028", "\u2029", "\ufeff", "<<"])
def test_a_text_with_a_mark_that_reaches_across_blocks_anywhere_is_not_split(mark: str) -> None:
    for text in (f"{mark}a: 1\n", f"a: 1\nb: x{mark}y\n", f"a: é\nb: {mark}\n"):
        assert not splittable(text)
    assert splittable("a: é\nb: x < y\n")


@pytest.mark.parametrize("start", ["%", "---", "..."])
def test_a_directive_or_document_marker_at_a_line_start_is_not_split(start: str) -> None:
    assert not splittable(f"{start}\na: 1\n") and not splittable(f"a: 1\n{start} b\n")
    assert splittable(f"a: 1\nb: x{start}y\n") and splittable(f"a: 1\n {start}\n")
