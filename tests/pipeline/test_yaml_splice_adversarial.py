"""An adversary's edits to a pipeline whose document the memo kept
(``runner.pipeline.yaml_splice``): whatever the edit, reading the new file from the kept
document gives exactly what reading it whole gives (values and their types, key order,
every line, the number of values, every finding with its file, line, key path and hint),
and a file the whole read refuses is refused the same way."""

from __future__ import annotations

import codecs
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.commands import validate_cmd
from runner.compile.memo_payload import unpickle
from runner.errors import Diagnostics
from runner.pipeline import load, yaml_splice, yamlsrc
from runner.pipeline.load import load_pipeline
from runner.pipeline.yaml_splice import Document, DocumentMemo, read_pipeline_yaml, splice
from runner.pipeline.yamlsrc import load_yaml, load_yaml_bytes
from runner.store import Store
from tests.helpers import HEAD, project
from tests.pipeline.test_yaml_splice import shape  # repr tells 1, '1', True and None apart

FILE = Path("/project/p.yaml")
# Each node's block ends where the next one's key is; the lines of each are noted on the
# right (1-based) for the edits below.
BASE = """\
version: 1
name: adversary
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
    note: say "hi" and 'bye'

  c:
    kind: extend
    video: b
    list:
    - x
    - y: 1
      z: 2
  d: plain
    continued
  e:
    kind: t2v
    empty:
outputs:
  final: c
"""
# The same nodes, last in the file (no key after them).
LAST = BASE.split("outputs:", 1)[0]


def findings(diags: Diagnostics) -> list[tuple[Any, ...]]:
    """Each finding as a user sees it: severity, code, message, file, line, key path, hint."""
    return [(d.severity, d.code, d.message, d.location, d.hint) for d in diags.items]


def kept(text: str) -> bytes:
    """The document of ``text`` as the memo keeps it."""
    memo = DocumentMemo()
    diags = Diagnostics()
    read_pipeline_yaml(text.encode(), FILE, diags, memo)
    assert not diags.items and memo.kept is not None
    return memo.kept


def remembered(text: str | bytes) -> Document:
    """The document of ``text`` as the memo keeps it and reads it back (a splice makes its
    values the new document's: one read back per splice)."""
    document = Document.from_state(unpickle(kept(text) if isinstance(text, str) else text))
    assert document is not None
    return document


def whole(data: bytes) -> tuple[Any, int, list[tuple[Any, ...]]]:
    diags = Diagnostics()
    value, source = load_yaml_bytes(data, FILE, diags)
    return (shape(value, source) if value is not None else None), source.values, findings(diags)


@contextmanager
def splices() -> Iterator[list[bool]]:
    """Whether each splice while in the block answered (rather than declining to the whole
    read). A splice may decline, never raise: the command would read whole, but the splice
    lost its way."""
    answered: list[bool] = []
    real = yaml_splice.splice

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            got = real(*args, **kwargs)
        except Exception as exc:
            raise AssertionError(f"the splice raised {exc!r}") from exc
        answered.append(got is not None)
        return got

    yaml_splice.splice = spy
    try:
        yield answered
    finally:
        yaml_splice.splice = real


def alike(earlier: Document, data: bytes) -> tuple[bool, DocumentMemo]:
    """Read ``data`` from ``earlier`` as a command does and check it against the whole read;
    whether the splice answered."""
    memo = DocumentMemo(earlier)
    diags = Diagnostics()
    with splices() as answered:
        value, source = read_pipeline_yaml(data, FILE, diags, memo)
    got = (shape(value, source) if value is not None else None), source.values, findings(diags)
    assert got == whole(data)
    return answered == [True], memo


def after(old: str, new: str, text: str = BASE, count: int = 1) -> str:
    assert text.count(old) >= count, old
    return text.replace(old, new, count)


