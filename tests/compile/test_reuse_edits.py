"""Edits chosen to break the reuse of unchanged nodes (``runner.compile.reuse``): after
each, the recompile through the memo must give exactly what a full compile gives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.compile.check import CheckResult, check_pipeline
from runner.compile.compiler import Compiler
from runner.compile.memo import check_and_remember, recall
from runner.pipeline import yaml_splice
from tests.compile.test_memo import memo_project
from tests.compile.test_reuse import canonical, keys


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """The nodes compiled rather than reused (generation and media steps alike)."""
    names: set[str] = set()
    sources = Compiler._sources

    def counting(self: Compiler, node: Any) -> Any:
        names.add(node.name)
        return sources(self, node)

    monkeypatch.setattr(Compiler, "_sources", counting)
    yield names


def alike_after(path: Path, store: Path, text: str) -> CheckResult:
    """Write ``text`` over the pipeline remembered in ``store``; the recompile, which must
    equal a full compile."""
    path.write_text(text)
    result = check_and_remember(path, "local", store)
    assert canonical(result) == canonical(check_pipeline(path, backend="local"))
    return result


SELF_READ = """version: 1
name: self
templates: .
nodes:
  quoted:
    kind: t2v
    prompt: {template: p.yaml}
  other:
    kind: t2v
    prompt: a quiet street at night
"""


def test_a_node_that_reads_the_pipeline_file_itself(tmp_path: Path, store: Path) -> None:
    """A template (or a keyframe) may be the pipeline file: its node's record does not
    change when another node's text does, but what it reads does."""
    path = memo_project(tmp_path / "proj", SELF_READ)
    assert not check_and_remember(path, "local", store).errors
    alike_after(path, store, SELF_READ.replace("quiet street", "busy street"))


BROLL = "prompt: {template: broll.j2, vars: {subject: rain, place: a town, detail: wet}}"
EDITS = f"""version: 1
name: edits
imports: [presets/studio.yaml]
defaults: {{preset: house}}
x-look: &look {{first_pass_num_inference_steps: 12}}
characters:
  mara: {{description: a woman in a yellow raincoat, keyframes: {{front: assets/key.png}}}}
nodes:
  a:
    kind: i2v
    image: {{keyframe: mara.front}}
    prompt: {{template: shot.j2, vars: {{shot: Close-up, action: breathing}}}}
    <<: *look
  a_more:
    kind: extend
    video: {{from: a}}
    prompt: {{template: continue.j2, vars: {{action: a smile}}}}
  b:
    kind: t2v
    prompt: {{template: part.j2, vars: {{shot: Wide}}}}
    <<: *look
  b_more:
    kind: extend
    video: {{from: b}}
    prompt: he looks up
  f:
    kind: frame
    video: {{from: b}}
    at: 1
  g:
    kind: t2v
    {BROLL}
"""
EVERY = {"a", "a_more", "b", "b_more", "f", "g"}
TAKES = ("  b:\n    kind: t2v\n", "  b:\n    kind: t2v\n    takes: 3\n")


