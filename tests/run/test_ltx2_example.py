"""The LTX-2 example pipeline (pipelines/ltx2-sound.yaml), end to end: it validates, its plan
prices each shot by fal's formulas (hand-computed below from fal's published prices), and it
renders on the local backend with sound in every clip and a cut whose sound runs unbroken
for as long as its pictures. The lockfile records each output's audio stream.

The render is marked slow: LTX-2 Pro and Fast render 1080p at the least, so the cut is 421
frames of 1080p (the emulator draws its animatics at a quarter of that, its test aid, but
the files and the stitch are full size). It takes about 20 s here; the figure is printed."""

from __future__ import annotations

import json
import math
import shutil
import time
from array import array
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.media import probe, read_audio
from runner.store import Store
from tests.run_helpers import ASSETS, lock_of, run_local

EXAMPLE = Path(__file__).resolve().parents[2] / "pipelines" / "ltx2-sound.yaml"


def project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / ".git").mkdir()
    shutil.copytree(ASSETS, root / "assets")
    return Path(shutil.copy(EXAMPLE, root / EXAMPLE.name))


def plan(pipeline: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert (
        cli.run(["plan", str(pipeline), "--json", "--cache-dir", str(pipeline.parent / "s")]) == 0
    )
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return {row["node"]: row for row in document["nodes"]} | {"total": document["total"]}


def test_the_plan_prices_each_shot_by_fals_formula(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = plan(project(tmp_path / "p"), capsys)
    # Hand-computed from fal's published prices:
    #   street, LTX-2 Fast t2v, 6 s at 1080p: 6 x $0.04             = $0.24
    #   intro, LTX-2 Pro i2v, 6 s at 1080p:   6 x $0.06             = $0.36 (fal's own example)
    #   intro_more, LTX-2 19B extend, 121 frames at 1280x720:
    #     1280 x 720 x 121 = 111,513,600 px -> 112 MP (rounded up) x $0.0018 = $0.2016
    #   intro_retake, LTX-2 retake of 2 s:    2 x $0.10             = $0.20 (unconfirmed unit)
    expected = {"street": 0.24, "intro": 0.36, "intro_more": 0.2016, "intro_retake": 0.2}
    assert {name: rows[name]["estimated_usd"] for name in expected} == expected
    assert rows["total"]["estimated_usd"] == pytest.approx(sum(expected.values()))
    assert rows["intro"]["price"]["unit"] == "per second"
    assert rows["intro"]["price"]["inputs"] == {
        "usd_per_second": 0.06,
        "seconds": 6.0,
        "resolution": "1080p",
    }
    more = rows["intro_more"]["price"]
    assert more["unit"] == "per megapixel"
    assert (more["inputs"]["width"], more["inputs"]["height"]) == (1280, 720)
    assert (more["inputs"]["num_frames"], more["inputs"]["megapixels"]) == (121, 112)
    assert rows["intro_retake"]["price_confirmed"] is False
    assert rows["intro"]["price_confirmed"] and rows["street"]["price_confirmed"]
    assert rows["cut"]["price"] is None


def _level(data: bytes) -> float:
    samples = array("h")
    samples.frombytes(data)
    return math.sqrt(sum(x * x for x in samples) / max(1, len(samples))) / 32767


@pytest.mark.slow
def test_it_renders_with_sound_across_the_cut(tmp_path: Path, start_emulator: Any) -> None:
    pipeline = project(tmp_path / "p")
    store = tmp_path / "store"
    emulator = start_emulator(concurrency=4, require_auth=False)
    started = time.perf_counter()
    code = run_local(pipeline, emulator.url, store)
    print(f"ltx2-sound.yaml rendered on the emulator in {time.perf_counter() - started:.1f} s")
    assert code == 0
    lock = lock_of(pipeline)
    files = Store(store)
    clips = {}
    for name in ("street", "intro", "intro_retake", "intro_more"):
        entry = lock.nodes[name]
        info = probe(files.file_path(entry.output.sha256))
        assert info.audio is not None, f"{name} has no sound"
        assert entry.output.audio == info.audio.as_json()
        clips[name] = info
    assert (clips["intro"].width, clips["intro"].height, clips["intro"].num_frames) == (
        1920,
        1080,
        150,
    )
    assert (clips["intro_more"].width, clips["intro_more"].num_frames) == (1280, 121)
    cut = pipeline.parent / "renders" / "rooftop-rain.mp4"
    info = probe(cut)
    assert info.num_frames == 150 + 150 + 121 and info.frame_rate == 25
    assert info.audio is not None and lock.nodes["cut"].output.audio == info.audio.as_json()
    video_seconds = 421 / 25
    assert info.audio.duration_seconds == pytest.approx(video_seconds, abs=1 / 25)
    sound = read_audio(cut)
    assert sound is not None and sound.samples == 421 * sound.rate // 25
    # Unbroken: every 100 ms of the cut has sound (each clip's tones, no gap at the cuts).
    step = sound.rate // 10 * 4
    levels = [_level(sound.data[i : i + step]) for i in range(0, len(sound.data) - step, step)]
    assert min(levels) > 0.02, levels
