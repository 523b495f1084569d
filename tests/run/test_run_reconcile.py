"""An uncertain submit is looked up in fal's request listing before anything is paid again:
an answer lost within a run, a run killed between fal accepting a submit and answering it,
and a submit that never reached fal."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner import cli
from runner.emulator import EmulatorServer
from runner.errors import ExitCode
from runner.fal import Credentials, FalClient, FalConfig, Secret
from runner.run.reconcile import find_job
from runner.store import JournalEntry, Owner
from runner.store.journal import body_digest
from tests.run_helpers import make_project, rendered, spawn_run

StartEmulator = Callable[..., EmulatorServer]

ONE_SHOT = """version: 1
name: uncertain
defaults: {num_frames: 9, frame_rate: 8, resolution: 480p, expand_prompt: false}
nodes:
  shot: {kind: t2v, prompt: PROMPT, seed: 3}
"""
ENDPOINT = "fal-ai/ltx-video-13b-distilled"


def run(pipeline: Path, store: Path, url: str) -> int:
    args = ["run", str(pipeline), "--cache-dir", str(store), "--plain", "--backend", "local"]
    return cli.run([*args, "--emulator-url", url])


def test_an_answer_lost_on_the_way_back_is_found_in_the_listing_not_paid_again(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = start_emulator(latency=0.3, require_auth=False)
    # fal accepts the submit, then the connection drops before its answer (a lost 2xx).
    emulator.set_faults([{"kind": "lose_answer"}])
    pipeline = make_project(tmp_path / "p", text=ONE_SHOT.replace("PROMPT", "a lost answer"))
    assert run(pipeline, tmp_path / "store", emulator.url) == 0
    out = capsys.readouterr().out
    assert "fal's answer to the submit was lost" in out
    assert "found it in fal's request listing: re-attaching to request" in out
    stats = emulator.stats()
    assert stats["faults_fired"] == {"lose_answer": 1}
    assert stats["total_submissions"] == 1


def test_a_listing_that_cannot_be_read_pays_nothing_and_the_next_run_looks_again(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = start_emulator(latency=0.2, require_auth=False)
    # The answer is lost and fal's platform API refuses the key (403) for the look-up.
    emulator.set_faults(
        [{"kind": "lose_answer"}, {"kind": "locked", "route": "listing", "times": None}]
    )
    pipeline = make_project(tmp_path / "p", text=ONE_SHOT.replace("PROMPT", "unreadable"))
    store = tmp_path / "store"
    # In a process of its own, as from a shell: a run that ended is gone, and its
    # "submitting" entry is the next run's to look up (a live process would be waited for).
    first = spawn_run(pipeline, store, "--backend", "local", "--emulator-url", emulator.url)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == ExitCode.RENDER_FAILED  # running again may help: it does
    assert "fal's request listing could not be read" in out
    assert emulator.stats()["total_submissions"] == 1  # not sent again blindly
    emulator.set_faults([])
    assert run(pipeline, store, emulator.url) == 0
    assert "found it in fal's request listing: re-attaching" in capsys.readouterr().out
    assert emulator.stats()["total_submissions"] == 1


@pytest.mark.parametrize("kill", range(3))
def test_a_run_killed_between_fals_accept_and_its_answer_is_re_attached(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str], kill: int
) -> None:
    """The fast version of benchmarks/uncertain_submit_trial.py (20 kills there)."""
    emulator = start_emulator(latency=0.2, require_auth=False, state_dir=tmp_path / "fal")
    # fal accepts the job, then holds its answer: the runner is killed while it waits.
    emulator.set_faults([{"kind": "lose_answer", "seconds": 60}])
    text = ONE_SHOT.replace("PROMPT", f"killed while fal answers {kill}")
    pipeline = make_project(tmp_path / "p", text=text)
    store = tmp_path / "store"
    runner = spawn_run(pipeline, store, "--backend", "local", "--emulator-url", emulator.url)
    deadline = time.monotonic() + 60
    while emulator.stats()["total_submissions"] < 1:  # fal has accepted the job
        assert runner.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    runner.send_signal(signal.SIGKILL)
    runner.communicate()
    emulator.set_faults([])

    assert run(pipeline, store, emulator.url) == 0
    out = capsys.readouterr().out
    assert "stopped while submitting this job" in out
    assert "found it in fal's request listing: re-attaching to request" in out
    assert emulator.stats()["total_submissions"] == 1  # not paid twice
    assert rendered(store) == {"shot"}


async def test_a_submit_fal_never_got_is_not_found_once_the_settle_time_passed(
    start_emulator: StartEmulator,
) -> None:
    emulator = start_emulator(latency=0.0, require_auth=False)
    config = FalConfig(
        queue_url=emulator.url,
        rest_url=emulator.url,
        api_url=f"{emulator.url}/v1",
        listing_settle=0.3,
        listing_poll=0.05,
    )
    body = {"prompt": "never sent", "num_frames": 9, "resolution": "480p", "seed": 1}
    sent_at = time.time()
    entry = JournalEntry(
        "submitting",
        Owner.current("gone"),
        ENDPOINT,
        body=body,
        body_sha256=body_digest(body),
        attempts=(sent_at,),
    )
    waited: list[float] = []
    readings = iter([sent_at])  # the first look reads the clock at the attempt itself, so

    def clock() -> float:  # a machine slow to list (under load) still waits the whole settle
        return next(readings, None) or time.time()

    async with FalClient(config, Credentials(Secret("id:secret"))) as client:
        assert await find_job(client, entry, waiting=waited.append, clock=clock) is None
        assert time.time() >= sent_at + 0.3
        assert waited == [pytest.approx(0.3)]
        # Once fal has it (and it has ended), the same entry finds it at once.
        job = await client.submit(ENDPOINT, dict(reversed(list(body.items()))))
        await client.wait(job)
        found = await find_job(client, entry)
        assert found is not None and found.request_id == job.request_id
        # The same body sent twice: both are found; the earliest is the one collected.
        again = await client.submit(ENDPOINT, body)
        await client.wait(again)
        twice = await find_job(client, entry)
        assert twice is not None
        assert (twice.request_id, twice.others) == (job.request_id, (again.request_id,))
