#!/usr/bin/env python3
"""`shotgraph report` of a cached 200-shot pipeline: wall time and peak memory, cold (no
poster made yet) and with the posters cached in the store.

The pipeline is plan_scale.py's (chains of an image-to-video shot and three extends). Every
node has a cached result whose output is a real 1280x720 H.264 clip of 121 frames (a few
clips encoded once, each node's copy made distinct by a trailing MP4 `free` box, so every
node has its own content hash and so its own poster), and the lockfile is written, as after
a complete run. Each report runs in a fresh process into a fresh folder: "cold" decodes a
poster per clip; "posters cached" finds them in the store by the clip's hash. Target: a few
seconds for 200 shots.

    .venv/bin/python benchmarks/report_scale.py [--nodes 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.noop_scale import fill_store, measure  # noqa: E402
from benchmarks.plan_scale import write_pipeline  # noqa: E402
from benchmarks.reference import PEAK_RSS, print_reference  # noqa: E402

MEASURE = (
    PEAK_RSS
    + """
import json, sys, time
start = time.perf_counter()
from runner.cli import run
code = run(["report", sys.argv[1], "--backend", "local", "--cache-dir", sys.argv[2],
            "-o", sys.argv[3]])
print(json.dumps({"code": code, "wall": time.perf_counter() - start,
                  "peak_rss_mb": peak_rss_mb()}))
"""
)
BASE_CLIPS = 4


def base_clips(folder: Path) -> list[bytes]:
    """A few real 720p clips (moving shapes on a gradient), encoded once."""
    from PIL import Image, ImageDraw

    from runner.media import VideoWriter

    clips = []
    for n in range(BASE_CLIPS):
        path = folder / f"base{n}.mp4"
        with VideoWriter(path, 1280, 720, 24) as writer:
            for i in range(121):
                image = Image.new("RGB", (1280, 720), (20 + 40 * n, 30, 60 + i))
                draw = ImageDraw.Draw(image)
                draw.ellipse((100 + 8 * i, 200, 400 + 8 * i, 500), fill=(230, 190, 60))
                writer.write(image)
        clips.append(path.read_bytes())
    return clips


def distinct(clip: bytes, tag: str) -> bytes:
    """The same clip with a trailing `free` box: a valid MP4 with a content hash of its own."""
    payload = tag.encode()
    return clip + (8 + len(payload)).to_bytes(4, "big") + b"free" + payload


def measure_report(pipeline: Path, store_root: Path, out: Path) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)
    return measure(pipeline, store_root, str(out), code=MEASURE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print_reference()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pipeline = write_pipeline(folder, args.nodes)
        store_root = folder / "store"
        started = time.perf_counter()
        clips = base_clips(folder)
        nodes = fill_store(
            pipeline, store_root, lambda i, name: distinct(clips[i % len(clips)], name)
        )
        size = sum(f.stat().st_size for f in (store_root / "files").rglob("*") if f.is_file())
        print(
            f"filled a store with {nodes} cached 720p clips ({size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        report = folder / "report"
        cold = []
        for _ in range(args.repeat):
            shutil.rmtree(store_root / "posters", ignore_errors=True)
            cold.append(measure_report(pipeline, store_root, report))
        warm = [measure_report(pipeline, store_root, report) for _ in range(args.repeat)]
        posters = len(list((store_root / "posters").glob("*.jpg")))
    for label, runs in (("cold (posters made)", cold), ("posters cached", warm)):
        walls = ", ".join(f"{r['wall']:.2f}" for r in runs)
        median = statistics.median(r["wall"] for r in runs)
        peak = max(r["peak_rss_mb"] for r in runs)
        print(
            f"report of {nodes} shots, {label}: median {median:.2f} s ({walls}), "
            f"peak RSS {peak:.0f} MB"
        )
    print(f"posters kept in the store: {posters}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