# Edits the splice must take (the fast path is what is checked) and get right.
TAKEN = {
    "a child dedented to the nodes' level becomes a node": after("    empty:\n", "  empty:\n"),
    "a blank line with trailing spaces at a block boundary": after("\n  c:\n", "\n   \n  c:\n"),
    "a comment at column 0 at a block boundary": after("  b:\n", "# here\n  b:\n"),
    "an indented comment with trailing spaces before a key": after(
        "  d: plain", "      w: 3\n  # c   \n  d: plain"
    ),
    "a block scalar whose lines look like the next node": after(
        "    note: say \"hi\" and 'bye'\n", "    note: |\n      c:\n        kind: t2v\n"
    ),
    "a folded scalar kept to the next key": after("    empty:\n", "    empty: >+\n      x\n\n"),
    "a node's value made a block scalar": after("  d: plain\n    continued\n", "  d: |\n   x\n"),
    "a plain scalar continued up to the next key": after(
        "    continued\n", "    continued\n   still\n"
    ),
    "a flow mapping over lines that look like keys": after(
        "    params: {seed: 1, size: [1, 2]}\n",
        "    params: {seed: 1,\n  b: 2,\n    c: 3}\n",
    ),
    "a quoted string over lines that look like keys": after(
        "    prompt: a cat\n", '    prompt: "a cat\n  b: no\n    c: no"\n'
    ),
    "edits in two distant blocks": after("a cat", "a dog").replace("empty:", "empty: 0"),
    "a node removed and another added in as many lines": after(
        "  c:\n    kind: extend\n    video: b\n",
        "  c2:\n    kind: extend\n    video: a\n",
    ),
    "a node named with letters beyond ASCII": after("  d: plain", "  dé😀: plain"),
    "a value with a no-break space at its start": after("a cat", "\u00a0a cat"),
    "types changed: int, bool, null, float, text": after(
        "    empty:\n", "    i: 07\n    b: true\n    n: ~\n    f: 1e3\n    s: yes\n    t: 16:9\n"
    ),
    "the last key's value emptied": after("    kind: t2v\n    empty:\n", "    kind:\n    empty:\n"),
    "an explicit key in a node": after("    empty:\n", "    ? k\n    : v\n"),
    "an indentless list at the nodes' level": after("  d: plain\n    continued\n", "  d:\n  - x\n"),
}


@pytest.mark.parametrize("name", sorted(TAKEN))
def test_an_edit_the_splice_takes_reads_as_the_whole_file(name: str) -> None:
    taken, _ = alike(remembered(BASE), TAKEN[name].encode())
    assert taken


# Edits read whole, or spliced; either way the result is the whole read's.
EITHER = {
    "a node's key indented one more": after("  c:\n", "   c:\n"),
    # A flow mapping at the nodes' indentation is a whole document when read alone, and
    # a syntax error in the middle of a block mapping.
    "a node replaced by a flow mapping": after("  d: plain\n    continued\n", "  {x: 1}\n"),
    "the last node replaced by a flow mapping": after(
        "  e:\n    kind: t2v\n    empty:\n", "  {x: 1}\n  # c\n"
    ),
    "the first node replaced by a flow mapping over lines": after(
        "  a:\n    kind: t2v\n    prompt: a cat\n    params: {seed: 1, size: [1, 2]}\n",
        "  {x: 1,\n    y: 2}\n",
    ),
    "a node replaced by a tagged flow mapping": after(
        "  d: plain\n    continued\n", "  !!map  {d: plain}\n"
    ),
    "a node replaced by an empty flow mapping": after("  d: plain\n    continued\n", "  {}\n"),
    "a child dedented to the nodes' level in a node": after("    video: b\n", "  video: b\n"),
    "a node's key indented one less": after("  c:\n", " c:\n"),
    "a child dedented to the top level": after("    video: b\n", "video: b\n"),
    "a child indented by one less than its siblings": after("    video: b\n", "   video: b\n"),
    "a node made a flow mapping left open into the next": after(
        "  b:\n    kind: i2v\n", "  b: {kind: i2v,\n"
    ),
    "a flow list left open up to a bracket in the next node": after(
        "    kind: extend\n", "    kind: [extend,\n"
    ),
    "a quote opened that a later node's text would close": after("a cat", '"a cat'),
    "a single quote opened up to the next node's": after("    video: b\n", "    video: 'b\n"),
    "a block scalar at the nodes' level with an indentation indicator": after(
        "  d: plain\n    continued\n", "  d: |1\n  e2: x\n"
    ),
    "a plain scalar continued at the nodes' indentation": after(
        "    continued\n", "    continued\n  e: more\n"
    ),
    "a nodes key repeated at the top": after("  e:\n", "nodes:\n  e:\n"),
    "a nodes key as a node": after("  e:\n", "  nodes:\n  e:\n"),
    "the nodes key moved below outputs": after(
        "outputs:\n  final: c\n", "outputs:\n  final: c\nnodes:\n  z: 1\n"
    ),
    "a document end marker": after("  e:\n", "...\n  e:\n"),
    "a document start marker": after("  e:\n", "---\n  e:\n"),
    "a marker at the end": BASE + "---\n",
    "an indented marker": after("    empty:\n", "    ---\n    empty:\n"),
    "a duplicate node name": after("  d: plain", "  a: plain"),
    "a duplicate node name, both in the edit": after("  d: plain", "  a:\n  a: plain"),
    "a duplicate key in a node": after("    empty:\n", "    empty:\n    kind: t2v\n"),
    "a next line and a line separator": after("a cat", "a\x85cat\u2028x"),
    "a tab in a blank line": after("\n  c:\n", "\n\t\n  c:\n"),
    "a key that is not text": after("    empty:\n", "    [a]: 1\n"),
    "an integer too long": after("    empty:\n", "    seed: " + "9" * 101 + "\n"),
    "an unknown tag": after("    empty:\n", "    empty: !!binary aGk=\n"),
    "a bad !!int": after("    empty:\n", "    empty: !!int x\n"),
    "the first node's key changed to a comment": after("  a:\n", "  # a:\n"),
    "lines added between nodes: and the first node": after("nodes:\n", "nodes:\n  # new\n"),
    "an edit outside every node": after("name: adversary", "name: other"),
    "every node rewritten": after("    ", "     ", count=12),
    "a list at the nodes' level": after("  e:\n", "  - e\n  e:\n"),
    "a key with an empty name": after("  d: plain", "  : x\n  d: plain"),
}


