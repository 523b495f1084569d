"""The executor through the fake fal (tests/fake_fal.py): what it sends, in which order, what
it reports, what a failure takes down with it, the budget, Ctrl-C and the lockfile. No
sockets, no processes: each run takes milliseconds."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import av
import pytest

from runner.compile.sources import LocalFile
from runner.fal import Downloaded
from runner.hashing import sha256_file
from runner.lock import build_lock, read_lock, write_lock
from runner.run.budget import Budget
from runner.run.events import (
    NodeCached,
    NodeDone,
    NodeFailed,
    NodeSkipped,
    NodeStarted,
    OutputWritten,
    RunFinished,
    RunStarted,
)
from runner.run.outcome import RunResult
from runner.run.uploads import Materializer
from runner.store import Owner, Store, TieredStore, UploadRecord
from tests.fake_fal import FakeFal, Outcome
from tests.run.fake_run import Collect, executor, run, steps_of
from tests.run_helpers import GENERATION_NODES

ALL = GENERATION_NODES | {"best_frame", "cut"}
DEAD_PID = 2**22 + 1  # above Linux's largest pid: no process has it


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "store") as opened:
        yield opened


def test_a_run_sends_each_request_once_and_the_next_sends_nothing(
    tmp_path: Path, store: Store
) -> None:
    _, steps = steps_of(tmp_path / "p")
    outputs = {"cut": tmp_path / "out" / "cut.mp4", "best_frame": tmp_path / "out" / "best.png"}
    fal = FakeFal()
    result, events = run(steps, store, fal, outputs=outputs)
    assert result.ok and result.rendered == ALL
    assert sorted(job.endpoint for job in fal.jobs) == sorted(
        steps[n].endpoint.id for n in GENERATION_NODES if steps[n].endpoint
    )
    assert result.spent_usd == pytest.approx(sum(steps[n].usd for n in GENERATION_NODES))
    # What was sent is the compiled body, with each media slot now a URL fal serves.
    intro = next(job for job in fal.jobs if job.body.get("image_url") and "breathing" in job.prompt)
    assert intro.body == {**steps["intro"].body, "image_url": intro.body["image_url"]}
    assert intro.body["image_url"] in fal.uploads
    # Each node: started, submitted, done, in that order; a node never before its inputs.
    order = [(type(e).__name__, getattr(e, "node", None)) for e in events.events]
    for name in GENERATION_NODES:
        mine = [kind for kind, node in order if node == name]
        assert mine.index("NodeStarted") < mine.index("NodeSubmitted") < mine.index("NodeDone")
    done = [e.node for e in events.of(NodeDone)]
    assert done.index("intro") < done.index("intro_more") < done.index("best_frame")
    assert done.index("best_frame") < done.index("new_angle") < done.index("cut")
    assert isinstance(events.events[0], RunStarted) and isinstance(events.events[-1], RunFinished)
    assert events.nodes(OutputWritten) == {"cut", "best_frame"}
    with av.open(str(outputs["cut"])) as container:  # the fake's clips, really stitched
        assert sum(1 for _ in container.decode(video=0)) == 4 * 4

    again, events = run(steps, store, fal, outputs=outputs)
    assert again.ok and again.cached == ALL and len(fal.jobs) == 5
    assert fal.opened == 1  # nothing to render: fal is not even connected to
    assert events.nodes(NodeCached) == ALL and not events.of(OutputWritten)  # already there


def test_the_lockfile_of_a_run_reads_back_and_a_rerun_leaves_it_byte_identical(
    tmp_path: Path, store: Store
) -> None:
    pipeline, steps = steps_of(tmp_path / "p")
    from runner.compile.check import check_pipeline

    compiled = check_pipeline(pipeline, backend="fal").require()
    fal = FakeFal()
    first, _ = run(steps, store, fal)
    path = pipeline.with_name("tiny.lock.json")
    assert write_lock(path, build_lock(compiled, first.records, {}))
    text = path.read_text()
    lock = read_lock(path)
    assert set(lock.nodes) == ALL and lock.backend == "fal"
    intro = lock.nodes["intro"]
    # Media by content, never by the URL it had on one day.
    assert intro.request is not None and intro.request["image_url"].startswith("sha256:")
    assert intro.output.sha256 == first.records["intro"].output.sha256
    assert intro.request_id in {job.request_id for job in fal.jobs}
    second, _ = run(steps, store, fal)
    assert not write_lock(path, build_lock(compiled, second.records, {}))  # unchanged
    assert path.read_text() == text


def test_a_failed_node_fails_only_its_descendants(tmp_path: Path, store: Store) -> None:
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    fal.script(Outcome("failed", message="the GPU caught fire"), prompt="subtle breathing")
    result, events = run(steps, store, fal)
    assert (
        set(result.failed) == {"intro"} and "the GPU caught fire" in result.failed["intro"].message
    )
    assert result.skipped == {"intro_more", "best_frame", "new_angle", "cut"}
    assert result.rendered == {"street", "orbit"}
    assert events.nodes(NodeSkipped) == result.skipped
    assert store.in_flight() == []  # a failed job's claim is let go: the next run submits


def test_a_request_the_model_rejects_says_which_field(tmp_path: Path, store: Store) -> None:
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    detail = ({"loc": ["body", "num_frames"], "msg": "must be at least 9", "type": "too_small"},)
    fal.script(Outcome("rejected", detail=detail), prompt="wet street")
    fal.script(Outcome("refused", detail=detail), prompt="reference image")  # a 422 at submit
    result, events = run(steps, store, fal)
    assert (
        result.failed["street"].message
        == "fal rejected the request: num_frames: must be at least 9"
    )
    assert (
        result.failed["orbit"].message == "fal rejected the request: num_frames: must be at least 9"
    )
    assert not [job for job in fal.jobs if "reference image" in job.prompt]  # refused: never queued
    assert {e.node for e in events.of(NodeFailed)} == {"street", "orbit"}
    assert store.in_flight() == []


def test_the_same_request_twice_is_one_job_priced_once(tmp_path: Path, store: Store) -> None:
    text = """version: 1
