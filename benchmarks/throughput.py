#!/usr/bin/env python3
"""Throughput: a few hundred nodes against the emulator, wall time over the DAG's lower bound.

The emulator runs every job for a fixed latency L with at most C jobs in progress (fal counts
only running jobs against an account's limit). The pipeline is independent chains of an
image-to-video shot and extends. No schedule can beat

    max(critical path x L, total jobs x L / C)

so the figure is the run's wall time divided by that bound (target: at most 1.05). The run is
the real executor and fal client over loopback HTTP; the emulator runs in a process of its own
(`shotgraph emulator serve`), as fal runs elsewhere.

fal renders on its own GPUs; the emulator renders its animatics on this machine's CPU. On a
2-core machine twelve animatics a second take most of a core from the runner and stretch each
job past L, so the headline runs are made with `--no-render` (every job answers with one tiny
stored clip after L), which measures what the runner adds to fal's latency. One more run with
rendering on is printed beside it, so a reader sees what the animatics cost here. Three runs;
the median ratio is printed.

    .venv/bin/python benchmarks/throughput.py [--nodes 240] [--latency 1.0] [--concurrency 12]
        [--render-runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.emulator_process import emulator_process  # noqa: E402
from benchmarks.reference import print_figure, print_reference  # noqa: E402
from runner.compile.check import check_pipeline  # noqa: E402
from runner.fal import FalClient, FalConfig  # noqa: E402
from runner.run.events import Event  # noqa: E402
from runner.run.executor import Executor  # noqa: E402
from runner.run.outcome import RunOptions  # noqa: E402
from runner.store import Store  # noqa: E402


class Quiet:
    def handle(self, event: Event) -> None:
        pass


def write_pipeline(folder: Path, nodes: int, hops: int, salt: str) -> Path:
    (folder / ".git").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "pipelines/assets/characters/mara/front_closeup.png", folder / "key.png")
    lines = [
        "version: 1",
        "name: throughput",
        "defaults: {num_frames: 9, frame_rate: 8, resolution: 480p, aspect_ratio: '16:9'}",
        "nodes:",
    ]
    chains = nodes // (hops + 1)
    for c in range(chains):
        lines.append(f"  s{c}: {{kind: i2v, image: {{file: key.png}}, prompt: '{salt} shot {c}'}}")
        for h in range(hops):
            before = f"s{c}" if h == 0 else f"s{c}_{h - 1}"
            lines.append(
                f"  s{c}_{h}: {{kind: extend, video: {{from: {before}}}, prompt: '{salt} hop {h}'}}"
            )
    path = folder / "throughput.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(
    nodes: int, hops: int, latency: float, concurrency: int, salt: str, *, render: bool = False
) -> dict[str, float]:
    pace = ("--latency", str(latency), "--concurrency", str(concurrency))
    with (
        tempfile.TemporaryDirectory() as tmp,
        emulator_process(*pace, *(() if render else ("--no-render",))) as url,
    ):
        folder = Path(tmp)
        pipeline = write_pipeline(folder, nodes, hops, salt)
        compiled = check_pipeline(pipeline, backend="local").require()
        with Store.open(folder / "store") as store:

            def connect() -> FalClient:
                return FalClient(FalConfig(queue_url=url, rest_url=url))

            options = RunOptions(backend="local", jobs=concurrency * 2)
            executor = Executor(compiled.steps, store, connect, Quiet(), options)
            started = time.perf_counter()
            result = asyncio.run(executor.run())
            wall = time.perf_counter() - started
            assert result.ok, result.failed
            stats = httpx.get(f"{url}/_emulator/stats").json()
    jobs = len(compiled.steps)
    bound = max((hops + 1) * latency, jobs * latency / concurrency)
    return {
        "jobs": jobs,
        "wall": wall,
        "bound": bound,
        "ratio": wall / bound,
        "max_in_progress": stats["max_in_progress"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=240)
    parser.add_argument("--hops", type=int, default=2, help="extends after each i2v shot")
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--render-runs", type=int, default=1, help="runs with the emulator's animatics on"
    )
    args = parser.parse_args()
    print_reference()
    runs = [
        measure(args.nodes, args.hops, args.latency, args.concurrency, f"run{i}")
        for i in range(args.repeat)
    ]
    first = runs[0]
    print(
        f"{first['jobs']:.0f} jobs, latency {args.latency} s, concurrency {args.concurrency}: "
        f"lower bound {first['bound']:.2f} s"
    )
    for i, r in enumerate(runs):
        print(
            f"  run {i + 1}: wall {r['wall']:.2f} s, ratio {r['ratio']:.3f}, "
            f"max in progress {r['max_in_progress']:.0f}"
        )
    ratio = statistics.median(r["ratio"] for r in runs)
    print(f"median wall / lower bound, --no-render: {ratio:.3f} (target <= 1.05)")
    rendered = [
        measure(args.nodes, args.hops, args.latency, args.concurrency, f"r{i}", render=True)
        for i in range(args.render_runs)
    ]
    for i, r in enumerate(rendered):
        print(
            f"  with the animatics rendered on this machine, run {i + 1}: wall {r['wall']:.2f} s, "
            f"ratio {r['ratio']:.3f}"
        )
    wall = statistics.median(r["wall"] for r in runs)
    figure = {"ratio": round(ratio, 3), "wall": round(wall, 1), "bound": first["bound"]}
    if rendered:
        figure["rendered"] = round(statistics.median(r["ratio"] for r in rendered), 3)
    print_figure("throughput", **figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