@pytest.mark.parametrize("name", sorted(EITHER))
def test_an_edit_that_may_reach_across_blocks_reads_as_the_whole_file(name: str) -> None:
    alike(remembered(BASE), EITHER[name].encode())


END = {
    "the last node's value with no line break": LAST.replace("    empty:\n", "    empty: 1"),
    "the last node emptied, no line break": LAST.replace("    empty:\n", "    empty:"),
    "a line break added": LAST + "\n",
    "line breaks added after an empty value": LAST + "\n\n",
    "the line break removed": LAST[:-1],
    "spaces after the last line": LAST + "   ",
    "a comment at column 0 at the end": LAST + "# the end",
    "a top-level key appended": LAST + "outputs: {final: c}\n",
    "a node appended with no line break": LAST + "  f: {kind: t2v}",
    "the last node removed": LAST.replace("  e:\n    kind: t2v\n    empty:\n", ""),
}


@pytest.mark.parametrize("name", sorted(END))
def test_an_edit_at_the_end_of_the_file_reads_as_the_whole_file(name: str) -> None:
    alike(remembered(LAST), END[name].encode())
    alike(remembered(LAST[:-1]), END[name].encode())


@pytest.mark.parametrize(
    "data",
    [
        after("a cat", "a c\udcaat").encode("utf-8", "surrogatepass"),
        after("a cat", "a \U0001f408").encode("utf-8"),
        codecs.BOM_UTF16_LE + after("a cat", "a dog").encode("utf-16-le"),
        codecs.BOM_UTF8 + after("a cat", "a dog").encode(),
        after("a cat", "a\x00cat").encode(),
        after("a cat", "a cat\r").encode(),
    ],
    ids=["surrogate", "astral", "utf-16", "utf-8 bom", "nul", "cr"],
)
def test_bytes_that_are_not_plain_utf8_read_as_the_whole_file(data: bytes) -> None:
    alike(remembered(BASE), data)


def test_a_surrogate_given_as_text_is_refused_not_spliced() -> None:
    kept = remembered(BASE)
    try:
        got = splice(kept, after("a cat", "a c\udcaat"), FILE)
    except (UnicodeError, ValueError):
        return  # read_pipeline_yaml reads it whole
    assert got is None