name: twins
defaults: {num_frames: 9, frame_rate: 8, resolution: 480p}
nodes:
  a: {kind: t2v, prompt: the same shot, seed: 5}
  b: {kind: t2v, prompt: the same shot, seed: 5}
"""
    _, steps = steps_of(tmp_path / "p", text)
    one_job = steps["a"].usd
    fal = FakeFal()
    # Enough budget for one job, not two: the second node shares the first's.
    result, events = run(steps, store, fal, budget=one_job)
    assert result.ok and len(fal.jobs) == 1
    assert events.of(RunStarted)[0].estimated_usd == pytest.approx(one_job)
    assert result.spent_usd == pytest.approx(one_job)
    assert {e.node: e.cost_usd for e in events.of(NodeDone)} == {"a": one_job, "b": 0.0}


def test_the_budget_stops_submitting_past_its_limit(tmp_path: Path, store: Store) -> None:
    _, steps = steps_of(tmp_path / "p")
    per_job = steps["street"].usd
    fal = FakeFal()
    # Room for two jobs: the first two submitted go, the third is refused, and with it
    # everything that needs it.
    result, _ = run(steps, store, fal, budget=per_job * 2.5, jobs=1)
    assert len(fal.jobs) == 2 and result.spent_usd == pytest.approx(per_job * 2)
    assert result.failed and all("over the budget" in f.message for f in result.failed.values())
    assert all("raise --budget" in (f.hint or "") for f in result.failed.values())
    assert store.in_flight() == []  # the refused step dropped its claim


def test_a_budget_gives_back_what_a_refused_submission_reserved(tmp_path: Path) -> None:
    _, steps = steps_of(tmp_path / "p")
    budget = Budget(steps["street"].usd * 1.5)
    cost = budget.reserve(steps["street"])
    with pytest.raises(Exception, match="over the budget"):
        budget.reserve(steps["intro"])
    budget.refund(cost)
    assert budget.reserve(steps["intro"]) == steps["intro"].usd
    assert Budget(None).reserve(steps["street"]) == steps["street"].usd  # no limit


def test_shots_that_start_together_share_one_upload(tmp_path: Path, store: Store) -> None:
    text = """version: 1
