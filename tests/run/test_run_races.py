"""The corners of "never pay twice" end to end, against the real emulator: a request priced
once, backends that must not satisfy each other, a lockfile edited by hand, a 422 pointed
back at the pipeline. (The generation protocol's own corners, through the fake fal:
tests/run/test_generation.py and test_executor.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.compile.check import check_pipeline
from runner.emulator import EmulatorServer
from runner.plan import make_plan
from tests.run_helpers import make_project

StartEmulator = Callable[..., EmulatorServer]

TWO_OF_A_KIND = """version: 1
name: twins
defaults: {num_frames: 9, frame_rate: 8, resolution: 480p}
nodes:
  a: {kind: t2v, prompt: the same shot, seed: 5}
  b: {kind: t2v, prompt: the same shot, seed: 5}
  cut: {kind: stitch, clips: [a, b]}
"""


def run(pipeline: Path, store: Path, *extra: str) -> int:
    return cli.run(["run", str(pipeline), "--cache-dir", str(store), "--plain", *extra])


def key_of(pipeline: Path, node: str, backend: str = "local") -> str:
    return check_pipeline(pipeline, backend=backend).require().steps[node].key


def test_the_same_request_twice_is_priced_once_in_the_plan(tmp_path: Path) -> None:
    """As it is run: one job (tests/run/test_executor.py runs it)."""
    pipeline = make_project(tmp_path / "p", text=TWO_OF_A_KIND)
    plan = check_pipeline(pipeline).require()
    one_job = plan.steps["a"].usd
    assert one_job > 0 and plan.steps["b"].key == plan.steps["a"].key
    assert make_plan(plan).total_usd == one_job
    assert "same request as 'a'" in make_plan(plan).rows[1].reason


def test_a_replay_on_the_local_backend_never_satisfies_the_fal_cache(
    tmp_path: Path,
    start_emulator: StartEmulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = make_project(tmp_path / "p")
    emulator = start_emulator(require_auth=True)
    # The fal backend (the one that sends a key), pointed at the emulator.
    monkeypatch.setenv("FAL_KEY", "id:secret")
    monkeypatch.setenv("SHOTGRAPH_FAL_QUEUE_URL", emulator.url)
    monkeypatch.setenv("SHOTGRAPH_FAL_REST_URL", emulator.url)
    assert run(pipeline, tmp_path / "store", "--backend", "fal") == 0
    lock = pipeline.with_name("tiny.lock.json")
    assert json.loads(lock.read_text())["backend"] == "fal"
    fresh = tmp_path / "fresh"
    # The local backend names each node on its animatics and the fal backend never does, so
    # these renders differ from the fal run's bytes: drift, accepted here.
    assert (
        cli.run(
            [
                "replay",
                str(lock),
                "--backend",
                "local",
                "--emulator-url",
                emulator.url,
                "--cache-dir",
                str(fresh),
                "--plain",
                "--accept-drift",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        cli.run(["plan", str(pipeline), "--backend", "fal", "--cache-dir", str(fresh), "--json"])
        == 0
    )
    statuses = {row["status"] for row in json.loads(capsys.readouterr().out)["nodes"]}
    assert statuses == {"render"}


def test_a_hand_edited_lockfile_is_refused(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    emulator = start_emulator()
    assert (
        run(pipeline, tmp_path / "store", "--backend", "local", "--emulator-url", emulator.url) == 0
    )
    lock = pipeline.with_name("tiny.lock.json")
    document: dict[str, Any] = json.loads(lock.read_text())
    document["nodes"]["street"]["request"]["prompt"] = "something else entirely"
    lock.write_text(json.dumps(document))
    capsys.readouterr()
    assert cli.run(["replay", str(lock), "--emulator-url", emulator.url]) == 1
    assert "does not match its own request" in capsys.readouterr().err
    del document["nodes"]["street"]["inputs"]
    lock.write_text(json.dumps(document))
    assert cli.run(["replay", str(lock), "--emulator-url", emulator.url]) == 1
    assert "is malformed" in capsys.readouterr().err


def test_a_request_fal_rejects_at_run_time_points_at_the_pipeline(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    text = """version: 1
name: reject
defaults: {num_frames: 9, frame_rate: 8, resolution: 480p}
nodes:
  still: {kind: i2v, image: {url: "http://127.0.0.1:9/gone.png"}, prompt: a still}
"""
    pipeline = make_project(tmp_path / "p", text=text)
    emulator = start_emulator()
    assert (
        run(pipeline, tmp_path / "store", "--backend", "local", "--emulator-url", emulator.url) == 4
    )
    err = capsys.readouterr().err
    assert "fal rejected the request: image_url:" in err and "tiny.yaml:5 nodes.still" in err
