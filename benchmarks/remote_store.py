#!/usr/bin/env python3
"""A no-op `shotgraph run` of a cached 1,000-node pipeline against a shared store on
SeaweedFS (loopback): with a cold local cache, with a warm one, and with no shared store.

A first machine's store is filled with a cached result for every node (as noop_scale.py
does) and published to the bucket by a run with ``--store``. Then, each in a fresh
process, timed: a second machine's run (an empty local store: every result comes from the
bucket), the same machine's next run (its local store now warm), and a local-only run of
the first store. Requests to the bucket are counted by wrapping the S3 remote's methods in
the measured process; a no-op must not make a thousand round trips one after another.
Targets: the warm run within 10 % of the local-only one.

    .venv/bin/python benchmarks/remote_store.py [--nodes 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.noop_scale import fill_store  # noqa: E402
from benchmarks.plan_scale import write_pipeline  # noqa: E402
from benchmarks.reference import PEAK_RSS, print_reference  # noqa: E402
from tests import s3_servers  # noqa: E402

MEASURE = (
    PEAK_RSS
    + """
import collections, functools, json, sys, time
start = time.perf_counter()
from runner.store import s3
calls = collections.Counter()
def counted(name, method):
    if name == "list":
        def listing(self, prefix):
            calls[name] += 1
            return method(self, prefix)
        return listing
    @functools.wraps(method)
    async def call(self, *args, **kwargs):
        calls[name] += 1
        return await method(self, *args, **kwargs)
    return call
for name in ("get", "head", "download", "put", "put_if_absent", "put_if_match", "delete",
             "list"):
    setattr(s3.S3Remote, name, counted(name, getattr(s3.S3Remote, name)))
from runner.cli import run
code = run(["run", sys.argv[1], "--backend", "local", "--cache-dir", sys.argv[2], "--plain",
            "--store", sys.argv[3]])
print(json.dumps({"code": code, "wall": time.perf_counter() - start, "calls": dict(calls),
                  "peak_rss_mb": peak_rss_mb()}))
"""
)


def measure(pipeline: Path, store_root: Path, url: str, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(pipeline), str(store_root), url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the run failed:\n{done.stdout}\n{done.stderr}")
    figures: dict[str, object] = json.loads(lines[-1])
    if figures["code"] != 0:
        raise SystemExit(f"the run failed:\n{done.stdout}\n{done.stderr}")
    return figures


def line(label: str, runs: list[dict[str, object]]) -> float:
    walls = [float(str(r["wall"])) for r in runs]
    peak = max(float(str(r["peak_rss_mb"])) for r in runs)
    calls = runs[-1]["calls"]
    assert isinstance(calls, dict)
    total = sum(calls.values())
    detail = ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
    median = statistics.median(walls)
    print(
        f"{label}: median {median:.3f} s of {len(runs)}, peak RSS {peak:.0f} MB, "
        f"{total} requests ({detail or 'none'})"
    )
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print_reference()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with s3_servers.serving("seaweedfs", folder / "seaweedfs") as server:
            env = {**server.env(), "AWS_EC2_METADATA_DISABLED": "true"}
            pipeline = write_pipeline(folder, args.nodes)
            first = folder / "first"
            nodes = fill_store(pipeline, first)
            url = server.url("bench")
            started = time.perf_counter()
            measure(pipeline, first, url, env)  # publishes every result to the bucket
            took = time.perf_counter() - started
            print(f"{nodes} cached results published to SeaweedFS in {took:.1f} s")
            cold = []
            for i in range(args.repeat):
                cold.append(measure(pipeline, folder / f"second{i}", url, env))
            warm = [measure(pipeline, folder / "second0", url, env) for _ in range(args.repeat)]
            local = [measure(pipeline, first, "local", env) for _ in range(args.repeat)]
    cold_wall = line(f"cold local cache, {nodes} nodes from the bucket", cold)
    warm_wall = line("warm local cache, shared store", warm)
    local_wall = line("local store only", local)
    print(
        f"warm vs local-only: {100 * (warm_wall / local_wall - 1):+.1f} % (target within 10 %); "
        f"cold: {cold_wall / local_wall:.1f}x local-only"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
