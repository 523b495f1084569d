#!/usr/bin/env python3
"""How soon the client notices that a job finished: the status stream, not slow polling.

Jobs run on the emulator (in this process, so both sides share one clock); for each, the lag
is the time ``FalClient.wait`` returns minus the time the emulator marked the job COMPLETED.
Printed: median and 90th percentile over the jobs, for the stream and, for comparison, for
polling at fal-client's 0.1 s interval. Target: stream median under 50 ms.

    .venv/bin/python benchmarks/completion_latency.py [--jobs 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.reference import print_reference  # noqa: E402
from runner.emulator import EmulatorConfig, EmulatorServer  # noqa: E402
from runner.fal import FalClient, FalConfig  # noqa: E402

ENDPOINT = "fal-ai/ltx-video-13b-distilled"


async def lags(server: EmulatorServer, jobs: int, *, stream: bool) -> list[float]:
    config = FalConfig(
        queue_url=server.url, rest_url=server.url, use_stream=stream, poll_interval=0.1
    )
    found: list[float] = []
    async with FalClient(config) as client:

        async def one(i: int) -> None:
            body = {
                "prompt": f"latency {stream} {i}",
                "num_frames": 9,
                "resolution": "480p",
                "seed": i,
            }
            handle = await client.submit(ENDPOINT, body)
            await client.wait(handle)
            noticed = time.time()
            job = server.emulator.queue.get(handle.request_id)
            assert job is not None and job.completed_at is not None
            found.append(noticed - job.completed_at)

        for start in range(0, jobs, 4):  # a few at a time, as a run would have in flight
            await asyncio.gather(*(one(i) for i in range(start, min(jobs, start + 4))))
    return found


def show(label: str, values: list[float]) -> None:
    ordered = sorted(values)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    print(
        f"{label:>18}: median {statistics.median(values) * 1000:6.1f} ms, "
        f"p90 {p90 * 1000:6.1f} ms, max {ordered[-1] * 1000:6.1f} ms  ({len(values)} jobs)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()
    print_reference()
    config = EmulatorConfig(latency=0.3, concurrency=4, require_auth=False)
    with EmulatorServer(config) as server:
        streamed = asyncio.run(lags(server, args.jobs, stream=True))
        polled = asyncio.run(lags(server, args.jobs, stream=False))
    show("status stream", streamed)
    show("polling every 0.1 s", polled)
    print(
        f"completion noticed, median: {statistics.median(streamed) * 1000:.1f} ms "
        "after the job finished (target < 50 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
