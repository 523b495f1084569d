#!/usr/bin/env python3
"""Stitch determinism at full size: the same 23 clips, stitched many ways, must give one hash.

The clips are emulator animatics at LTX's sizes (9:16 and 16:9 720p, 480p, square; push-ins
on the example keyframes and title cards), 25 frames each, so the cut is conformed (scaled,
letterboxed, retimed) as a real one is. The cut is stitched

- in this process, one after another (a fresh heap, as when re-stitching by hand);
- in this process, several at once in threads beside emulator renders (the runner's case:
  media steps run in worker threads, and the heap they allocate from has been used);
- in other processes, some with glibc's ``MALLOC_PERTURB_`` set, which fills every block
  ``malloc`` hands out with a junk byte: any read of memory nobody wrote shows up at once.

Printed: the hash each way gave and the number of distinct hashes (target: 1).

    .venv/bin/python benchmarks/stitch_determinism.py [--frames 25] [--threads 6]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.reference import print_reference  # noqa: E402
from runner.emulator.animatic import RenderSpec, render  # noqa: E402
from runner.media import stitch  # noqa: E402

KEYFRAMES = sorted((ROOT / "pipelines" / "assets" / "characters").glob("*/*.png"))
SHAPES = [("720p", "9:16"), ("480p", "16:9"), ("720p", "16:9"), ("480p", "1:1"), ("480p", "9:16")]
RATES = [24, 24, 30, 24, 16]

STITCH = """
import hashlib, sys
from pathlib import Path
from runner.media import stitch
clips, out = sys.argv[1:-1], Path(sys.argv[-1])
stitch(clips, out)
print(hashlib.sha256(out.read_bytes()).hexdigest())
"""


def make_clips(folder: Path, frames: int) -> list[Path]:
    clips = []
    for i in range(23):
        resolution, aspect = SHAPES[i % len(SHAPES)]
        image = KEYFRAMES[i % len(KEYFRAMES)] if i % 3 != 2 else None
        spec = RenderSpec(
            kind="i2v" if image else "t2v",
            resolution=resolution,
            aspect_ratio=aspect,
            num_frames=frames,
            frame_rate=RATES[i % len(RATES)],
            prompt=f"shot {i}: she looks up as the rain starts",
            seed=i,
            label=f"shot {i}",
            image=image,
        )
        path = folder / f"clip{i:02}.mp4"
        render(spec, path)
        clips.append(path)
    return clips


def stitch_here(clips: list[Path], out: Path) -> str:
    stitch(clips, out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def stitch_elsewhere(clips: list[Path], out: Path, perturb: int | None) -> str:
    env = dict(os.environ)
    if perturb is not None:
        env["MALLOC_PERTURB_"] = str(perturb)
    args = [sys.executable, "-c", STITCH, *map(str, clips), str(out)]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=25, help="frames per clip")
    parser.add_argument("--threads", type=int, default=6, help="stitches at once in threads")
    args = parser.parse_args()
    print_reference()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = make_clips(folder, args.frames)
        results: dict[str, list[str]] = {}
        started = time.perf_counter()
        results["sequential"] = [stitch_here(clips, folder / f"seq{i}.mp4") for i in range(2)]
        one = time.perf_counter() - started

        with ThreadPoolExecutor(args.threads) as pool:
            # Renders beside the stitches, as the local backend's emulator or other media
            # steps would run: they churn the heap the stitches allocate from.
            side = [pool.submit(make_clips, folder / f"side{i}", 5) for i in range(2)]
            outs = [folder / f"thread{i}.mp4" for i in range(args.threads)]
            results["threads"] = list(pool.map(lambda out: stitch_here(clips, out), outs))
            for future in side:
                future.result()

        perturbs = [None, 1, 85, 170, 255]
        results["processes"] = [
            stitch_elsewhere(clips, folder / f"proc{i}.mp4", perturb)
            for i, perturb in enumerate(perturbs)
        ]
    everything = Counter(h for hashes in results.values() for h in hashes)
    for way, hashes in results.items():
        print(f"{way:>10}: {' '.join(h[:10] for h in hashes)}")
    print(f"process MALLOC_PERTURB_ values: {perturbs}")
    print(
        f"{sum(everything.values())} stitches of 23 clips ({args.frames} frames each), "
        f"{one / 2:.1f} s per stitch: {len(everything)} distinct hash(es) (target 1)"
    )
    return 0 if len(everything) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
