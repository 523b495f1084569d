#!/usr/bin/env python3
"""The kill -9 trial on a shared store: two machines run one pipeline at once against
SeaweedFS (loopback), each with a local store of its own; one is killed with SIGKILL at a
random moment. The survivor must take the dead one's claims over once its lease runs out,
re-attach to what it had sent, finish with exit 0, pay for nothing twice (jobs counted by
cache key from the emulator's journal), and leave a store that `cache verify` finds clean.

The emulator runs in a process of its own with a state directory (fal outlives a machine).
The moment of each kill is drawn uniformly over an uninterrupted two-machine run.

    .venv/bin/python benchmarks/remote_kill_trial.py [--trials 10] [--nodes 20] [--lease 2]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.emulator_process import emulator_process  # noqa: E402
from benchmarks.kill_trial import jobs_by_key, node_keys, write_pipeline  # noqa: E402
from benchmarks.reference import print_reference  # noqa: E402
from tests import s3_servers  # noqa: E402
from tests.run.shared_helpers import clone, spawn_machine  # noqa: E402


def pair(base: Path, salt: str, nodes: int) -> tuple[Path, Path]:
    a = write_pipeline(base / "a", nodes, salt)
    b = clone(a.parent, base / "b") / a.name
    return a, b


def start_both(
    a: Path, b: Path, env: dict[str, str], url: str, jobs: int
) -> tuple[subprocess.Popen[str], subprocess.Popen[str]]:
    args = ("--backend", "local", "--emulator-url", url, "-j", str(jobs))
    return spawn_machine("machine-a", a, env, *args), spawn_machine("machine-b", b, env, *args)


def verify(pipeline: Path, env: dict[str, str], store: str) -> bool:
    command = [sys.executable, "-m", "runner", "cache", "verify", "--store", store]
    command += ["--cache-dir", str(pipeline.parent / ".store"), "--project", str(pipeline.parent)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    return done.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print_reference()
    rng = random.Random(args.seed)
    failures = duplicates = unclean = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        state = base / "emulator"
        options = ["--latency", str(args.latency), "--concurrency", str(args.concurrency)]
        with (
            s3_servers.serving("seaweedfs", base / "seaweedfs") as server,
            emulator_process(*options, "--state-dir", str(state)) as url,
        ):
            store = server.url("calibration")
            env = {**os.environ, **server.env(), "SHOTGRAPH_STORE": store}
            env |= {"SHOTGRAPH_STORE_LEASE": str(args.lease)}
            a, b = pair(base / "calibration", "calibration", args.nodes)
            started = time.monotonic()
            for run in start_both(a, b, env, url, args.concurrency):
                run.communicate(timeout=600)
            duration = time.monotonic() - started
            print(
                f"{args.nodes}-node pipeline on two machines, lease {args.lease} s: "
                f"{duration:.1f} s uninterrupted; killing one at a uniform moment of that, "
                f"{args.trials} times"
            )
            for i in range(args.trials):
                salt = f"trial {args.seed}-{i}"
                store = server.url(f"trial-{i}")
                env["SHOTGRAPH_STORE"] = store
                a, b = pair(base / f"trial-{i:02d}", salt, args.nodes)
                victim, survivor = start_both(a, b, env, url, args.concurrency)
                kill_after = rng.uniform(0.0, duration)
                started = time.monotonic()
                try:
                    victim.wait(timeout=kill_after)
                except subprocess.TimeoutExpired:
                    victim.send_signal(signal.SIGKILL)
                victim.communicate()
                out, err = survivor.communicate(timeout=600)
                took = time.monotonic() - started
                found = jobs_by_key(state, node_keys(b))
                twice = [key for key, bodies in found.items() if len(bodies) > 1]
                clean = verify(b, env, store)
                ok = survivor.returncode == 0
                failures += not ok
                duplicates += len(twice)
                unclean += not clean
                print(
                    f"  trial {i + 1:2d}: killed at {kill_after:5.2f} s, survivor "
                    f"{'ok' if ok else 'FAILED'} after {took:5.1f} s, "
                    f"{out.count('re-attached to request')} re-attached, "
                    f"{len(twice)} duplicate(s), verify {'clean' if clean else 'NOT CLEAN'}"
                )
                if not ok:
                    print(out[-1500:], err[-1500:])
    print(
        f"{args.trials} kills: {duplicates} job(s) paid twice, {failures} survivor(s) failed, "
        f"{unclean} store(s) not clean"
    )
    return 0 if failures == duplicates == unclean == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
