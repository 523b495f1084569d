#!/usr/bin/env python3
"""The runner's own cost per node: a full run with rendering taken out.

The emulator runs in a process of its own with ``--no-render`` (every job answers at once
with one tiny stored clip) and no latency, so what is left is shotgraph's side: four HTTP
requests per node (upload or submit, status, result, download), the journal, the store, the
events. Printed per size: the runner process's CPU milliseconds per node (the emulator's
are not counted; the target is at most 5, flat in N) and the milliseconds spent recording
a node (journal claim and submission, storing the file and its result, and the node's
share of the writer's group fsyncs; target at most 1; all on the store's writer thread,
none inside another, so no wait is counted twice) and the CPU those calls spent
themselves, then the same broken down by call:
wall ms per node, the call's own CPU ms (the rest is the disk and waits for the GIL), and
calls per node ("group sync" is a group's sync of the logs it wrote and of the
directories its files landed in, at once). The pipeline is chains of an image-to-video
shot and three extends. Every job returns the same clip, so after the first node each
download is a copy of stored content (the duplicate path: its shard synced, the copy
dropped); a real run lands new files in varied shards.

Then the same runs with fal faked in this process (tests/fake_fal.py, its outputs small
distinct files, as the issue allows: "or with the fake backend"): the runner alone on the
machine, as it is in production, where fal is elsewhere. Against the emulator, the
emulator's server shares the two cores, and a write of the store's writer thread waits
for a core about as long as it runs: its recording figure counts those waits. The CPU
figure of this second table includes the fake's own work (it hashes every request).

    .venv/bin/python benchmarks/runner_overhead.py [--sizes 1000 5000] [--jobs 16]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import runner.store.grouping as grouping  # noqa: E402
from benchmarks.emulator_process import emulator_process  # noqa: E402
from benchmarks.reference import print_figure, print_reference  # noqa: E402
from benchmarks.throughput import Quiet, write_pipeline  # noqa: E402
from runner.compile.check import check_pipeline  # noqa: E402
from runner.fal import FalClient, FalConfig  # noqa: E402
from runner.run.executor import Executor  # noqa: E402
from runner.run.outcome import RunOptions  # noqa: E402
from runner.store import Store  # noqa: E402
from tests.fake_fal import FakeFal  # noqa: E402

# What recording a node costs: the store calls a generation makes besides waiting.
RECORDING = (
    "claim",
    "begin_submit",
    "record_submission",
    "adopt_file",
    "put_file",
    "put_result",
    "release",
)
ORIGINAL_SYNC_LOGS = grouping.sync_logs


class Spent:
    """Wall and this-thread CPU seconds per recording call (the CPU part is the call's own
    Python and SQLite work; the rest is the disk and waits for the GIL)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu
        self.calls[name] = self.calls.get(name, 0) + 1

    def total(self) -> float:
        return sum(self.wall.values())

    def own_cpu(self) -> float:
        return sum(self.cpu.values())

    def breakdown(self, nodes: int) -> str:
        """Per node: each call's wall ms (its own CPU ms) and calls."""
        parts = [
            f"{name} {self.wall[name] * 1000 / nodes:.2f} ({self.cpu[name] * 1000 / nodes:.2f})"
            f" x{self.calls[name] / nodes:.1f}"
            for name in sorted(self.wall, key=self.wall.__getitem__, reverse=True)
        ]
        return "  per node, wall ms (own CPU ms) x calls: " + ", ".join(parts)


def timed(store: Store, spent: Spent) -> None:
    """Wrap ``store``'s recording calls to add their wall time to ``spent``."""

    def wrap(method: Callable[..., Any], name: str) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                spent.add(name, time.perf_counter() - wall, time.thread_time() - cpu)

        return call

    for name in RECORDING:
        setattr(store, name, wrap(getattr(store, name), name))
    # A duplicate download's copy is dropped once its shard is synced, at the end of the
    # writer's group (outside adopt_file): counted as its own call.
    store.files._discard = wrap(store.files._discard, "discard")  # type: ignore[method-assign]
    # The writer thread's group commits: one fsync per database for all the writes queued
    # together (runner.store.grouping.grouped_commits), at once, their cost shared by those
    # writes. Its wall, not each log's: they are synced side by side.
    grouping.sync_logs = wrap(ORIGINAL_SYNC_LOGS, "group sync")


def measure(url: str | None, nodes: int, jobs: int, root: Path) -> dict[str, Any]:
    """A full run of ``nodes`` against the emulator at ``url``, or (None) the fake fal, in
    a new folder under ``root``. The folder is left for the caller to delete once every
    measurement is made: deleting thousands of files makes the filesystem's next file
    creations slower for a minute or more (ext4 steps over recently freed inodes), which
    the next measurement would otherwise pay for."""
    folder = Path(tempfile.mkdtemp(dir=root))
    pipeline = write_pipeline(folder, nodes, 3, f"overhead {nodes}")
    compiled = check_pipeline(pipeline, backend="local").require()
    with Store.open(folder / "store") as store:
        spent = Spent()
        timed(store, spent)
        if url is None:
            fake = FakeFal(video=False)  # its jobs outlive a connection, as fal's do

            def connect() -> FalClient | FakeFal:
                return fake

        else:
            config = FalConfig(queue_url=url, rest_url=url)

            def connect() -> FalClient | FakeFal:
                return FalClient(config)

        executor = Executor(
            compiled.steps, store, connect, Quiet(), RunOptions(backend="local", jobs=jobs)
        )
        cpu, wall = time.process_time(), time.perf_counter()
        result = asyncio.run(executor.run())
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert result.ok, result.failed
    count = len(compiled.steps)
    return {
        "nodes": count,
        "wall_s": wall,
        "cpu_ms_per_node": cpu * 1000 / count,
        "record_ms_per_node": spent.total() * 1000 / count,
        "record_cpu_ms_per_node": spent.own_cpu() * 1000 / count,
        "breakdown": spent.breakdown(count),
    }


def report(r: dict[str, Any], figure: str) -> None:
    print(
        f"{'nodes':>6}  {'wall s':>7}  {'runner CPU ms/node':>18}  {'recording ms/node':>17}"
        f"  {'its own CPU':>11}"
    )
    print(
        f"{r['nodes']:>6.0f}  {r['wall_s']:>7.1f}  {r['cpu_ms_per_node']:>18.2f}  "
        f"{r['record_ms_per_node']:>17.2f}  {r['record_cpu_ms_per_node']:>11.2f}"
    )
    print(r["breakdown"])
    print_figure(
        figure,
        cpu=round(r["cpu_ms_per_node"], 2),
        record=round(r["record_ms_per_node"], 2),
        record_cpu=round(r["record_cpu_ms_per_node"], 2),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--jobs", type=int, default=16, help="jobs at once (-j)")
    args = parser.parse_args()
    print_reference()
    options = ("--no-render", "--latency", "0", "--concurrency", str(args.jobs))
    print("against the emulator (--no-render), a process of its own on the same cores:")
    with tempfile.TemporaryDirectory() as root, emulator_process(*options) as url:
        for size in args.sizes:
            report(measure(url, size, args.jobs, Path(root)), f"runner_overhead_{size}")
        print("the runner alone (fal faked in this process; its own work counted as its own):")
        for size in args.sizes:
            report(measure(None, size, args.jobs, Path(root)), f"runner_alone_{size}")
    print_reference()
    print("targets: runner CPU <= 5 ms per node, flat in N; recording a node <= 1 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
