#!/usr/bin/env python3
"""What LTX-2's sizes cost locally: one animatic and one cut, timed.

LTX-2 Pro and Fast render 1080p at the least, so their animatics and every cut of them are
large. Printed, for a 6 s 1080p Pro clip (150 frames at 25 fps, with sound): the render time
at the emulator's full size and at its test aid's render scale of 0.25 (the file is 1920x1080
either way); then a stitch of three such clips with their sound (the cut the example
pipeline makes), which no render scale can shrink.

    .venv/bin/python benchmarks/ltx2_render.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.reference import print_reference  # noqa: E402
from runner.emulator.animatic import RenderSpec, render  # noqa: E402
from runner.emulator.sound import Sound  # noqa: E402
from runner.media import probe, stitch  # noqa: E402


def clip(out: Path, seed: int, scale: float) -> float:
    spec = RenderSpec(
        kind="t2v",
        resolution=None,
        aspect_ratio=None,
        num_frames=150,
        frame_rate=Fraction(25),
        prompt="Wide establishing shot of a city seen from a rooftop at night in the rain.",
        seed=seed,
        label=f"animatic · t2v · seed {seed}",
        size=(1920, 1080),
        sound=Sound(seed),
        scale=scale,
    )
    started = time.perf_counter()
    outcome = render(spec, out)
    assert outcome.error is None and (outcome.width, outcome.height) == (1920, 1080)
    return time.perf_counter() - started


def main() -> int:
    print_reference()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for scale in (1.0, 0.25):
            seconds = clip(work / f"full-{scale}.mp4", 1, scale)
            size = (work / f"full-{scale}.mp4").stat().st_size
            print(f"6 s 1080p clip with sound, render scale {scale}: {seconds:.2f} s, {size} bytes")
        clips = [work / f"c{i}.mp4" for i in range(3)]
        for i, path in enumerate(clips):
            clip(path, i + 2, 0.25)
        started = time.perf_counter()
        report = stitch(clips, work / "cut.mp4")
        elapsed = time.perf_counter() - started
        info = probe(work / "cut.mp4")
        assert info.audio is not None
        print(
            f"stitch of 3 such clips: {report.num_frames} frames at 1920x1080 with "
            f"{info.audio.codec} sound at {report.audio_rate} Hz in {elapsed:.2f} s "
            f"({1000 * elapsed / report.num_frames:.1f} ms a frame)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
