"""A full disk is the user's to fix, never a lost or doubled submit: reporters that fail, a
journal that cannot be written before or after a submit, and a real full tmpfs."""

from __future__ import annotations

import asyncio
import errno
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runner.compile.steps import Step
from runner.errors import DiskFull
from runner.run.events import Event, Fanout, Notice
from runner.run.executor import Executor
from runner.run.outcome import RunOptions, RunResult
from runner.store import Store
from tests.fake_fal import FakeFal
from tests.run.fake_run import steps_of
from tests.run_helpers import GENERATION_NODES, WIDE, make_project, spawn_run, start_emulator
from tests.small_disk import fill, small_disk, unfill


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)


class FullAfter:
    """A reporter on a disk that fills up after ``n`` events."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.closed = False

    def handle(self, event: Event) -> None:
        assert not self.closed, "an event after the reporter was dropped"
        self.left -= 1
        if self.left < 0:
            raise OSError(errno.ENOSPC, "No space left on device", "/full/run.jsonl")

    def close(self) -> None:
        self.closed = True


def execute(steps: dict[str, Step], store: Store, fal: FakeFal, reporter: Any) -> RunResult:
    executor = Executor(steps, store, lambda: fal, reporter, RunOptions(backend="fal", jobs=2))
    return asyncio.run(executor.run())


def test_a_reporter_that_fails_never_stops_the_run(tmp_path: Path) -> None:
    _, steps = steps_of(tmp_path / "p")
    screen, log = Collect(), FullAfter(3)
    with Store.open(tmp_path / "store") as store:
        result = execute(steps, store, FakeFal(), Fanout(screen, log))
    assert log.closed  # dropped and let go of
    assert result.ok and len(result.rendered) == 7, result.failed
    assert result.notes == [
        "FullAfter stopped (No space left on device: /full/run.jsonl); the run went on without it"
    ]
    assert any(isinstance(e, Notice) and "FullAfter stopped" in e.message for e in screen.events)
    # A bare reporter (no Fanout around it) is guarded just the same.
    with Store.open(tmp_path / "store2") as store:
        assert execute(steps, store, FakeFal(), FullAfter(0)).ok


def test_a_journal_entry_that_cannot_be_written_stops_the_run_before_paying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    fal.pause(running=1)  # the first job is still out when the disk fills up
    writes: list[str] = []
    real = Store.begin_submit

    def begin_submit(self: Store, key: str, *args: Any) -> Any:
        writes.append(key)
        if len(writes) > 1:  # the disk fills up after the first job's entry
            fal.resume()
            raise DiskFull(self.root / "records" / "journal")
        return real(self, key, *args)

    monkeypatch.setattr(Store, "begin_submit", begin_submit)
    with Store.open(tmp_path / "store") as store:
        result = execute(steps, store, fal, Collect())
        assert isinstance(result.stopped, DiskFull)
        assert len(fal.jobs) == 1  # nothing sent without its entry
        assert len(result.submitted) == 1 and result.skipped
        # The one paid job was collected; the refused ones left no entry behind.
        assert store.in_flight() == []
    monkeypatch.setattr(Store, "begin_submit", real)
    with Store.open(tmp_path / "store") as store:
        again = execute(steps, store, fal, Collect())
    assert again.ok and len(again.cached) == 1
    assert len(fal.jobs) == len(GENERATION_NODES) and not fal.bodies_sent_twice()


def test_a_paid_jobs_handle_is_journaled_with_the_reserve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    real = Store.record_submission
    refused: list[str] = []

    def record_submission(self: Store, key: str, *args: Any) -> None:
        if not refused and self.reserve.path.exists():  # full until the reserve is spent
            refused.append(key)
            raise DiskFull(self.root / "records" / "journal")
        real(self, key, *args)

    monkeypatch.setattr(Store, "record_submission", record_submission)
    with Store.open(tmp_path / "store") as store:
        result = execute(steps, store, fal, Collect())
        assert refused and not store.reserve.path.exists()
        assert isinstance(result.stopped, DiskFull)
    monkeypatch.setattr(Store, "record_submission", real)
    with Store.open(tmp_path / "store") as store:
        assert execute(steps, store, fal, Collect()).ok
        assert store.reserve.path.exists()  # put back by a run with room for it
    assert len(fal.jobs) == len(GENERATION_NODES) and not fal.bodies_sent_twice()


@pytest.mark.parametrize("free_mb", [0.5, 2.2])  # no room for the reserve; mid-run
def test_a_full_disk_ends_in_exit_1_and_the_rerun_submits_nothing_twice(
    tmp_path: Path, render_pool: ProcessPoolExecutor, free_mb: float
) -> None:
    with small_disk(tmp_path / "disk") as disk, start_emulator(render_pool, latency=0.2) as fal:
        # The project, its outputs, lockfile, store and run log on the small disk; fal
        # (the emulator) elsewhere, as it is.
        # The demo's wide clips, as the free space above was chosen for: the disk fills
        # at the moment each case names.
        pipeline = make_project(disk / "p", text=WIDE)
        store = disk / "store"
        fill(disk, leave=int(free_mb * 1e6))
        args = ("--backend", "local", "--emulator-url", fal.url)
        first = spawn_run(pipeline, store, *args)
        out, err = first.communicate(timeout=120)
        assert first.returncode == 1, out + err
        assert "Traceback" not in err and "internal error" not in err, err
        assert f"the disk mounted at {disk} is full" in out + err
        unfill(disk)
        again = spawn_run(pipeline, store, *args)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, out + err
        stats = fal.stats()
    # Every job exactly once across both runs: none lost, none paid twice.
    assert stats["total_submissions"] == len(GENERATION_NODES), stats["submissions"]
    assert set(stats["submissions"].values()) == {1}