@pytest.mark.parametrize(
    ("edits", "files", "expected"),
    [
        # An anchor merged into two nodes, edited in one place: both chains, not g.
        ([("steps: 12}", "steps: 14}")], {}, EVERY - {"g"}),
        ([("x-look", "x-note: {a: 1}\nx-look")], {}, set()),  # an extension key added
        # A template another one includes, or one that now shadows a shipped one, edited
        # with the pipeline: every file but the pipeline must hold, so no reuse at all.
        ([("looks up", "looks down")], {"templates/inc.j2": "snow"}, EVERY),
        ([("looks up", "looks down")], {"templates/broll.j2": "mine"}, EVERY),
        # An upstream renamed, its readers with it; then the nodes reordered.
        ([("  b:\n", "  c:\n"), *[("{from: b}", "{from: c}")] * 2], {}, {"c", "b_more", "f"}),
        (
            [
                (f"  g:\n    kind: t2v\n    {BROLL}\n", ""),
                ("nodes:\n", f"nodes:\n  g:\n    kind: t2v\n    {BROLL}\n"),
            ],
            {},
            set(),
        ),
        ([("at: 1", "at: 2")], {}, {"f"}),  # a media step
        # Takes: the nodes a node with takes feeds always compile; a pick changes all.
        ([TAKES, ("a smile", "a frown")], {}, {"a_more", "b", "b_more", "f"}),
        ([TAKES, ("a smile", "a frown")], {"p.review": "b take=2\n"}, EVERY),
    ],
)
def test_an_edit_reuses_exactly_the_nodes_it_did_not_reach(
    tmp_path: Path,
    store: Path,
    compiled: set[str],
    edits: list[tuple[str, str]],
    files: dict[str, str],
    expected: set[str],
) -> None:
    if edits[0] == TAKES:  # b has takes before the edit
        edits = edits[1:]
        before = EDITS.replace(*TAKES)
    else:
        before = EDITS
    path = memo_project(tmp_path / "proj", before, "{{ shot }} of {{ character.name }}")
    templates = path.parent / "templates"
    (templates / "part.j2").write_text("{% include 'inc.j2' %} {{ shot }}")
    (templates / "inc.j2").write_text("rain")
    assert not check_and_remember(path, "local", store).errors
    text = before
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    for name, content in files.items():
        (path.parent / name).write_text(content)
    compiled.clear()
    path.write_text(text)
    result = check_and_remember(path, "local", store)
    assert compiled == expected and not result.errors
    compiled.clear()
    assert canonical(result) == canonical(check_pipeline(path, backend="local"))


def test_no_reuse_from_a_memo_this_machine_did_not_sign(
    tmp_path: Path, store: Path, compiled: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A memo is trusted in place of compiling its nodes: one signed with another key (a
    pull request may commit a store) gives none of its steps to an edited pipeline."""
    two = "version: 1\nname: two\nnodes:\n  one: {kind: t2v, prompt: a quiet room}\n"
    path = memo_project(tmp_path / "proj", two + "  other: {kind: t2v, prompt: a quiet street}\n")
    assert not check_and_remember(path, "local", store).errors
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    compiled.clear()
    alike_after(path, store, path.read_text().replace("quiet street", "busy street"))
    assert compiled == {"one", "other"}


def test_a_pipeline_edited_while_it_compiles_is_not_remembered(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memo describes each file after the compile: an editor saving the pipeline in
    between must not leave a memo of the old text under the new text's hash."""
    two = "version: 1\nname: two\nnodes:\n  one: {kind: t2v, prompt: a quiet room}\n"
    path = memo_project(tmp_path / "proj", two)
    run = Compiler.run

    def saved_meanwhile(self: Compiler) -> Any:
        compiled = run(self)
        path.write_text(two.replace("quiet", "busy"))
        return compiled

    monkeypatch.setattr(Compiler, "run", saved_meanwhile)
    check_and_remember(path, "local", store)
    recalled = recall(path, "local", store)
    assert recalled is None or keys(recalled) == keys(check_pipeline(path, backend="local"))


PLAIN = """version: 1
name: plain
nodes:
  one:
    kind: t2v
    prompt: a quiet street at night
  two:
    kind: t2v
    prompt: rain on a window
  three:
    kind: t2v
    prompt: a lamp
"""


def test_only_the_edited_nodes_are_read_again(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The YAML of the nodes an edit did not touch comes from the memo's document
    (``runner.pipeline.yaml_splice``): the findings, with their lines, are the full read's."""
    read_again: list[int | None] = []
    real = yaml_splice.splice

    def spy(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        read_again.append(None if got is None else got[1])
        return got

    monkeypatch.setattr(yaml_splice, "splice", spy)
    path = memo_project(tmp_path / "proj", PLAIN)
    assert not check_and_remember(path, "local", store).errors
    moved = PLAIN.replace("rain on a window\n", "rain on a window\n    seed: 7\n")
    assert not alike_after(path, store, moved).errors
    wrong = alike_after(path, store, moved.replace("a lamp\n", "a lamp\n    bogus: 1\n"))
    assert [d.location.line for d in wrong.errors] == [14]
    alike_after(path, store, PLAIN.replace("rain on", "snow on"))
    assert len(read_again) == 3 and None not in read_again
