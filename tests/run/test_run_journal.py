"""What the journal and the upload records let a later run do, end to end against the
emulator: send the very body a dead run was submitting, renew an upload whose URL died early."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from runner import cli
from runner.compile.check import check_pipeline
from runner.compile.sources import LocalFile
from runner.compile.steps import fill_slots
from runner.emulator import EmulatorServer
from runner.emulator.jobs import fingerprint
from runner.run.uploads import UPLOAD_LIFETIME
from runner.store import Owner, Store
from runner.store.journal import body_digest
from tests.emulator.emulator_helpers import hand_clock, upload
from tests.run_helpers import make_project

StartEmulator = Callable[..., EmulatorServer]

ONE_SHOT = """version: 1
name: renew
defaults: {num_frames: 9, frame_rate: 8, resolution: 480p, expand_prompt: false}
characters:
  mara: {keyframes: {front: assets/characters/mara/front_closeup.png}}
nodes:
  a: {kind: i2v, image: {keyframe: mara.front}, prompt: PROMPT, seed: 1}
"""


def run(pipeline: Path, store: Path, url: str) -> int:
    args = ["run", str(pipeline), "--cache-dir", str(store), "--plain", "--backend", "local"]
    return cli.run([*args, "--emulator-url", url])


def test_a_run_that_died_before_its_submit_reached_fal_sends_the_identical_body(
    tmp_path: Path,
    start_emulator: StartEmulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """End to end: the plan says why, and the run sends the journaled body. (Every other
    kind of entry a dead run leaves: tests/run/test_generation.py.)"""
    # No job of it will ever be listed: the run waits out the whole settle time.
    monkeypatch.setenv("SHOTGRAPH_FAL_LISTING_SETTLE", "1")
    pipeline = make_project(tmp_path / "p", text=ONE_SHOT.replace("PROMPT", "she looks up"))
    emulator = start_emulator(require_auth=False)
    step = check_pipeline(pipeline, backend="local").require().steps["a"]
    assert step.endpoint is not None and step.body is not None
    # What the dead run was sending: its keyframe uploaded under a URL of its own.
    (slot,) = step.slots
    assert isinstance(slot.source, LocalFile)
    with httpx.Client() as client:
        url = upload(client, emulator.url, slot.source.path.read_bytes(), "image/png", "k.png")
    body = fill_slots(step.body, {slot.pointer: url})
    dead = replace(Owner.current("died-mid-submit"), pid=2**22 + 77)
    with Store.open(tmp_path / "store") as store:
        assert store.claim(step.key, dead) is None
        store.begin_submit(step.key, dead, step.endpoint.id, body, body_digest(body))
    plan = ["plan", str(pipeline), "--backend", "local", "--cache-dir", str(tmp_path / "store")]
    capsys.readouterr()
    assert cli.run([*plan, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["nodes"]
    assert row["status"] == "render" and "died submitting" in row["reason"]

    assert run(pipeline, tmp_path / "store", emulator.url) == 0
    out = capsys.readouterr().out
    assert "a: note: run died-mid-submit" in out
    # fal never got it: the listing has no such job, so it is sent again, and the run says so.
    assert "the job is not in fal's request listing 1 s after it was sent" in out
    stats = emulator.stats()
    assert stats["requests"]["listing"] >= 2  # looked, waited, looked again
    # That very body, not one rebuilt around a fresh upload of the same keyframe.
    assert stats["submissions"] == {fingerprint(step.endpoint.id, body): 1}
    assert stats["requests"]["upload"] == 1  # the dead run's only


def test_an_upload_whose_url_died_early_is_uploaded_again_once(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p", text=ONE_SHOT.replace("PROMPT", "she looks up"))
    keyframe = (tmp_path / "p" / "assets/characters/mara/front_closeup.png").read_bytes()
    sha = hashlib.sha256(keyframe).hexdigest()
    # The CDN drops files after a minute, whatever lifetime the client asked for.
    emulator = start_emulator(file_ttl=60, require_auth=False)
    clock = hand_clock(emulator)
    store = tmp_path / "store"
    asked = time.time()
    assert run(pipeline, store, emulator.url) == 0
    with Store.open(store) as opened:
        first = opened.get_upload("local", sha)
    # The lifetime asked for (the header) is what the record expects, not a guess.
    assert first is not None and first.expires_at is not None
    assert asked + UPLOAD_LIFETIME - 5 <= first.expires_at <= time.time() + UPLOAD_LIFETIME
    clock.advance(61)  # the CDN has dropped it; the record still says it is good
    with httpx.Client() as client:
        assert client.get(first.url).status_code == 404
    capsys.readouterr()

    pipeline.write_text(ONE_SHOT.replace("PROMPT", "she looks down"))
    assert run(pipeline, store, emulator.url) == 0
    assert "uploading again and submitting once more" in capsys.readouterr().out
    stats = emulator.stats()
    assert stats["requests"]["upload"] == 2  # once per run: the renewal, not a loop
    assert stats["total_submissions"] == 3 and stats["failed"] == 1
    with Store.open(store) as opened:
        renewed = opened.get_upload("local", sha)
    assert renewed is not None and renewed.url != first.url
    # A third run finds everything cached: the renewed record served the second job.
    assert run(pipeline, store, emulator.url) == 0
    assert emulator.stats()["total_submissions"] == 3
