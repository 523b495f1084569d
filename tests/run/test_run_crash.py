"""Never pay twice: kill -9 mid-run, two runs on one store, and the key kept secret."""

from __future__ import annotations

import random
import re
import signal
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from runner import cli
from runner.compile.check import check_pipeline
from runner.emulator import EmulatorConfig, EmulatorServer
from runner.store import Store, verify_store
from tests.run_helpers import (
    FULL_SIZE,
    GENERATION_NODES,
    Lines,
    make_project,
    output_hashes,
    spawn_run,
    start_emulator,
)


def said_submitted(lines: list[str]) -> set[str]:
    """The nodes a run has said it submitted (journaled first, then said)."""
    return {line.split("] ", 1)[1].split(":")[0] for line in lines if ": submitted request" in line}


def test_kill_9_while_jobs_are_in_flight_loses_and_repays_nothing(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    # The runner starts its own emulator, as a user's `--backend local` does; its state lives
    # in the store, so it outlives the killed runner the way fal's queue would.
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    # Slow jobs, so that the first three are still in flight when the runner is killed;
    # the rerun's emulator runs what it takes back (and the rest) without the wait.
    victim = spawn_run(pipeline, store, "--backend", "local", "--emulator-latency", "2")
    Lines(victim).until(lambda lines: len(said_submitted(lines)) >= 3)  # street, intro, orbit
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    again = spawn_run(pipeline, store, "--backend", "local", "--emulator-latency", "0")
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
    # ... and the outputs are the ones an uninterrupted run makes (drawn at full size, as the
    # runs' own emulators draw).
    clean = make_project(tmp_path / "clean")
    with start_emulator(render_pool, render_scale=FULL_SIZE) as emulator:
        common = ["--cache-dir", str(tmp_path / "clean-store"), "--plain", "--backend", "local"]
        assert cli.run(["run", str(clean), *common, "--emulator-url", emulator.url]) == 0
    assert output_hashes(pipeline) == output_hashes(clean)
    with Store.open(store) as opened:
        assert opened.in_flight() == []
        assert not verify_store(opened).corrupt


def test_two_runs_at_once_on_one_store(tmp_path: Path, render_pool: ProcessPoolExecutor) -> None:
    """Two processes, one store, one fal: every job once, and each run bills only the jobs
    it submitted (the other's results it received cost it nothing)."""
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
    step_cost = check_pipeline(pipeline, backend="local").require().steps["street"].usd
    spent, paid_for = 0.0, 0
    for out, _ in results:
        money = re.search(r"would cost ~\$(\d+\.\d+) on fal", out)
        assert money is not None, out
        spent += float(money.group(1))
        mine = re.search(r"of those rendered: (\d+) submitted by this run", out)
        paid_for += int(mine.group(1)) if mine else len(GENERATION_NODES)
    assert paid_for == len(GENERATION_NODES)
    assert spent == pytest.approx(len(GENERATION_NODES) * step_cost, abs=0.011)  # not twice
    with Store.open(store) as opened:
        assert not verify_store(opened).corrupt


def test_fal_key_never_lands_anywhere(
    tmp_path: Path,
    render_pool: ProcessPoolExecutor,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker_id, marker_secret = "markerkeyid7731", "markersecret9917"
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    # The fal backend (the one that sends the key), pointed at an emulator that checks it;
    # one node fails so that error paths are exercised too.
    with start_emulator(render_pool, require_auth=True) as emulator:
        emulator.set_faults([{"kind": "fail", "prompt_contains": "slow turn", "times": None}])
        monkeypatch.setenv("FAL_KEY", f"{marker_id}:{marker_secret}")
        monkeypatch.setenv("SHOTGRAPH_FAL_QUEUE_URL", emulator.url)
        monkeypatch.setenv("SHOTGRAPH_FAL_REST_URL", emulator.url)
        run = ["run", str(pipeline), "--backend", "fal", "--cache-dir", str(store), "--plain"]
        code = cli.run(run)
        assert emulator.stats()["total_submissions"] >= 4
    assert code == 4  # the injected failure: a render failed
    out, err = capfd.readouterr()
    haystacks = [out, err]
    for folder in (store, tmp_path / "p"):
        for path in folder.rglob("*"):
            if path.is_file():
                haystacks.append(path.read_bytes().decode("latin-1"))
    for text in haystacks:
        assert marker_id not in text and marker_secret not in text


def test_missing_key_says_how_to_render_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    run = ["run", str(pipeline), "--backend", "fal", "--cache-dir", str(tmp_path / "store")]
    assert cli.run([*run, "--plain"]) == 1
    out, err = capsys.readouterr()
    assert "--backend local" in out + err
    assert "Traceback" not in err


def test_ctrl_c_cancels_queued_jobs_and_keeps_running_ones(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    # One job runs at a time, slowly: when Ctrl-C comes, one is running and two are queued.
    with start_emulator(render_pool, latency=30.0, concurrency=1) as emulator:
        process = spawn_run(pipeline, store, "--backend", "local", "--emulator-url", emulator.url)

        def seen_waiting(lines: list[str]) -> bool:
            """Three jobs submitted, and the run has seen each one queued or running."""
            told = {line.split("] ", 1)[1].split(":")[0] for line in lines if "queued" in line}
            told |= {line.split("] ", 1)[1].split(":")[0] for line in lines if "running" in line}
            return len(said_submitted(lines)) == 3 and said_submitted(lines) <= told

        output = Lines(process)
        output.until(seen_waiting)
        process.send_signal(signal.SIGINT)
        out, err = output.finish(timeout=60)
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
