"""A recompile after an edit reuses the steps of the nodes that did not change, and gives
exactly what a full compile gives: steps (keys, requests, settings), outputs, findings
with their lines. Each kind of change is one test: each fails if reuse ignored it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from runner.compile import lint as lint_module
from runner.compile.check import CheckResult, check_pipeline
from runner.compile.compiler import Compiler
from runner.compile.memo import check_and_remember, recall
from runner.pipeline.schema_check import PassedNodes
from tests.compile.test_memo import PRESETS, memo_project

PIPELINE = """version: 1
name: reuse
imports: [presets/studio.yaml]
defaults: {preset: house}
presets:
  own: {extends: cinematic-5s, first_pass_num_inference_steps: 8}
characters:
  mara: {description: a woman in a yellow raincoat, keyframes: {front: assets/key.png}}
  jun: {description: a man with round glasses, keyframes: {front: assets/jun.png}}
nodes:
  a:
    kind: i2v
    image: {keyframe: mara.front}
    prompt: {template: shot.j2, vars: {shot: Close-up, action: breathing}}
  a_more:
    kind: extend
    video: {from: a}
    prompt: {template: continue.j2, vars: {action: a smile}}
  a_last:
    kind: extend
    preset: own
    video: {from: a_more}
    prompt: she turns, then she walks away
  b:
    kind: i2v
    image: {keyframe: jun.front}
    prompt: {template: shot.j2, vars: {shot: Wide, action: waiting}}
  b_more:
    kind: extend
    video: {from: b}
    prompt: he looks up, then he runs
"""
CHAINS = {"a": ["a", "a_more", "a_last"], "b": ["b", "b_more"]}


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    shot = "{{ shot }} of {{ character.name }} ({{ character.description }}), {{ action }}"
    path = memo_project(tmp_path / "proj", PIPELINE, shot)
    Image.new("RGB", (64, 36), (40, 90, 180)).save(path.parent / "assets" / "jun.png")
    return path


@pytest.fixture
def compiled_nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the nodes compiled (rather than reused), in order."""
    names: list[str] = []
    generation = Compiler._generation

    def counting(self: Compiler, node: Any, *args: Any, **kwargs: Any) -> Any:
        names.append(node.name)
        return generation(self, node, *args, **kwargs)

    monkeypatch.setattr(Compiler, "_generation", counting)
    yield names


def canonical(result: CheckResult) -> Any:
    """Everything a command shows of a result, in values (a line map is compared by what it
    locates, not by identity)."""
    steps = None
    if result.compiled is not None:
        steps = [
            (
                replace(step, settings={}),
                [(k, repr(s.value), s.layer, s.location) for k, s in step.settings.items()],
            )
            for step in result.compiled.steps.values()
        ]
    findings = [(d, d.render()) for d in result.diagnostics]
    return findings, result.outputs, steps, result.compiled and result.compiled.graph


def edited_alike(pipeline: Path, store: Path, compiled_nodes: list[str]) -> CheckResult:
    """Recompile after an edit, as a command does; assert it equals a full compile.
    ``compiled_nodes`` is left with the nodes the recompile compiled."""
    compiled_nodes.clear()
    result = check_and_remember(pipeline, "local", store)
    recompiled = len(compiled_nodes)
    assert canonical(result) == canonical(check_pipeline(pipeline, backend="local"))
    del compiled_nodes[recompiled:]
    return result


def keys(result: CheckResult) -> dict[str, str]:
    assert result.compiled is not None
    return {name: step.key for name, step in result.compiled.steps.items()}


def remember(pipeline: Path, store: Path, compiled_nodes: list[str]) -> dict[str, str]:
    result = check_and_remember(pipeline, "local", store)
    assert not result.errors, [d.render() for d in result.errors]
    assert result.warnings  # the line of a finding is part of what must match
    compiled_nodes.clear()
    return keys(result)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_node_prompt_recompiles_its_chain_only(
    pipeline: Path, store: Path, compiled_nodes: list[str]
) -> None:
    before = remember(pipeline, store, compiled_nodes)
    edit(pipeline, "action: waiting", "action: sitting")
    after = keys(edited_alike(pipeline, store, compiled_nodes))
    assert compiled_nodes == CHAINS["b"]  # the rest came from the memo
    assert {n for n in after if after[n] != before[n]} == set(CHAINS["b"])
    assert recall(pipeline, "local", store) is not None  # and the new memo answers


