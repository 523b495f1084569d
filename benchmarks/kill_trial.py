#!/usr/bin/env python3
"""The kill -9 trial: random SIGKILLs of a run, each followed by a rerun; jobs paid twice,
counted by cache key.

The emulator runs in a process of its own with a state directory, as fal runs elsewhere
and outlives the runner. Each trial renders a fresh pipeline (a salt in its prompts makes
new cache keys) of chains of an image-to-video shot and extends, on a fresh store; kills
`shotgraph run` with SIGKILL at a moment drawn uniformly over an uninterrupted run's
duration; runs it again to completion; then maps every job the emulator received back to
the cache key it was for (endpoint, prompt and seed name the node) and counts the keys
submitted more than once. By key, not by body: a second job whose body differs (its input
re-uploaded under a new URL) is a duplicate all the same.

For each duplicate it also says whether the two bodies were identical (the journaled body
sent again after a kill in the submit gap, which the reconciliation against fal's request
listing now closes: runner/run/reconcile.py) or not (a bug: the restart rebuilt the body).
Set SHOTGRAPH_FAL_LISTING_SETTLE (seconds) to shorten how long a rerun looks for a job that
never reached the emulator.

    .venv/bin/python benchmarks/kill_trial.py [--trials 20] [--nodes 50] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.emulator_process import emulator_process  # noqa: E402
from benchmarks.reference import print_reference  # noqa: E402
from runner.compile.check import check_pipeline  # noqa: E402
from runner.emulator.jobs import canonical_json  # noqa: E402

KEYFRAME = ROOT / "pipelines/assets/characters/mara/front_closeup.png"


@dataclass
class Trial:
    """One killed run and its rerun."""

    killed_at: float
    rerun_ok: bool
    keys: int
    jobs: int
    duplicate_keys: list[str] = field(default_factory=list)
    same_body: int = 0  # of the duplicates: the very same body sent again
    leftovers: int = 0  # files left under the store's tmp/ after the rerun


def write_pipeline(folder: Path, nodes: int, salt: str, hops: int = 4) -> Path:
    (folder / ".git").mkdir(parents=True, exist_ok=True)
    shutil.copy(KEYFRAME, folder / "key.png")
    lines = [
        "version: 1",
        "name: killtrial",
        "defaults: {num_frames: 9, frame_rate: 8, resolution: 480p, expand_prompt: false}",
        "nodes:",
    ]
    for c in range(nodes // (hops + 1)):
        lines.append(f"  s{c}: {{kind: i2v, image: {{file: key.png}}, prompt: '{salt} shot {c}'}}")
        for h in range(hops):
            before = f"s{c}" if h == 0 else f"s{c}_{h - 1}"
            lines.append(
                f"  s{c}_{h}: {{kind: extend, video: {{from: {before}}}, "
                f"prompt: '{salt} shot {c} hop {h}'}}"
            )
    path = folder / "killtrial.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def spawn(pipeline: Path, store: Path, url: str, jobs: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "runner", "run", str(pipeline), "--cache-dir", str(store)]
    command += ["--plain", "--backend", "local", "--emulator-url", url, "-j", str(jobs)]
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def node_keys(pipeline: Path) -> dict[tuple[str, str, int], str]:
    """(endpoint, prompt, seed) -> cache key, for every generation node."""
    keys = {}
    for step in check_pipeline(pipeline, backend="local").require().steps.values():
        if step.endpoint is not None and step.body is not None:
            keys[(step.endpoint.id, str(step.body["prompt"]), int(step.body["seed"]))] = step.key
    return keys


def jobs_by_key(state: Path, keys: dict[tuple[str, str, int], str]) -> dict[str, list[str]]:
    """Every job the emulator journaled for these keys: key -> the bodies it received."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in (state / "jobs").glob("*.json"):
        job = json.loads(path.read_text())
        body = job["body"]
        key = keys.get((job["endpoint"], str(body.get("prompt")), int(body.get("seed", -1))))
        if key is not None:
            found[key].append(canonical_json(body))
    return found


def run_trial(
    folder: Path, url: str, state: Path, *, nodes: int, salt: str, kill_after: float, jobs: int
) -> Trial:
    pipeline = write_pipeline(folder, nodes, salt)
    store = folder / "store"
    victim = spawn(pipeline, store, url, jobs)
    try:
        victim.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        victim.send_signal(signal.SIGKILL)
    victim.communicate()
    rerun = spawn(pipeline, store, url, jobs)
    out, err = rerun.communicate(timeout=600)
    keys = node_keys(pipeline)
    found = jobs_by_key(state, keys)
    trial = Trial(
        killed_at=kill_after,
        rerun_ok=rerun.returncode == 0,
        keys=len(keys),
        jobs=sum(len(bodies) for bodies in found.values()),
        leftovers=sum(1 for p in (store / "tmp").rglob("*") if p.is_file()),
    )
    if not trial.rerun_ok:
        print(f"  the rerun failed ({rerun.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
    for key, bodies in sorted(found.items()):
        if len(bodies) > 1:
            trial.duplicate_keys.append(key)
            trial.same_body += len(set(bodies)) == 1
    return trial


def uninterrupted(folder: Path, url: str, nodes: int, jobs: int) -> float:
    pipeline = write_pipeline(folder, nodes, "calibration")
    started = time.monotonic()
    process = spawn(pipeline, folder / "store", url, jobs)
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise SystemExit(f"the uninterrupted run failed:\n{out}\n{err}")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print_reference()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        state = base / "emulator"
        options = ["--latency", str(args.latency), "--concurrency", str(args.concurrency)]
        with emulator_process(*options, "--state-dir", str(state)) as url:
            duration = uninterrupted(base / "calibration", url, args.nodes, args.concurrency)
            print(
                f"{args.nodes}-node run, emulator latency {args.latency} s, concurrency "
                f"{args.concurrency}: {duration:.1f} s uninterrupted; killing at a uniform "
                f"moment of that, {args.trials} times"
            )
            trials = []
            for i in range(args.trials):
                kill_after = rng.uniform(0.0, duration)
                trial = run_trial(
                    base / f"trial-{i:02d}",
                    url,
                    state,
                    nodes=args.nodes,
                    salt=f"trial {args.seed}-{i}",
                    kill_after=kill_after,
                    jobs=args.concurrency,
                )
                trials.append(trial)
                print(
                    f"  trial {i + 1:2d}: killed at {kill_after:5.2f} s, rerun "
                    f"{'ok' if trial.rerun_ok else 'FAILED'}, {trial.jobs} jobs for "
                    f"{trial.keys} keys, {len(trial.duplicate_keys)} duplicate(s)"
                    + (f" ({trial.same_body} with the identical body)" if trial.same_body else "")
                    + (f", {trial.leftovers} file(s) left in tmp/" if trial.leftovers else "")
                )
    duplicated = sum(1 for t in trials if t.duplicate_keys)
    keys = sum(len(t.duplicate_keys) for t in trials)
    same = sum(t.same_body for t in trials)
    failed = sum(1 for t in trials if not t.rerun_ok)
    leftovers = sum(t.leftovers for t in trials)
    print(
        f"duplicates by cache key: {keys} in {len(trials)} kills ({duplicated} kill(s) with any; "
        f"target at most 1 in 20); {same} of them the identical body sent again, "
        f"{keys - same} with a different body; {failed} rerun(s) failed; "
        f"{leftovers} file(s) left in tmp/ after the reruns"
    )
    return 0 if failed == 0 and keys == same else 1


if __name__ == "__main__":
    sys.exit(main())
