#!/usr/bin/env python3
"""The uncertain-submit trial: a run killed between fal accepting a submit and its answer,
then run again; jobs paid twice, counted by cache key.

The one window the journal alone cannot close (issue 7's kill trial measured it at about 1
kill in 20): fal has the job, the runner has no request id. Here every kill lands in it. The
emulator (a process of its own, with a state directory) accepts the submit of one node drawn
at random and holds its answer (the ``lose_answer`` fault); the moment the job exists the
runner gets SIGKILL. The rerun must find that job in fal's request listing
(``/v1/models/requests/by-endpoint?expand=payloads``) by endpoint, time window and exact
body, and re-attach to it instead of paying for it again.

    .venv/bin/python benchmarks/uncertain_submit_trial.py [--trials 20] [--nodes 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.emulator_process import emulator_process  # noqa: E402
from benchmarks.kill_trial import jobs_by_key, node_keys, spawn, write_pipeline  # noqa: E402
from benchmarks.reference import print_reference  # noqa: E402


def control(url: str, path: str, payload: object | None = None) -> dict[str, object]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{url}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: dict[str, object] = json.loads(answer.read())
        return result


def fired(url: str) -> int:
    stats = control(url, "/_emulator/stats")
    counts = stats["faults_fired"]
    assert isinstance(counts, dict)
    return int(counts.get("lose_answer", 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print_reference()
    rng = random.Random(args.seed)
    # How long the rerun keeps looking for a job missing from the listing (fal: 600 s).
    os.environ.setdefault("SHOTGRAPH_FAL_LISTING_SETTLE", "30")
    duplicates = found = failed = 0
    reruns: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        state = base / "emulator"
        options = ["--latency", str(args.latency), "--concurrency", "4", "--state-dir", str(state)]
        with emulator_process(*options) as url:
            print(
                f"{args.trials} kills, each the moment fal accepted one submit of a "
                f"{args.nodes}-node run and before its answer; emulator latency {args.latency} s"
            )
            before = 0
            for i in range(args.trials):
                folder = base / f"trial-{i:02d}"
                salt = f"uncertain {args.seed}-{i}"
                pipeline = write_pipeline(folder, args.nodes, salt)
                chain = rng.randrange(args.nodes // 5)
                hop = rng.choice(["", *(f" hop {h}" for h in range(4))])
                target = f"{salt} shot {chain}{hop}"
                rule = {"kind": "lose_answer", "seconds": 120, "prompt_contains": target}
                control(url, "/_emulator/faults", [rule])
                store = folder / "store"
                victim = spawn(pipeline, store, url, 4)
                deadline = time.monotonic() + 120
                while fired(url) == before and time.monotonic() < deadline:
                    time.sleep(0.005)
                victim.send_signal(signal.SIGKILL)
                victim.communicate()
                before = fired(url)
                control(url, "/_emulator/faults", [])
                started = time.monotonic()
                rerun = spawn(pipeline, store, url, 4)
                out, err = rerun.communicate(timeout=600)
                reruns.append(time.monotonic() - started)
                by_key = jobs_by_key(state, node_keys(pipeline))
                twice = [key for key, bodies in by_key.items() if len(bodies) > 1]
                looked_up = "found it in fal's request listing" in out
                duplicates += len(twice)
                found += looked_up
                failed += rerun.returncode != 0
                print(
                    f"  trial {i + 1:2d}: killed holding '{target}'; rerun "
                    f"{'ok' if rerun.returncode == 0 else 'FAILED'} in {reruns[-1]:.1f} s, "
                    f"{'re-attached from the listing' if looked_up else 'NOT found'}, "
                    f"{len(twice)} duplicate(s)"
                )
                if rerun.returncode != 0:
                    print(out[-2000:], err[-2000:])
    print(
        f"duplicates by cache key: {duplicates} in {args.trials} kills between accept and "
        f"answer (target 0); {found} job(s) found in the listing and re-attached; "
        f"{failed} rerun(s) failed; rerun median {sorted(reruns)[len(reruns) // 2]:.1f} s"
    )
    return 0 if duplicates == 0 and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
