"""What the journal and the upload records let a later run do: send the very body a dead run
was submitting, renew an upload whose URL died early, and say who paid for what."""

from __future__ import annotations

import hashlib
import json
import re
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
from tests.emulator.emulator_helpers import upload
from tests.run_helpers import GENERATION_NODES, make_project, spawn_run

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
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p")
    emulator = start_emulator(require_auth=False)
    step = check_pipeline(pipeline, backend="local").require().steps["intro"]
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
    uploads_before = emulator.stats()["requests"]["upload"]
    plan = ["plan", str(pipeline), "--backend", "local", "--cache-dir", str(tmp_path / "store")]
    capsys.readouterr()
    assert cli.run([*plan, "--json"]) == 0
    rows = {row["node"]: row for row in json.loads(capsys.readouterr().out)["nodes"]}
    assert rows["intro"]["status"] == "render" and "died submitting" in rows["intro"]["reason"]

    assert run(pipeline, tmp_path / "store", emulator.url) == 0
    out = capsys.readouterr().out
    assert "intro: note: run died-mid-submit" in out
    # fal never got it: the listing has no such job, so it is sent again, and the run says so.
    assert "the job is not in fal's request listing 4 s after it was sent" in out
    stats = emulator.stats()
    assert stats["requests"]["listing"] >= 2  # looked, waited, looked again
    # That very body, not one rebuilt around a fresh upload of the same keyframe.
    assert stats["submissions"][fingerprint(step.endpoint.id, body)] == 1
    assert stats["total_submissions"] == len(GENERATION_NODES)
    others = {"orbit": 2, "new_angle": 1}  # what the other nodes upload; intro: nothing
    assert stats["requests"]["upload"] - uploads_before == sum(others.values())


def test_an_upload_whose_url_died_early_is_uploaded_again_once(
    tmp_path: Path, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = make_project(tmp_path / "p", text=ONE_SHOT.replace("PROMPT", "she looks up"))
    keyframe = (tmp_path / "p" / "assets/characters/mara/front_closeup.png").read_bytes()
    sha = hashlib.sha256(keyframe).hexdigest()
    # The CDN drops files after 1.5 s, whatever lifetime the client asked for.
    emulator = start_emulator(file_ttl=1.5, require_auth=False)
    store = tmp_path / "store"
    asked = time.time()
    assert run(pipeline, store, emulator.url) == 0
    with Store.open(store) as opened:
        first = opened.get_upload("local", sha)
    # The lifetime asked for (the header) is what the record expects, not a guess.
    assert first is not None and first.expires_at is not None
    assert asked + UPLOAD_LIFETIME - 5 <= first.expires_at <= time.time() + UPLOAD_LIFETIME
    with httpx.Client() as client:
        deadline = time.monotonic() + 30
        while client.get(first.url).status_code != 404:  # until the CDN has dropped it
            assert time.monotonic() < deadline
            time.sleep(0.1)
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


def test_two_runs_on_one_store_each_report_only_what_they_paid_for(
    tmp_path: Path, start_emulator: StartEmulator
) -> None:
    pipeline = make_project(tmp_path / "p")
    emulator = start_emulator(latency=1.0, require_auth=False)
    args = ("--backend", "local", "--emulator-url", emulator.url)
    runs = [spawn_run(pipeline, tmp_path / "store", *args) for _ in range(2)]
    outputs = [r.communicate(timeout=120)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    step_cost = check_pipeline(pipeline, backend="local").require().steps["street"].usd
    spent, submitted = 0.0, 0
    for out in outputs:
        money = re.search(r"would cost ~\$(\d+\.\d+) on fal", out)
        assert money is not None, out
        spent += float(money.group(1))
        mine = re.search(r"of those rendered: (\d+) submitted by this run", out)
        submitted += int(mine.group(1)) if mine else len(GENERATION_NODES)
    total = emulator.stats()["total_submissions"]
    assert total == len(GENERATION_NODES) == submitted
    assert spent == pytest.approx(total * step_cost, abs=0.011)  # not twice the bill