def test_only_the_edited_node_is_checked_against_the_schema(
    pipeline: Path, store: Path, compiled_nodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[list[str]] = []
    unchecked = PassedNodes.unchecked

    def spy(self: PassedNodes, document: Any) -> Any:
        left = unchecked(self, document)
        checked.append(list(left["nodes"]))
        return left

    monkeypatch.setattr(PassedNodes, "unchecked", spy)
    remember(pipeline, store, compiled_nodes)
    edit(pipeline, "action: waiting", "action: sitting")
    edited_alike(pipeline, store, compiled_nodes)
    assert checked == [list(CHAINS["a"] + CHAINS["b"]), ["b"]]


def test_an_upstream_edit_changes_every_key_downstream(
    pipeline: Path, store: Path, compiled_nodes: list[str]
) -> None:
    before = remember(pipeline, store, compiled_nodes)
    edit(pipeline, "action: breathing", "action: blinking")
    after = keys(edited_alike(pipeline, store, compiled_nodes))
    assert {n for n in after if after[n] != before[n]} == set(CHAINS["a"])


def test_a_template_one_node_uses(pipeline: Path, store: Path, compiled_nodes: list[str]) -> None:
    before = remember(pipeline, store, compiled_nodes)
    edit(pipeline, "action: waiting", "action: sitting")  # and the template, both at once
    (pipeline.parent / "templates" / "shot.j2").write_text("{{ shot }}: {{ action }}")
    after = keys(edited_alike(pipeline, store, compiled_nodes))
    assert after["a"] != before["a"]


def test_a_preset_in_the_pipeline(pipeline: Path, store: Path, compiled_nodes: list[str]) -> None:
    before = remember(pipeline, store, compiled_nodes)
    edit(pipeline, "first_pass_num_inference_steps: 8", "first_pass_num_inference_steps: 7")
    after = keys(edited_alike(pipeline, store, compiled_nodes))
    assert after["a_last"] != before["a_last"]


def test_a_preset_file(pipeline: Path, store: Path, compiled_nodes: list[str]) -> None:
    before = remember(pipeline, store, compiled_nodes)
    edit(pipeline, "action: waiting", "action: sitting")
    (pipeline.parent / "presets" / "studio.yaml").write_text(PRESETS.replace("13", "14"))
    after = keys(edited_alike(pipeline, store, compiled_nodes))
    assert after["a"] != before["a"]


def test_the_defaults_and_a_character(
    pipeline: Path, store: Path, compiled_nodes: list[str]
) -> None:
    before = remember(pipeline, store, compiled_nodes)
    edit(
        pipeline,
        "defaults: {preset: house}",
        "defaults: {preset: house, first_pass_skip_final_steps: 2}",
    )
    result = edited_alike(pipeline, store, compiled_nodes)
    assert not result.errors
    middle = keys(result)
    assert middle["a"] != before["a"]
    edit(pipeline, "a woman in a yellow raincoat", "a woman in a red raincoat")
    after = keys(edited_alike(pipeline, store, compiled_nodes))
    assert after["a"] != middle["a"] and after["b"] == middle["b"]


def test_a_keyframe_replaced_by_another_of_the_same_size(
    pipeline: Path, store: Path, compiled_nodes: list[str]
) -> None:
    before = remember(pipeline, store, compiled_nodes)
    edit(pipeline, "action: waiting", "action: sitting")
    jun = pipeline.parent / "assets" / "jun.png"
    size = jun.stat().st_size
    Image.new("RGB", (64, 36), (41, 90, 180)).save(jun)
    assert jun.stat().st_size == size
    after = keys(edited_alike(pipeline, store, compiled_nodes))
    assert after["b"] != before["b"]


@pytest.mark.parametrize(
    ("old", "new", "gone"),
    [
        ("  b_more:\n", "  b_later:\n", {"b_more"}),  # renamed
        (
            "  b:\n",
            "  c:\n    kind: i2v\n    image: {keyframe: jun.front}\n    prompt: here\n  b:\n",
            set(),
        ),  # added
        ("video: {from: a_more}", "video: {from: a}", set()),  # rewired
    ],
)
def test_a_node_added_renamed_or_rewired(
    pipeline: Path,
    store: Path,
    compiled_nodes: list[str],
    old: str,
    new: str,
    gone: set[str],
) -> None:
    before = remember(pipeline, store, compiled_nodes)
    edit(pipeline, old, new)
    after = keys(edited_alike(pipeline, store, compiled_nodes))
    assert gone == set(before) - set(after)


def test_a_node_removed(pipeline: Path, store: Path, compiled_nodes: list[str]) -> None:
    remember(pipeline, store, compiled_nodes)
    text = pipeline.read_text()
    pipeline.write_text(text[: text.index("  b_more:\n")])
    after = keys(edited_alike(pipeline, store, compiled_nodes))
    assert "b_more" not in after and compiled_nodes == []


def test_an_error_introduced_then_fixed(
    pipeline: Path, store: Path, compiled_nodes: list[str]
) -> None:
    before = remember(pipeline, store, compiled_nodes)
    edit(pipeline, "video: {from: a}", "video: {from: nowhere}")
    broken = edited_alike(pipeline, store, compiled_nodes)
    assert [e.code for e in broken.errors] == ["ref-unknown-node"]
    edit(pipeline, "video: {from: nowhere}", "video: {from: a}")
    assert keys(edited_alike(pipeline, store, compiled_nodes)) == before


def test_a_finding_moved_by_an_edit_above_it(
    pipeline: Path, store: Path, compiled_nodes: list[str]
) -> None:
    remember(pipeline, store, compiled_nodes)
    before = [d.location.line for d in check_pipeline(pipeline, backend="local").warnings]
    edit(pipeline, "nodes:\n", "nodes:\n  # the first chain\n\n")
    result = edited_alike(pipeline, store, compiled_nodes)
    assert [d.location.line for d in result.warnings] == [line + 2 for line in before]
    assert compiled_nodes == []  # nothing compiled again: only lines moved


def test_no_reuse_from_a_memo_of_another_pipeline(
    pipeline: Path, store: Path, compiled_nodes: list[str]
) -> None:
    """Prints are per memo: a copy of the pipeline under another name compiles in full."""
    remember(pipeline, store, compiled_nodes)
    twin = pipeline.with_name("twin.yaml")
    shutil.copy(pipeline, twin)
    check_and_remember(twin, "local", store)
    assert compiled_nodes == [*CHAINS["a"], *CHAINS["b"]]


def test_the_new_memo_still_watches_what_reused_nodes_read(
    pipeline: Path, store: Path, compiled_nodes: list[str]
) -> None:
    """A reused node read its files through the earlier compile: the memo written after
    the reuse must still notice them change."""
    remember(pipeline, store, compiled_nodes)
    edit(pipeline, "action: waiting", "action: sitting")
    edited_alike(pipeline, store, compiled_nodes)
    assert "a" not in compiled_nodes and recall(pipeline, "local", store) is not None
    key = pipeline.parent / "assets" / "key.png"  # only chain a reads it
    Image.new("RGB", (8, 8), (1, 2, 3)).save(key)
    assert recall(pipeline, "local", store) is None
    edited_alike(pipeline, store, compiled_nodes)
    assert "a" in compiled_nodes


def test_a_node_made_invalid_is_checked_against_the_schema(
    pipeline: Path, store: Path, compiled_nodes: list[str]
) -> None:
    remember(pipeline, store, compiled_nodes)
    edit(pipeline, "  b_more:\n    kind: extend\n", "  b_more:\n    kind: extend\n    seeds: 3\n")
    result = edited_alike(pipeline, store, compiled_nodes)
    assert [e.code for e in result.errors] == ["schema-additionalProperties"]


def test_the_model_a_node_is_checked_for(
    pipeline: Path, store: Path, compiled_nodes: list[str]
) -> None:
    """The pipeline's `model:` decides each node's schema: a node that passed for one
    family is checked again for another."""
    edit(pipeline, "  b:\n    kind: i2v\n", "  b:\n    kind: i2v\n    num_frames: 97\n")
    remember(pipeline, store, compiled_nodes)
    edit(pipeline, "name: reuse\n", "name: reuse\nmodel: ltx-2-fast\n")
    result = edited_alike(pipeline, store, compiled_nodes)
    assert any(e.location.key_path[:2] == ("nodes", "b") for e in result.errors)


@pytest.fixture
def linted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The nodes whose own findings lint worked out (rather than took from the memo)."""
    names: list[str] = []
    node_warnings = lint_module._node_warnings

    def counting(node: Any, step: Any) -> Any:
        names.append(node.name)
        return node_warnings(node, step)

    monkeypatch.setattr(lint_module, "_node_warnings", counting)
    yield names


def beats(result: CheckResult) -> list[str]:
    return [d.message for d in result.warnings if d.code == "lint.action-beats"]


def relinted(pipeline: Path, store: Path, linted: list[str]) -> tuple[CheckResult, list[str]]:
    """Recompile after an edit, as a command does (it must equal a full compile); with the
    nodes whose findings the recompile worked out."""
    linted.clear()
    result = check_and_remember(pipeline, "local", store)
    worked_out = list(linted)
    assert canonical(result) == canonical(check_pipeline(pipeline, backend="local"))
    return result, worked_out


def test_lint_findings_of_an_edited_node_are_told_again(
    pipeline: Path, store: Path, linted: list[str]
) -> None:
    first = check_and_remember(pipeline, "local", store)
    assert len(beats(first)) == 2  # a_last's and b_more's 'then'
    edit(pipeline, "he looks up, then he runs", "he looks up and runs")
    result, worked_out = relinted(pipeline, store, linted)
    assert worked_out == ["b_more"]  # the other nodes' findings came from the memo
    assert len(beats(result)) == 1
    edit(pipeline, "he looks up and runs", "he looks up, then he runs")
    result, worked_out = relinted(pipeline, store, linted)
    assert worked_out == ["b_more"] and len(beats(result)) == 2


def test_lint_findings_follow_an_edit_upstream(
    pipeline: Path, store: Path, linted: list[str]
) -> None:
    check_and_remember(pipeline, "local", store)
    # b_more's step changes with b's (its character, its keys): its findings are told again.
    edit(pipeline, "image: {keyframe: jun.front}", "image: {keyframe: mara.front}")
    assert sorted(relinted(pipeline, store, linted)[1]) == ["b", "b_more"]
