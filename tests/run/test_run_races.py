"""The corners of "never pay twice": duplicates in one run, runs on other hosts, Ctrl-C
during a slow cancel, backends that must not satisfy each other, and jobs fal has lost."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.compile.check import check_pipeline
from runner.emulator import EmulatorServer
from runner.plan import make_plan
from runner.store import Owner, Store
from tests.run_helpers import last_run_events, make_project, spawn_run

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


def test_the_same_request_twice_in_one_run_is_one_job(
    tmp_path: Path, start_emulator: StartEmulator
) -> None:
    pipeline = make_project(tmp_path / "p", text=TWO_OF_A_KIND)
    plan = check_pipeline(pipeline).require()
    one_job = plan.steps["a"].usd
    assert one_job > 0 and plan.steps["b"].key == plan.steps["a"].key
    assert make_plan(plan).total_usd == one_job  # priced once, like it is run
    assert "same request as 'a'" in make_plan(plan).rows[1].reason
    emulator = start_emulator()
    budget = f"{one_job:.2f}"  # enough for one job, not for two
    store = tmp_path / "store"
    assert (
        run(
            pipeline,
            store,
            "--backend",
            "local",
            "--emulator-url",
            emulator.url,
            "--budget",
            budget,
        )
        == 0
    )
    assert emulator.stats()["total_submissions"] == 1
    events = last_run_events(store)
    assert [e["estimated_usd"] for e in events if e["event"] == "RunStarted"] == [one_job]
    assert [e["spent_usd"] for e in events if e["event"] == "RunFinished"] == [one_job]
    assert sum(e["cost_usd"] for e in events if e["event"] == "NodeDone") == one_job


ONE_KEYFRAME_FOUR_SHOTS = """version: 1
name: four
defaults: {num_frames: 9, frame_rate: 8, resolution: 480p, expand_prompt: false}
characters:
  mara:
    description: a woman in a yellow raincoat
    keyframes: {front: assets/characters/mara/front_closeup.png}
nodes:
  a: {kind: i2v, image: {keyframe: mara.front}, prompt: she looks up, seed: 1}
  b: {kind: i2v, image: {keyframe: mara.front}, prompt: she looks down, seed: 2}
  c: {kind: i2v, image: {keyframe: mara.front}, prompt: she smiles, seed: 3}
  d: {kind: i2v, image: {keyframe: mara.front}, prompt: she turns, seed: 4}
"""


def test_shots_that_start_together_share_one_upload_of_their_keyframe(
    tmp_path: Path, start_emulator: StartEmulator
) -> None:
    pipeline = make_project(tmp_path / "p", text=ONE_KEYFRAME_FOUR_SHOTS)
    emulator = start_emulator()
    args = ("--backend", "local", "--emulator-url", emulator.url)
    assert run(pipeline, tmp_path / "store", *args) == 0
    stats = emulator.stats()
    assert stats["total_submissions"] == 4
    assert stats["requests"]["upload"] == 1


def test_a_claim_from_a_vanished_host_is_taken_over_not_waited_on_forever(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    store_root = tmp_path / "store"
    elsewhere = Owner("ci-job-1", 4242, "ci-runner-7f3a", time.time() - 120)
    with Store.open(store_root) as store:
        assert store.claim(key_of(pipeline, "street"), elsewhere) is None
        store.beat(elsewhere)  # a heartbeat, but it will go stale during the run
        store._runs.set(elsewhere.run_id, {"v": 1, "at": time.time() - 58})
    emulator = start_emulator()
    assert run(pipeline, store_root, "--backend", "local", "--emulator-url", emulator.url) == 0
    out = capsys.readouterr().out
    assert "street: note: waiting for run ci-job-1" in out
    # A bare claim means nothing was sent (the body is journaled before any POST): it is
    # taken over and submitted without a warning about a possible second job.
    assert "stopped while submitting" not in out
    assert emulator.stats()["total_submissions"] == 5


def test_ctrl_c_during_a_slow_cancel_keeps_the_job_that_started(
    tmp_path: Path, start_emulator: StartEmulator
) -> None:
    """fal answers "cancellation requested" for a running job too: one that starts while the
    cancel is on its way must stay journaled, and the next run must collect, not resubmit."""
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    emulator = start_emulator(latency=1.5, concurrency=1)
    emulator.set_faults([{"kind": "delay", "route": "cancel", "seconds": 2.5, "times": None}])
    args = ("--backend", "local", "--emulator-url", emulator.url)
    first = spawn_run(pipeline, store, *args)
    deadline = time.monotonic() + 60
    while emulator.stats()["total_submissions"] < 3:
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 130, out + err
    assert run(pipeline, store, *args) == 0
    counts = emulator.stats()["submissions"]
    assert set(counts.values()) == {1}, counts


def test_a_replay_on_the_local_backend_never_satisfies_the_fal_cache(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    emulator = start_emulator(require_auth=True)
    env = {
        "FAL_KEY": "id:secret",
        "SHOTGRAPH_FAL_QUEUE_URL": emulator.url,
        "SHOTGRAPH_FAL_REST_URL": emulator.url,
    }
    fal_run = spawn_run(pipeline, tmp_path / "store", "--backend", "fal", env=env)
    assert fal_run.wait(timeout=120) == 0
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


def test_a_result_fal_no_longer_has_is_rendered_again_once(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    emulator = start_emulator()
    emulator.set_faults([{"kind": "expire", "prompt_contains": "wet street", "times": 1}])
    assert (
        run(pipeline, tmp_path / "store", "--backend", "local", "--emulator-url", emulator.url) == 0
    )
    assert "street: note:" in capsys.readouterr().out
    assert sorted(emulator.stats()["submissions"].values()) == [1, 1, 1, 1, 2]


def test_a_keyframe_edited_during_the_run_fails_its_node_not_the_cache(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    text = """version: 1
name: edit
defaults: {num_frames: 9, frame_rate: 8, resolution: 480p}
characters:
  mara: {keyframes: {front: assets/characters/mara/front_closeup.png}}
nodes:
  x: {kind: t2v, prompt: first}
  y: {kind: multicondition, image: {keyframe: mara.front}, video: {from: x}, prompt: second}
"""
    pipeline = make_project(tmp_path / "p", text=text)
    keyframe = tmp_path / "p" / "assets" / "characters" / "mara" / "front_closeup.png"
    emulator = start_emulator(latency=1.5)
    process = spawn_run(
        pipeline, tmp_path / "store", "--backend", "local", "--emulator-url", emulator.url
    )
    deadline = time.monotonic() + 60
    while emulator.stats()["total_submissions"] < 1:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    keyframe.write_bytes(keyframe.with_name("three_quarter.png").read_bytes())
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "failed y:" in err
    with Store.open(tmp_path / "store") as store:
        assert not list(store.uploads())  # nothing recorded under the old hash


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
        run(pipeline, tmp_path / "store", "--backend", "local", "--emulator-url", emulator.url) == 1
    )
    err = capsys.readouterr().err
    assert "fal rejected the request: image_url:" in err and "tiny.yaml:5 nodes.still" in err
