#!/usr/bin/env python3
"""The speeds the tests used to assert, measured here instead (tests assert behaviour):

- ``get_result`` at 5,000 and 50,000 results: the cost of one cache lookup, which must not
  grow with the store. Target: under 500 µs.
- an emulator render of 121 frames at 1280x720 (a cinematic-5s clip). Target: under 6 s.
- a no-op `shotgraph run` of the tests' tiny pipeline (every node cached), in a fresh
  process. Target: under 1 s.

    .venv/bin/python benchmarks/unit_speeds.py [--repeat 3]
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

from benchmarks.noop_scale import measure  # noqa: E402
from benchmarks.reference import print_reference  # noqa: E402
from runner.store import Store  # noqa: E402
from tests.record_helpers import record  # noqa: E402


def lookup_us(folder: Path, results: int) -> float:
    """Median µs of get_result over every fifth key of a store of ``results`` results."""
    with Store.open(folder / f"store-{results}") as store:
        staged = folder / "output.bin"
        staged.write_bytes(b"video")
        output = store.put_file(staged)
        with store._results.transact():  # one transaction: filling fast is not measured
            for i in range(results):
                store.put_result(record(f"{i:064x}", output))
        keys = [f"{i:064x}" for i in range(0, results, max(1, results // 1000))]
        started = time.perf_counter()
        for key in keys:
            assert store.get_result(key) is not None
        return (time.perf_counter() - started) / len(keys) * 1e6


def render_seconds(folder: Path) -> float:
    from runner.emulator.animatic import RenderSpec, render

    spec = RenderSpec("t2v", "720p", "16:9", 121, 30, "a long prompt " * 8, 1, "animatic · t2v")
    started = time.perf_counter()
    outcome = render(spec, folder / "clip.mp4")
    assert outcome.error is None, outcome.error
    return time.perf_counter() - started


def noop_seconds(folder: Path, repeat: int) -> list[float]:
    from tests.run_helpers import WIDE, make_project

    pipeline = make_project(folder / "tiny", text=WIDE)
    store = folder / "tiny-store"
    measure(pipeline, store)  # renders it all: what the no-op runs then find
    return [measure(pipeline, store)["wall"] for _ in range(repeat)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print_reference()
    folder = Path(tempfile.mkdtemp(prefix="unit-speeds-"))
    try:
        for results in (5_000, 50_000):
            print(f"get_result at {results:,} results: {lookup_us(folder, results):.0f} µs")
        renders = [render_seconds(folder) for _ in range(args.repeat)]
        print(f"render 121 frames at 1280x720: {statistics.median(renders):.2f} s (median)")
        walls = noop_seconds(folder, args.repeat)
        print(f"no-op run of the tiny pipeline: {statistics.median(walls):.2f} s (median)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
