"""Approval gates and takes end to end, against the real emulator on loopback: what renders,
what waits, what a pick or an approval costs."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.pipeline.review_file import review_path
from tests.run_helpers import (
    FULL_SIZE,
    last_run_events,
    lock_of,
    make_project,
    rendered,
    start_emulator,
)
from tests.run_helpers import run_local as run

pytestmark = pytest.mark.slow

HEAD = """version: 1
name: review
defaults: {preset: fast-preview, num_frames: 9, frame_rate: 8, expand_prompt: false}
nodes:
"""
GATED = (
    HEAD
    + """  shot:
    kind: i2v
    image: {file: assets/characters/mara/front_closeup.png}
    prompt: "Close-up of Mara, PROMPT"
    gate: true
  more: {kind: extend, video: {from: shot}, prompt: "She keeps looking at the rain."}
  more2: {kind: extend, video: {from: more}, prompt: "She turns toward the street."}
"""
)
TAKES = (
    HEAD
    + """  shot:
    kind: i2v
    image: {file: assets/characters/mara/front_closeup.png}
    prompt: "Close-up of Mara, subtle breathing."
    takes: 3
  more: {kind: extend, video: {from: shot}, prompt: "She keeps looking at the rain."}
  street: {kind: t2v, prompt: "Wide shot of a wet street at night."}
