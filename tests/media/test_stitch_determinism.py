"""The stitch gives the same bytes whatever runs beside it and whatever machine runs it.

x264 used to read memory nobody wrote (its AVX-512 macroblock-tree code), so a cut stitched in
the runner, beside other work, could differ from the same cut stitched in a fresh process; and
its CPU-specific routines made the bytes differ from machine to machine. The clips here are
tiny (64x64, a few frames) but textured and moving, which is what that code path needs.
Some have sound at different rates and some none, so the cut's sound (resampled in integers,
encoded as FLAC with fixed predictors) is held to the same bar.
Other processes run with glibc's ``MALLOC_PERTURB_``, which fills fresh heap blocks with junk:
a read of unwritten memory then changes the output every time, not now and then.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from stitch_worker import bundled_libavutil

from runner.media import EncodeSettings, VideoWriter, stitch
from runner.media.audio import Pcm

WORKER = Path(__file__).with_name("stitch_worker.py")
# (width, height, fps): mostly the first clip's format, some to scale, letterbox and retime.
FORMATS = [(64, 64, 24), (64, 64, 24), (48, 64, 24), (96, 54, 12), (64, 64, 30), (64, 36, 24)]
# The sample rate of each clip's sound (None: silent), in turn.
SOUNDS = [24000, None, 48000, 24000, None, 44100, 16000]


def _pictures(seed: int, size: tuple[int, int], count: int) -> Iterator[Image.Image]:
    """Coloured ellipses on a canvas twice the size, panned across: texture and motion."""
    rnd = random.Random(seed)
    width, height = size
    canvas = Image.new("RGB", (width * 2, height * 2))
    draw = ImageDraw.Draw(canvas)
    for _ in range(40):
        x, y = rnd.randrange(width * 2), rnd.randrange(height * 2)
        box = (x, y, x + rnd.randrange(4, width), y + rnd.randrange(4, height))
        draw.ellipse(box, fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    for i in range(count):
        yield canvas.crop((3 * i, 2 * i, 3 * i + width, 2 * i + height))


def _noise(seed: int, rate: int, samples: int) -> Pcm:
    """Noisy sound: every band of the codec busy, as the pictures keep x264 busy."""
    rnd = random.Random(seed)
    return Pcm(
        rate, array("h", (rnd.randrange(-16000, 16000) for _ in range(2 * samples))).tobytes()
    )


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """23 clips of 6 frames each, most with sound (read, never written, by the tests: made
    once a session, as tests/conftest.py runs this module's tests apart from each other)."""
    folder = tmp_path_factory.mktemp("clips")
    quick = EncodeSettings(crf=18, preset="ultrafast", threads=1)
    paths = []
    for i in range(23):
        width, height, rate = FORMATS[i % len(FORMATS)]
        sound = SOUNDS[i % len(SOUNDS)]
        path = folder / f"clip{i:02}.mp4"
        with VideoWriter(path, width, height, rate, quick, sound) as writer:
            for picture in _pictures(i, (width, height), 6):
                writer.write(picture)
            if sound is not None:
                writer.write_audio(_noise(i, sound, sound * 6 // rate))
        paths.append(path)
    return paths


def _stitch_hash(clips: list[Path], out: Path) -> str:
    stitch(clips, out)
    return sha256(out.read_bytes()).hexdigest()


def _worker(
    clips: list[Path], out_dir: Path, times: int, *flags: str, perturb: int | None = None
) -> subprocess.Popen[str]:
    out_dir.mkdir()
    env = dict(os.environ)
    if perturb is not None:
        env["MALLOC_PERTURB_"] = str(perturb)
    args = [sys.executable, str(WORKER), *flags, str(times), str(out_dir), *map(str, clips)]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _hashes(worker: subprocess.Popen[str]) -> list[str]:
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    return out.split()


def test_twenty_stitches_beside_each_other_give_one_hash(clips: list[Path], tmp_path: Path) -> None:
    first = _stitch_hash(clips, tmp_path / "first.mp4")
    # Two other processes, their fresh heap blocks full of junk, stitch while this one
    # stitches in four threads at once (as the runner runs media steps).
    others = [
        _worker(clips, tmp_path / "junk85", 4, perturb=85),
        _worker(clips, tmp_path / "junk170", 3, perturb=170),
    ]
    with ThreadPoolExecutor(4) as pool:
        outs = [tmp_path / f"thread{i}.mp4" for i in range(12)]
        in_threads = list(pool.map(lambda out: _stitch_hash(clips, out), outs))
    elsewhere = [h for worker in others for h in _hashes(worker)]
    hashes = [first, *in_threads, *elsewhere]
    assert len(hashes) == 20
    assert set(hashes) == {first}


@pytest.mark.skipif(bundled_libavutil() is None, reason="PyAV without its own FFmpeg libraries")
def test_a_machine_without_simd_stitches_the_same_bytes(clips: list[Path], tmp_path: Path) -> None:
    here = _stitch_hash(clips, tmp_path / "here.mp4")
    plain = _worker(clips, tmp_path / "plain", 1, "--no-simd")
    assert _hashes(plain) == [here]