def test_the_value_bound_crossed_only_by_the_whole_file() -> None:
    grown = after("    empty:\n", "    empty: [1, 2, 3, 4]\n")
    _, values, _ = whole(grown.encode())
    refused = Diagnostics()
    load_yaml(grown, FILE, refused, values - 1)
    assert [d.code for d in refused.items] == ["yaml-size"]
    # The edited block alone is far below the bound; the whole document is one over it.
    assert splice(remembered(BASE), grown, FILE, max_values=values - 1) is None
    got = splice(remembered(BASE), grown, FILE, max_values=values)
    assert got is not None and got[0].values == values


def test_the_depth_bound_crossed_only_in_the_whole_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # c's list item is at depth 4 (root, nodes, c, list, item): a mapping in it is the 6th.
    deeper = after("      z: 2\n", "      z: {w: 1}\n")
    monkeypatch.setattr(yamlsrc, "MAX_DEPTH", 5)
    assert whole(deeper.encode())[2], "the bound is crossed"
    alike(remembered(BASE), deeper.encode())
    monkeypatch.setattr(yamlsrc, "MAX_DEPTH", 6)
    assert alike(remembered(BASE), deeper.encode())[0]


def test_a_kept_document_of_another_file_reads_as_the_whole_file() -> None:
    other = BASE.replace("adversary", "other").replace("  c:\n", "  cc:\n")
    wider = "nodes:\n    a:\n        kind: t2v\n    b: {kind: t2v}\n"
    for text in (other, LAST, wider, "nodes:\n  z: 1\n"):
        alike(remembered(BASE), text.encode())
        alike(remembered(text), BASE.encode())


def test_a_file_edited_twice_since_its_document_was_kept() -> None:
    first = after("a cat", "a dog")
    second = after("empty:", "empty: 2", text=first)
    alike(remembered(BASE), second.encode())
    # The document the first splice leaves (kept when most lines were read again) serves the
    # next edit as the whole read's would.
    rewritten = BASE.replace("    kind: ", "    kind:  ")
    taken, memo = alike(remembered(BASE), rewritten.encode())
    assert taken and memo.kept is not None
    spliced = Document.from_state(unpickle(memo.kept))
    assert spliced is not None
    assert spliced.state() == remembered(rewritten).state()
    for text in (after("a cat", "a cow", text=rewritten), LAST, BASE):
        assert alike(spliced, text.encode())[0] or text == LAST


def test_a_bound_of_the_loader_crossed_only_by_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's byte bound, and what the loader checks in the values (here a node
    named twice, an unknown key, too many bytes) come out alike through ``load_pipeline``."""
    root = project(tmp_path / "proj")
    path = root / "p.yaml"
    body = "nodes:\n" + "".join(f"  n{i}:\n    kind: t2v\n    prompt: p{i}\n" for i in range(6))
    path.write_text(HEAD + body)
    earlier = kept(path.read_text())
    edits = [
        body.replace("prompt: p3\n", "prompt: p3\n    bogus: 1\n"),
        body.replace("  n4:\n", "  n1:\n"),
        body.replace("prompt: p5\n", "prompt: " + "x" * 400 + "\n"),
    ]
    monkeypatch.setattr(load, "MAX_PIPELINE_BYTES", len((HEAD + body).encode()) + 100)
    for edited in edits:
        path.write_text(HEAD + edited)
        fresh = Diagnostics()
        expected = load_pipeline(path, fresh)
        reused = Diagnostics()
        got = load_pipeline(path, reused, None, DocumentMemo(remembered(earlier)))
        assert findings(fresh), "the edit crosses a bound"
        assert findings(reused) == findings(fresh)
        assert (got is None) == (expected is None)


CLI_BODY = """nodes:
  shot:
    kind: i2v
    image: {keyframe: mara.front}
    prompt: she looks up
  more:
    kind: extend
    video: {from: shot}
    prompt: she turns then smiles
  last:
    kind: extend
    video: {from: more}
    prompt: she walks away