"""
)


def cli_run(*args: str) -> int:
    return cli.run(list(args))


def local(pipeline: Path, url: str, store: Path) -> list[str]:
    return [str(pipeline), "--backend", "local", "--cache-dir", str(store)]


def plan(pipeline: Path, url: str, store: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    assert cli_run("plan", *local(pipeline, url, store), "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_a_gate_renders_the_shot_holds_the_extends_until_approved(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p", text=GATED.replace("PROMPT", "subtle breathing."))
    store = tmp_path / "store"
    # Drawn at full size: the shot's new prompt must change its output to void the approval,
    # and drawn small these two short prompts come out as the same bytes.
    with start_emulator(render_pool, render_scale=FULL_SIZE) as emulator:
        # run renders the shot and stops there: exit 0, the extends wait
        assert run(pipeline, emulator.url, store) == 0
        out = capsys.readouterr().out
        assert rendered(store) == {"shot"}
        assert emulator.stats()["total_submissions"] == 1
        assert "2 waiting for approval" in out
        assert "waiting for approval of shot (not approved yet): more, more2" in out
        started, *_, finished = last_run_events(store)
        # the header counts and prices what will render, as the plan does: not what waits
        assert started["to_render"] == 1 and started["estimated_usd"] == pytest.approx(0.04)
        assert finished["event"] == "RunFinished" and finished["waiting"] == 2
        # the lockfile has what rendered; what waits is not in it yet
        assert set(lock_of(pipeline).nodes) == {"shot"}

        # plan says the extends wait, and prices them apart from the estimate
        waiting = plan(pipeline, emulator.url, store, capsys)
        rows = {row["node"]: row for row in waiting["nodes"]}
        assert rows["shot"]["status"] == "cached"
        assert rows["more"]["status"] == rows["more2"]["status"] == "wait"
        assert rows["more"]["waiting_for"] == "shot"
        assert waiting["total"]["estimated_usd"] == 0
        assert waiting["total"]["waiting"] == {"shot": ["more", "more2"]}
        assert waiting["total"]["waiting_usd"] == pytest.approx(0.08)
        capsys.readouterr()
        assert cli_run("plan", *local(pipeline, emulator.url, store)) == 0
        assert "waiting for approval of shot: more, more2 · ~$0.08" in capsys.readouterr().out

        # approve: the verdict names the shot's output by its hash
        shot_output = lock_of(pipeline).nodes["shot"].output.sha256
        assert cli_run("approve", *local(pipeline, emulator.url, store), "shot") == 0
        assert review_path(pipeline).read_text().splitlines()[1] == (f"shot approved={shot_output}")
        # then run renders exactly the extends
        assert run(pipeline, emulator.url, store) == 0
        assert rendered(store) == {"more", "more2"}
        assert emulator.stats()["total_submissions"] == 3
        assert set(lock_of(pipeline).nodes) == {"shot", "more", "more2"}

        # a new prompt for the shot voids the approval: the plan says so
        pipeline.write_text(GATED.replace("PROMPT", "a slow smile."))
        voided = plan(pipeline, emulator.url, store, capsys)
        rows = {row["node"]: row for row in voided["nodes"]}
        assert rows["shot"]["status"] == "render"
        assert rows["more"]["status"] == "wait"
        assert "its approval is void: the output changed" in rows["more"]["reason"]
        # run renders the new shot only; the extends' lock lines go (their keys changed)
        assert run(pipeline, emulator.url, store) == 0
        assert rendered(store) == {"shot"}
        assert set(lock_of(pipeline).nodes) == {"shot"}


def test_a_rejection_keeps_the_note_and_holds_even_cached_dependents(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p", text=GATED.replace("PROMPT", "subtle breathing."))
    store = tmp_path / "store"
    # Drawn at full size: the shot's new prompt must change its output to void the approval,
    # and drawn small these two short prompts come out as the same bytes.
    with start_emulator(render_pool, render_scale=FULL_SIZE) as emulator:
        assert run(pipeline, emulator.url, store) == 0
        assert cli_run("approve", *local(pipeline, emulator.url, store), "shot") == 0
        assert run(pipeline, emulator.url, store) == 0
        lock_text = pipeline.with_name("tiny.lock.json").read_text()
        note = 'the light is "flat"; relight'
        assert cli_run("reject", *local(pipeline, emulator.url, store), "shot", "--note", note) == 0
        assert f"note={json.dumps(note)}" in review_path(pipeline).read_text()
        assert run(pipeline, emulator.url, store) == 0
        out = capsys.readouterr().out
        assert f"waiting for approval of shot (rejected: {note}): more, more2" in out
        events = last_run_events(store)
        assert {e["node"] for e in events if e["event"] == "NodeWaiting"} == {"more", "more2"}
        assert emulator.stats()["total_submissions"] == 3  # nothing new was sent
        # a run that renders nothing leaves the lockfile as it was
        assert pipeline.with_name("tiny.lock.json").read_text() == lock_text


def test_takes_render_once_and_a_pick_reruns_only_what_depends_on_it(
    tmp_path: Path, render_pool: ProcessPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p", text=TAKES)
    store = tmp_path / "store"
    with start_emulator(render_pool) as emulator:
        assert run(pipeline, emulator.url, store) == 0
        # three take jobs (the node itself is take 1: shared, not a fourth), the extend, street
        assert emulator.stats()["total_submissions"] == 5
        lock = lock_of(pipeline)
        takes = [lock.nodes[f"shot#{i}"] for i in (1, 2, 3)]
        assert len({t.key for t in takes}) == 3 and len({t.seed for t in takes}) == 3
        assert lock.nodes["shot"].key == takes[0].key
        first_more = lock.nodes["more"].key

        assert cli_run("pick", str(pipeline), "shot", "2") == 0
        assert "shot take=2" in review_path(pipeline).read_text()
        picked = plan(pipeline, emulator.url, store, capsys)
        to_render = {row["node"] for row in picked["nodes"] if row["status"] == "render"}
        assert to_render == {"more"}
        assert picked["total"]["estimated_usd"] == pytest.approx(0.04)
        assert run(pipeline, emulator.url, store) == 0
        assert rendered(store) == {"more"}
        assert emulator.stats()["total_submissions"] == 6
        lock = lock_of(pipeline)
        assert lock.nodes["shot"].key == lock.nodes["shot#2"].key
        assert lock.nodes["more"].key != first_more

        # picking take 2 again costs nothing
        assert cli_run("pick", str(pipeline), "shot", "2") == 0
        assert "nothing changes" in capsys.readouterr().out
        again = plan(pipeline, emulator.url, store, capsys)
        assert again["total"]["estimated_usd"] == 0
        assert run(pipeline, emulator.url, store) == 0
        assert rendered(store) == set()
        assert emulator.stats()["total_submissions"] == 6


def test_pick_refuses_what_cannot_be_picked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p", text=TAKES)
    assert cli_run("pick", str(pipeline), "shot", "4") == 1
    assert "has 3 takes; there is no take 4" in capsys.readouterr().err
    assert cli_run("pick", str(pipeline), "street", "1") == 1
    assert "renders one take" in capsys.readouterr().err
    assert cli_run("pick", str(pipeline), "nope", "1") == 1
    assert "no node 'nope'" in capsys.readouterr().err
    assert not review_path(pipeline).exists()


def test_approve_needs_an_output_and_a_pick_for_a_gated_node_with_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = TAKES.replace("    takes: 3\n", "    takes: 3\n    gate: true\n")
    pipeline = make_project(tmp_path / "p", text=text)
    store = ["--backend", "local", "--cache-dir", str(tmp_path / "store")]
    assert cli_run("approve", str(pipeline), "shot", *store) == 1
    assert "pick the take to approve first" in capsys.readouterr().err
    assert cli_run("pick", str(pipeline), "shot", "3") == 0
    assert cli_run("approve", str(pipeline), "shot", *store) == 1
    assert "has no output to judge yet" in capsys.readouterr().err
