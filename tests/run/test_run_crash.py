"""Never pay twice: kill -9 mid-run, two runs on one store, and the key kept secret."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from runner.emulator import EmulatorConfig, EmulatorServer
from runner.store import Store, verify_store
from tests.run_helpers import (
    GENERATION_NODES,
    ROOT,
    make_project,
    output_hashes,
    spawn_run,
    start_emulator,
    submitted,
)


def test_kill_9_while_jobs_are_in_flight_loses_and_repays_nothing(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    # The runner starts its own emulator, as a user's `--backend local` does; its state lives
    # in the store, so it outlives the killed runner the way fal's queue would.
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    args = ("--backend", "local", "--emulator-latency", "2")
    victim = spawn_run(pipeline, store, *args)
    deadline = time.monotonic() + 60
    while submitted(store) < 3:  # street, intro and orbit are in flight
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "the jobs were never submitted"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    again = spawn_run(pipeline, store, *args)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    assert "re-attached to request" in out
    # Paid for by the killed run: collected now, and not on this run's bill.
    assert "re-attached (sent and paid for by an earlier run" in out
    # The killed run's staging (half-downloaded .part files) went with the rerun.
    assert list((store / "tmp").rglob("*")) == []
    # Every request reached the emulator exactly once, across both runs.
    config = EmulatorConfig(state_dir=store / "emulator", require_auth=False)
    with EmulatorServer(config, executor=render_pool) as emulator:
        stats = emulator.stats()
    assert stats["total_submissions"] == len(GENERATION_NODES)
    assert set(stats["submissions"].values()) == {1}
    # ... and the outputs are the ones an uninterrupted run makes.
    clean = make_project(tmp_path / "clean")
    quiet = spawn_run(clean, tmp_path / "clean-store", *args)
    assert quiet.wait(timeout=120) == 0
    assert output_hashes(pipeline) == output_hashes(clean)
    with Store.open(store) as opened:
        assert opened.in_flight() == []
        assert not verify_store(opened).corrupt


def test_two_runs_at_once_on_one_store(tmp_path: Path, render_pool: ProcessPoolExecutor) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    with start_emulator(render_pool, latency=1.0) as emulator:
        args = ("--backend", "local", "--emulator-url", emulator.url)
        runs = [spawn_run(pipeline, store, *args) for _ in range(2)]
        results = [r.communicate(timeout=120) for r in runs]
        for process, (out, err) in zip(runs, results, strict=True):
            assert process.returncode == 0, out + err
        stats = emulator.stats()
    assert stats["total_submissions"] == len(GENERATION_NODES)
    assert set(stats["submissions"].values()) == {1}
    with Store.open(store) as opened:
        assert not verify_store(opened).corrupt


def test_fal_key_never_lands_anywhere(tmp_path: Path, render_pool: ProcessPoolExecutor) -> None:
    marker_id, marker_secret = "markerkeyid7731", "markersecret9917"
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    # The fal backend (the one that sends the key), pointed at an emulator that checks it;
    # one node fails so that error paths are exercised too.
    with start_emulator(render_pool, require_auth=True) as emulator:
        emulator.set_faults([{"kind": "fail", "prompt_contains": "slow turn", "times": None}])
        env = {
            "FAL_KEY": f"{marker_id}:{marker_secret}",
            "SHOTGRAPH_FAL_QUEUE_URL": emulator.url,
            "SHOTGRAPH_FAL_REST_URL": emulator.url,
        }
        process = spawn_run(pipeline, store, "--backend", "fal", env=env)
        out, err = process.communicate(timeout=120)
        assert emulator.stats()["total_submissions"] >= 4
    assert process.returncode == 4  # the injected failure: a render failed
    haystacks = [out, err]
    for folder in (store, tmp_path / "p"):
        for path in folder.rglob("*"):
            if path.is_file():
                haystacks.append(path.read_bytes().decode("latin-1"))
    for text in haystacks:
        assert marker_id not in text and marker_secret not in text


@pytest.mark.parametrize("backend", ["fal"])
def test_missing_key_says_how_to_render_offline(tmp_path: Path, backend: str) -> None:
    pipeline = make_project(tmp_path / "p")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_KEY")}
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "run",
            str(pipeline),
            "--backend",
            backend,
            "--cache-dir",
            str(tmp_path / "store"),
            "--plain",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert process.returncode == 1
    assert "--backend local" in process.stdout + process.stderr
    assert "Traceback" not in process.stderr


def test_ctrl_c_cancels_queued_jobs_and_keeps_running_ones(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    # One job runs at a time, slowly: when Ctrl-C comes, one is running and two are queued.
    with start_emulator(render_pool, latency=30.0, concurrency=1) as emulator:
        process = spawn_run(pipeline, store, "--backend", "local", "--emulator-url", emulator.url)
        deadline = time.monotonic() + 60
        while submitted(store) < 3:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # let the runner see each job's queue position
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, out + err
        assert "interrupted" in out
        stats = emulator.stats()
    assert stats["cancelled"] == 2
    with Store.open(store) as opened:
        left = [entry for _, entry in opened.in_flight()]
    assert len(left) == 1 and left[0].state == "submitted"  # the running job, to collect later


def test_random_kills_never_pay_twice_with_a_rebuilt_body(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    """A small kill -9 trial (benchmarks/kill_trial.py runs the full one): whatever moment
    the kill lands on, the rerun completes, leaves no staging behind, and any job sent twice
    (a kill inside the submit gap) was sent with the identical, journaled body."""
    from benchmarks.kill_trial import run_trial

    rng = random.Random(20)
    state = tmp_path / "fal"
    with start_emulator(render_pool, latency=0.2, state_dir=state) as emulator:
        for i in range(2):
            trial = run_trial(
                tmp_path / f"trial-{i}",
                emulator.url,
                state,
                nodes=5,
                salt=f"small trial {i}",
                kill_after=rng.uniform(1.0, 2.5),  # past start-up: jobs in flight
                jobs=2,
            )
            assert trial.rerun_ok and trial.leftovers == 0
            assert trial.jobs >= trial.keys == 5
            assert trial.same_body == len(trial.duplicate_keys), trial