name: four
defaults: {num_frames: 9, frame_rate: 8, resolution: 480p, expand_prompt: false}
characters:
  mara: {keyframes: {front: assets/characters/mara/front_closeup.png}}
nodes:
  a: {kind: i2v, image: {keyframe: mara.front}, prompt: she looks up, seed: 1}
  b: {kind: i2v, image: {keyframe: mara.front}, prompt: she looks down, seed: 2}
  c: {kind: i2v, image: {keyframe: mara.front}, prompt: she smiles, seed: 3}
"""
    _, steps = steps_of(tmp_path / "p", text)
    fal = FakeFal()
    result, _ = run(steps, store, fal)
    assert result.ok and len(fal.jobs) == 3 and len(fal.uploads) == 1
    assert {job.body["image_url"] for job in fal.jobs} == set(fal.uploads)


async def test_a_step_whose_lookup_missed_an_upload_that_ended_meanwhile_shares_it(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store read of the second and third steps began before the first step's upload
    # was recorded, and returns after that upload has ended: they must not upload again.
    picture = tmp_path / "key.png"
    picture.write_bytes(b"a keyframe's bytes")
    source = LocalFile(picture, *sha256_file(picture))
    tiered = TieredStore(store)
    first_done = asyncio.Event()
    read = tiered.get_upload
    reads = 0

    async def read_answered_late(backend: str, sha256: str) -> UploadRecord | None:
        nonlocal reads
        reads += 1
        late = reads > 1
        known = await read(backend, sha256)
        if late:
            await first_done.wait()
        return known

    monkeypatch.setattr(tiered, "get_upload", read_answered_late)
    fal = FakeFal()
    materializer = Materializer(tiered, fal, "fal")

    async def first() -> str:
        url = await materializer.url(source, {})
        first_done.set()
        return url

    urls = await asyncio.gather(first(), materializer.url(source, {}), materializer.url(source, {}))
    assert reads == 3 and len(fal.uploads) == 1 and set(urls) == set(fal.uploads)


def test_ctrl_c_cancels_queued_jobs_and_keeps_the_running_one(tmp_path: Path, store: Store) -> None:
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    fal.pause(running=1)  # one job runs; the others wait in fal's queue
    gone = replace(Owner.current("interrupted"), pid=DEAD_PID)  # its process ends with it

    async def interrupt() -> RunResult:
        task = asyncio.create_task(executor(steps, store, fal, Collect(), owner=gone).run())
        await fal.until(lambda: len(fal.jobs) == 3 and all(job.seen for job in fal.jobs))
        task.cancel()  # what asyncio.run does at Ctrl-C
        return await task

    result = asyncio.run(interrupt())
    assert result.interrupted
    assert len([job for job in fal.jobs if job.cancelled]) == 2
    (running,) = [job for job in fal.jobs if job.state == "IN_PROGRESS"]
    # The running job stays journaled, for the next run to collect; the queued ones are gone.
    ((key, entry),) = store.in_flight()
    assert entry.state == "submitted" and entry.handle["request_id"] == running.request_id
    assert [steps[name].key for name in result.in_flight] == [key]
    fal.resume()
    again, _ = run(steps, store, fal)
    assert again.ok and again.reattached == set(result.in_flight)
    # The cancelled ones cost nothing and were sent again; the running one was collected.
    assert len([job for job in fal.jobs if not job.cancelled]) == 5


def test_ctrl_c_during_a_slow_cancel_keeps_the_job_that_started_meanwhile(
    tmp_path: Path, store: Store
) -> None:
    """fal answers "cancellation requested" for a running job too: a job that starts while
    the cancel is on its way must stay journaled, and the next run collects it."""
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    fal.pause(running=1)

    async def interrupt() -> RunResult:
        fal.cancel_gate = asyncio.Event()
        run = executor(
            steps, store, fal, Collect(), owner=replace(Owner.current("i"), pid=DEAD_PID)
        )
        task = asyncio.create_task(run.run())
        await fal.until(lambda: len(fal.jobs) == 3 and all(job.seen for job in fal.jobs))
        task.cancel()
        await fal.until(lambda: len(fal.cancels) == 2)  # both queued jobs: cancels on the way
        fal.pause(running=2)  # meanwhile one of them starts
        fal.cancel_gate.set()
        return await task

    result = asyncio.run(interrupt())
    assert result.interrupted and len([job for job in fal.jobs if job.cancelled]) == 1
    started = [job for job in fal.jobs if job.state == "IN_PROGRESS"]
    assert len(started) == 2 and len(result.in_flight) == 2
    assert {e.handle["request_id"] for _, e in store.in_flight()} == {j.request_id for j in started}
    fal.cancel_gate = None
    fal.resume()
    again, _ = run(steps, store, fal)
    assert again.ok and again.reattached == set(result.in_flight)
    # Every job paid for once: the one cancelled cost nothing and was sent again.
    paid = [job.body for job in fal.jobs if not job.cancelled]
    assert len(paid) == len(GENERATION_NODES) and all(paid.count(b) == 1 for b in paid)


def test_a_keyframe_edited_during_the_run_fails_its_node_not_the_cache(
    tmp_path: Path, store: Store
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
    _, steps = steps_of(tmp_path / "p", text)
    keyframe = tmp_path / "p" / "assets" / "characters" / "mara" / "front_closeup.png"
    fal = FakeFal()
    # Edited after the plan hashed it, before y uploads it.
    fal.on_submit.append(
        lambda job: keyframe.write_bytes(keyframe.with_name("three_quarter.png").read_bytes())
    )
    result, _ = run(steps, store, fal)
    assert set(result.failed) == {"y"} and "does not match" in result.failed["y"].message
    assert len(fal.jobs) == 1 and fal.uploads == []
    assert not list(store.uploads())  # nothing recorded under the old hash


def test_nothing_is_submitted_when_a_media_step_is_all_that_changed(
    tmp_path: Path, store: Store
) -> None:
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    run(steps, store, fal)
    store.delete_result(steps["cut"].key)
    result, events = run(steps, store, fal)
    assert result.rendered == {"cut"} and len(fal.jobs) == 5
    assert [e.node for e in events.of(NodeStarted)] == ["cut"]
    assert fal.opened == 1  # a local step needs no connection to fal


def test_a_job_done_at_fal_frees_its_place_before_its_download(
    tmp_path: Path, store: Store
) -> None:
    """-j counts the jobs at fal: once fal is done with one, the next ready node is
    submitted while its result is fetched and recorded (with -j 1 here, the first download
    waits for the second submit; were the place held through it, that would never come)."""

    class SlowFirstDownload(FakeFal):
        async def download(
            self, url: str, dest: Path, *, expected_size: int | None = None
        ) -> Downloaded:
            if not self.downloads:
                await asyncio.wait_for(self.until(lambda: len(self.jobs) >= 2), 10)
            return await super().download(url, dest, expected_size=expected_size)

    _, steps = steps_of(tmp_path)
    fal = SlowFirstDownload()
    result, _ = run(steps, store, fal, jobs=1)
    assert result.ok, result.failed
    assert len(fal.jobs) == len(GENERATION_NODES)