"""


def test_plan_after_an_edit_prints_what_a_fresh_store_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end: a plan leaves the memo and the document; after an edit, plan and validate
    print what they print with a store where nothing was kept."""
    root = project(tmp_path / "proj")
    path = root / "p.yaml"
    path.write_text(HEAD + CLI_BODY)
    monkeypatch.chdir(root)
    monkeypatch.delenv("SHOTGRAPH_CACHE_DIR", raising=False)

    def said(*args: str) -> tuple[int, str, str]:
        code = cli.run(list(args))
        out = capsys.readouterr()
        return code, out.out, re.sub(r"\d+(\.\d+)? ?(ms|s)\b", "T", out.err)

    shifted = CLI_BODY.replace("she looks up\n", "she looks up\n    seed: 7\n")
    wrong = shifted.replace("she walks away\n", "she walks away\n    bogus: 1\n    seed: x\n")
    store = str(tmp_path / "kept")
    Store.open(Path(store)).close()  # plan opens a store that is there, and makes none
    with splices() as answered:
        assert said("plan", "p.yaml", "--backend", "local", "--cache-dir", store)[0] == 0
        for number, edited in enumerate((shifted, wrong)):
            path.write_text(HEAD + edited)
            args = ["p.yaml", "--backend", "local"]
            fresh = str(tmp_path / f"fresh{number}")
            Store.open(Path(fresh)).close()
            planned = said("plan", *args, "--cache-dir", store)
            assert planned == said("plan", *args, "--cache-dir", fresh)
            assert "p.yaml:14 nodes.more: warning" in planned[2]  # a line the edit moved
            if edited is wrong:
                assert planned[0] == 1 and "nodes.last.bogus: error" in planned[2], planned
            if edited is shifted:  # validate answers from the memo the plan left (and opens none)
                monkeypatch.setenv("SHOTGRAPH_CACHE_DIR", store)
                fresh_check = validate_cmd.checked
                monkeypatch.setattr(validate_cmd, "checked", None)  # it must not check afresh
                from_memo = said("validate", *args)
                monkeypatch.setattr(validate_cmd, "checked", fresh_check)
                monkeypatch.setenv("SHOTGRAPH_CACHE_DIR", str(tmp_path / "none"))
                assert from_memo == said("validate", *args)
    assert True in answered  # the splice answered at least once, and was checked


def test_the_last_nodes_cut_off_with_the_line_break_do_not_crash_the_splice() -> None:
    """A file cut just before a node's key, its last line break too: no line is left where
    the first node read again would start. The splice answers as the whole read, or
    declines; it does not raise (a command would still read the file whole, but a splice
    that raises has lost track of the lines)."""
    cut = LAST.split("  e:\n", 1)[0][:-1]
    for earlier in (LAST, LAST[:-1]):
        got = splice(remembered(earlier), cut, FILE)
        _, values, found = whole(cut.encode())
        assert not found
        if got is not None:
            assert got[0].values == values
        assert alike(remembered(earlier), cut.encode())[0]


# Blocks a stranger could put in place of a node's, or between two: each is one document
# when read alone, and often not the same thing in the file.
BLOCKS = [
    "  {x: 1}",
    "  !!map {x: 1}",
    "  [x]",
    "  {}",
    "  x",
    "  x:",
    "  x: 1\n  x: 2",
    "  ? x\n  : 1",
    "  : 1",
    "  - x",
    "  !!str",
    "  ! x: 1",
    "  !!map\n  x: 1",
    "  x: |\n   t",
    "  x: >+\n\n",
    "  x: 'a\n  b'",
    '  x: "a\n  b: c"',
    "  x: {a: 1,\n  b: 2}",
    "  x: [\n  1]",
    "  x: a\n   b",
    "   x: 1",
    " x: 1",
    "x: 1",
    "  # only a comment",
    "",
    "   ",
    "  x: 1\n# column 0\n    y: 2",
    "  x:\n  - 1\n  y: 2",
]


def test_blocks_put_in_place_of_nodes_read_as_the_whole_file() -> None:
    chance = random.Random(13)
    lines = BASE.split("\n")
    starts = [i for i, line in enumerate(lines) if re.fullmatch(r"  [a-e]:.*", line)]
    ends = [*starts[1:], lines.index("outputs:")]
    earlier = kept(BASE)
    taken = 0
    for _ in range(300):
        edited = list(lines)
        for _ in range(chance.randint(1, 2)):
            at = chance.randrange(len(starts))
            block = chance.choice(BLOCKS).split("\n")
            if chance.random() < 0.5:  # in place of a node
                edited[starts[at] : ends[at]] = block + [""] * (ends[at] - starts[at] - len(block))
            else:  # before one
                edited[starts[at] : starts[at]] = block
        text = "\n".join(edited)
        taken += alike(remembered(earlier), text.encode())[0]
    assert taken > 30
