"""The generation protocol through the fake fal: claim, journal the body, submit, re-attach,
take over, and what happens to a job fal has lost or an input URL that died. Each case is a
journal entry put in place (by a run that is gone, or one still going) and a run after it."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner.compile.steps import Step, fill_slots
from runner.fal import UploadedFile
from runner.run.events import Event, NodeSubmitted, Notice
from runner.store import JournalEntry, Owner, Store
from runner.store.journal import body_digest
from tests.fake_fal import FakeFal, FakeJob, Outcome
from tests.run.fake_run import Collect, executor, run, steps_of
from tests.run_helpers import GENERATION_NODES

DEAD_PID = 2**22 + 1  # above Linux's largest pid: no process has it
ONE_SHOT = """version: 1
name: one
defaults: {num_frames: 9, frame_rate: 8, resolution: 480p, expand_prompt: false}
characters:
  mara: {keyframes: {front: assets/characters/mara/front_closeup.png}}
nodes:
  a: {kind: i2v, image: {keyframe: mara.front}, prompt: PROMPT, seed: 1}
"""


def gone(run_id: str) -> Owner:
    """A run in a process that has ended (killed, say)."""
    return replace(Owner.current(run_id), pid=DEAD_PID)


def died_submitting(
    step: Step, store: Store, fal: FakeFal, run_id: str
) -> tuple[UploadedFile, dict[str, Any]]:
    """Run ``run_id`` claimed ``step``, uploaded its keyframe to ``fal`` and began to send
    its body, then died: the upload and that body."""
    # What the dead run was sending: its keyframe under a URL of its own upload.
    (slot,) = step.slots
    uploaded = asyncio.run(fal.upload(slot.source.path, "image/png"))
    body = fill_slots(step.body, {slot.pointer: uploaded.url})
    dead = gone(run_id)
    assert store.claim(step.key, dead) is None
    assert step.endpoint is not None
    store.begin_submit(step.key, dead, step.endpoint.id, body, body_digest(body))
    return uploaded, body


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "store") as opened:
        yield opened


def test_the_exact_body_is_journaled_before_it_is_sent(tmp_path: Path, store: Store) -> None:
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    at_the_post: list[tuple[FakeJob, list[JournalEntry]]] = []

    def look(job: FakeJob) -> None:  # fal has the request: what does the journal say?
        entries = [entry for _, entry in store.in_flight() if entry.body == job.body]
        at_the_post.append((job, entries))

    fal.on_submit.append(look)
    result, _ = run(steps, store, fal)
    assert result.ok and len(at_the_post) == len(GENERATION_NODES)
    for job, entries in at_the_post:
        (entry,) = entries
        assert entry.state == "submitting" and entry.endpoint == job.endpoint
        assert entry.body_sha256 == body_digest(job.body) and len(entry.attempts) == 1
    assert store.in_flight() == []  # every entry let go once its result was stored


def test_a_bare_claim_of_a_dead_run_is_taken_over_without_a_warning(
    tmp_path: Path, store: Store
) -> None:
    _, steps = steps_of(tmp_path / "p")
    assert store.claim(steps["street"].key, gone("claimed-then-died")) is None
    fal = FakeFal()
    result, events = run(steps, store, fal)
    assert result.ok and len(fal.jobs) == len(GENERATION_NODES)
    assert result.submitted == GENERATION_NODES  # nothing was sent for the claim: ours to pay
    assert not [e for e in events.of(Notice) if "stopped while submitting" in e.message]


def test_a_run_that_died_mid_submit_is_sent_the_identical_body_again(
    tmp_path: Path, store: Store
) -> None:
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    uploaded, body = died_submitting(steps["intro"], store, fal, "died-mid-submit")
    result, events = run(steps, store, fal)
    assert result.ok and len(fal.jobs) == len(GENERATION_NODES)
    # That very body, not one rebuilt around a fresh upload of the same keyframe.
    assert [job.body for job in fal.jobs if job.body.get("image_url") == uploaded.url] == [body]
    notes = [e.message for e in events.of(Notice) if e.node == "intro"]
    # Looked for in fal's request listing first (this fal never got it), then sent, said so.
    assert len(notes) == 2 and "run died-mid-submit" in notes[0]
    assert "not in fal's request listing" in notes[1] and "sending the very same" in notes[1]
    assert uploaded.url not in fal.uploads[1:]  # the other nodes' uploads only


def test_a_run_that_died_mid_submit_is_reattached_when_fal_has_its_job(
    tmp_path: Path, store: Store
) -> None:
    _, steps = steps_of(tmp_path / "p")
    intro = steps["intro"]
    fal = FakeFal()
    _, body = died_submitting(intro, store, fal, "died-after-sending")
    asyncio.run(fal.submit(intro.endpoint.id, body))  # fal queued it; then the run died
    result, events = run(steps, store, fal)
    assert result.ok and len(fal.jobs) == len(GENERATION_NODES) and fal.bodies_sent_twice() == []
    assert result.reattached == {"intro"} and "intro" not in result.submitted
    assert [e for e in events.of(Notice) if "request listing" in e.message and e.node == "intro"]


def test_a_submit_whose_answer_was_lost_is_found_in_the_listing_not_sent_again(
    tmp_path: Path, store: Store
) -> None:
    _, steps = steps_of(tmp_path / "p", ONE_SHOT.replace("PROMPT", "she looks up"))
    fal = FakeFal()
    fal.script(Outcome("uncertain"))  # fal queued it; the answer never came back
    result, events = run(steps, store, fal)
    assert result.ok and len(fal.jobs) == 1 and fal.bodies_sent_twice() == []
    assert [e for e in events.of(Notice) if "looking for the job in fal's request" in e.message]
    assert store.in_flight() == []


def test_a_submitted_job_of_a_dead_run_is_reattached_not_sent_again(
    tmp_path: Path, store: Store
) -> None:
    _, steps = steps_of(tmp_path / "p")
    street = steps["street"]
    fal = FakeFal()
    handle = asyncio.run(fal.submit(street.endpoint.id, dict(street.body)))
    dead = gone("killed-while-waiting")
    store.claim(street.key, dead)
    store.begin_submit(street.key, dead, street.endpoint.id, street.body, body_digest(street.body))
    store.record_submission(street.key, dead, street.endpoint.id, handle.as_dict())
    result, events = run(steps, store, fal)
    assert result.ok and len(fal.jobs) == len(GENERATION_NODES)  # street's only once
    assert result.reattached == {"street"} and result.submitted == GENERATION_NODES - {"street"}
    # Paid for by the run that submitted it: not on this run's bill.
    assert result.reattached_usd == pytest.approx(street.usd)
    assert result.spent_usd == pytest.approx(sum(steps[n].usd for n in result.submitted))
    (reattached,) = [e for e in events.of(NodeSubmitted) if e.reattached]
    assert reattached.node == "street" and reattached.request_id == handle.request_id
    assert result.records["street"].extra.get("reattached") is True


def test_a_journaled_job_fal_does_not_know_is_submitted_again(tmp_path: Path, store: Store) -> None:
    _, steps = steps_of(tmp_path / "p")
    street = steps["street"]
    fal = FakeFal()
    dead = gone("from-another-fal")
    store.claim(street.key, dead)
    store.record_submission(
        street.key, dead, street.endpoint.id, fal.handle(street.endpoint.id, "unknown").as_dict()
    )
    result, events = run(steps, store, fal)
    assert result.ok and len(fal.jobs) == len(GENERATION_NODES)
    assert [
        e for e in events.of(Notice) if e.node == "street" and "submitting it again" in e.message
    ]


def test_a_result_fal_dropped_is_rendered_again_once(tmp_path: Path, store: Store) -> None:
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    fal.script(Outcome("expired"), prompt="wet street")
    result, _ = run(steps, store, fal)
    assert result.ok and len([job for job in fal.jobs if "wet street" in job.prompt]) == 2
    # Lost again: once is the limit, the node fails instead of paying on and on.
    fal.script(Outcome("expired"), prompt="wet street", times=None)
    store.delete_result(steps["street"].key)
    again, _ = run(steps, store, fal)
    assert "expired" in again.failed["street"].message
    assert len([job for job in fal.jobs if "wet street" in job.prompt]) == 4


def test_an_upload_fal_cannot_download_any_more_is_uploaded_again_once(
    tmp_path: Path, store: Store
) -> None:
    _, steps = steps_of(tmp_path / "p", ONE_SHOT.replace("PROMPT", "she looks up"))
    fal = FakeFal()
    assert run(steps, store, fal)[0].ok
    (first,) = fal.uploads
    fal.expire(first)  # the CDN dropped it long before the record says
    _, steps = steps_of(tmp_path / "p", ONE_SHOT.replace("PROMPT", "she looks down"))
    result, events = run(steps, store, fal)
    assert result.ok and len(fal.uploads) == 2 and len(fal.jobs) == 3  # failed, then again
    assert [e for e in events.of(Notice) if "uploading again" in e.message]
    keyframe = steps["a"].slots[0].source.sha256
    assert store.get_upload("fal", keyframe).url == fal.uploads[1]
    # A CDN that drops every upload: renewed once, then the node fails (no loop).
    fal.on_submit.append(lambda job: [fal.expire(url) for url in fal.uploads if url in fal._files])
    _, steps = steps_of(tmp_path / "p", ONE_SHOT.replace("PROMPT", "she looks aside"))
    result, _ = run(steps, store, fal)
    assert "could not be downloaded" in result.failed["a"].message
    assert len(fal.uploads) == 3 and len(fal.jobs) == 5


def test_a_claim_of_a_run_still_going_is_waited_on_then_taken_over_when_it_goes_quiet(
    tmp_path: Path, store: Store
) -> None:
    """A run on another host holds street's claim: waited on while its heartbeat is fresh,
    taken over (and submitted: a bare claim sent nothing) once it is stale."""
    _, steps = steps_of(tmp_path / "p")
    elsewhere = Owner("ci-job-1", 4242, "ci-runner-7f3a", time.time() - 120)
    assert store.claim(steps["street"].key, elsewhere) is None
    store.beat(elsewhere)
    waiting = threading.Event()

    class Watch(Collect):
        def handle(self, event: Event) -> None:
            super().handle(event)
            if isinstance(event, Notice) and "waiting for run ci-job-1" in event.message:
                waiting.set()

    fal = FakeFal()
    events = Watch()

    async def go() -> None:
        task = asyncio.create_task(executor(steps, store, fal, events).run())
        assert await asyncio.to_thread(waiting.wait, 30)
        assert "wet street" not in str(fal.sent())  # not while it may still be sending
        store._runs.set(elsewhere.run_id, {"v": 1, "at": time.time() - 3600})  # gone quiet
        result = await task
        assert result.ok and result.submitted == GENERATION_NODES

    asyncio.run(go())
    assert len(fal.jobs) == len(GENERATION_NODES)
    assert not [e for e in events.of(Notice) if "stopped while submitting" in e.message]


async def test_two_runs_on_one_store_render_each_job_once_and_each_pays_its_own(
    tmp_path: Path, store: Store
) -> None:
    _, steps = steps_of(tmp_path / "p")
    fal = FakeFal()
    fal.pause(running=2)  # both runs get going before any job ends
    with Store.open(store.root) as other:
        runs = [executor(steps, store, fal, Collect()), executor(steps, other, fal, Collect())]
        both = asyncio.gather(*(r.run() for r in runs))
        await fal.until(lambda: len(fal.jobs) >= 3)
        fal.resume()
        first, second = await both
    assert first.ok and second.ok
    assert len(fal.jobs) == len(GENERATION_NODES) and not fal.bodies_sent_twice()
    assert first.submitted | second.submitted == GENERATION_NODES
    assert not first.submitted & second.submitted
    # Each bills what it submitted; what it received from the other run cost it nothing.
    assert first.spent_usd + second.spent_usd == pytest.approx(
        sum(steps[n].usd for n in GENERATION_NODES)
    )
    for mine, theirs in ((first, second), (second, first)):
        assert mine.received <= theirs.submitted | theirs.reattached
