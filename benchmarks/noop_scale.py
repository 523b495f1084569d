#!/usr/bin/env python3
"""A no-op `shotgraph run` of a cached 5,000-node pipeline: wall time and peak memory.

The pipeline is the one of plan_scale.py (chains of an image-to-video shot and three
extends). Its store is filled with a cached result for every node, as a previous run would
have left it, and the lockfile written; then `shotgraph run` is timed in a fresh process
(load, validate, compile, 5,000 store lookups, lockfile comparison). Nothing is sent: the
backend is never even started. Four runs: the first compiles (and keeps the compile memo),
the median of the others starts from the memo. Target: under 0.5 s, 100 MB.

Then, from the same store, the answers a user waits for at the command line, each in a
fresh process (median of ``--repeat``): ``validate`` and ``plan`` from the memo (targets
0.5 s each), and the ``plan`` after one chain of the pipeline is edited, which misses the
memo, reads again only the YAML of the edited nodes (``runner.pipeline.yaml_splice``),
checks the pipeline again but takes the steps of the unchanged nodes from the memo
(``runner.compile.reuse``), and finds the 4 nodes to render (target 0.6 s).

    .venv/bin/python benchmarks/noop_scale.py [--nodes 5000] [--repeat 4]
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.plan_scale import write_pipeline  # noqa: E402
from benchmarks.reference import PEAK_RSS, print_figure, print_reference  # noqa: E402
from runner.compile.check import check_pipeline  # noqa: E402
from runner.lock import build_lock, lock_path, write_lock  # noqa: E402
from runner.store import Store  # noqa: E402
from tests.record_helpers import step_record  # noqa: E402

# A command in a fresh process, timed from before the CLI is imported: its exit code, wall
# time and peak memory as JSON. ARGV is the command line it runs.
TIMED = (
    PEAK_RSS
    + """
import json, sys, time
start = time.perf_counter()
from runner.cli import run
code = run(ARGV)
print(json.dumps({"code": code, "wall": time.perf_counter() - start,
                  "peak_rss_mb": peak_rss_mb()}))
"""
)
# A no-op run of the pipeline (argv[1]) from the store (argv[2]).
MEASURE = TIMED.replace(
    "ARGV", '["run", sys.argv[1], "--backend", "local", "--cache-dir", sys.argv[2], "--plain"]'
)
# A command as a user runs it: argv after the code; the store in $SHOTGRAPH_CACHE_DIR.
COMMAND = TIMED.replace("ARGV", "sys.argv[3:]")

STAND_IN = b"\x00\x00\x00\x18ftypmp42 stand-in output"


def fill_store(
    pipeline: Path, store_root: Path, output_of: Callable[[int, str], bytes] | None = None
) -> int:
    """A cached result for every node, and the lockfile, as after a complete run. Every
    node's output is one stand-in file, or ``output_of(index, name)``'s bytes."""
    result = check_pipeline(pipeline, backend="local")
    compiled = result.require()
    with Store.open(store_root) as store:
        stored = None
        records = {}
        for i, (name, step) in enumerate(compiled.steps.items()):
            if stored is None or output_of is not None:
                output = store.tmp_dir() / f"{name}.mp4"
                output.write_bytes(output_of(i, name) if output_of else STAND_IN)
                stored = store.put_file(output, move=True)
            record = step_record(name, step, stored, extra={"returned_seed": step.seed})
            store.put_result(record)
            records[name] = record
    write_lock(lock_path(pipeline), build_lock(compiled, records, result.outputs))
    return len(compiled.steps)


def measure(
    pipeline: Path,
    store_root: Path,
    *extra: str,
    code: str = MEASURE,
    env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Run ``code`` in a fresh process (with ``env`` added to the environment); its figures
    (it prints them as JSON)."""
    done = subprocess.run(
        [sys.executable, "-c", code, str(pipeline), str(store_root), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | (env or {}),
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["code"] != 0:
        raise SystemExit(f"the command failed:\n{done.stdout}\n{done.stderr}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pipeline = write_pipeline(folder, args.nodes)
        store_root = folder / "store"
        started = time.perf_counter()
        nodes = fill_store(pipeline, store_root)
        took = time.perf_counter() - started
        print(f"filled a store with {nodes} cached results in {took:.1f} s")
        print_reference(pipeline)
        runs = [measure(pipeline, store_root) for _ in range(args.repeat)]
        answers(pipeline, store_root, max(3, args.repeat - 1))
    for i, r in enumerate(runs):
        print(f"  run {i + 1}: {r['wall']:.3f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
    # The first run compiles and writes the compile memo; the others start from it.
    median = statistics.median(r["wall"] for r in runs[1:] or runs)
    peak = max(r["peak_rss_mb"] for r in runs[1:] or runs)
    print(
        f"no-op run of {nodes} cached nodes: first {runs[0]['wall']:.3f} s (compiles), then "
        f"median {median:.3f} s (from the compile memo; target < 0.5 s), peak RSS {peak:.0f} MB"
    )
    print_figure(
        "noop_scale", first=round(runs[0]["wall"], 3), wall=round(median, 3), rss=round(peak)
    )
    return 0


def answers(pipeline: Path, store_root: Path, repeat: int) -> None:
    """validate and plan from the memo, then plan after editing one chain (median each)."""
    where = [str(pipeline), "--backend", "local"]
    # validate has no --cache-dir: it finds the store as a run would, here through the
    # environment (it only reads the memo, and never opens the store).
    env = {"SHOTGRAPH_CACHE_DIR": str(store_root)}
    commands = {
        "validate": ["validate", *where],
        "plan": ["plan", *where, "--cache-dir", str(store_root)],
    }
    figures = {}
    for name, argv in commands.items():
        runs = [measure(pipeline, store_root, *argv, code=COMMAND, env=env) for _ in range(repeat)]
        figures[name] = statistics.median(r["wall"] for r in runs)
        figures[f"{name}_rss"] = max(r["peak_rss_mb"] for r in runs)
    text = pipeline.read_text()
    edited = []
    for i in range(repeat):
        # Each time another edit of chain 7: the memo never answers, the store has the rest.
        pipeline.write_text(text.replace("action: beat number 7,", f"action: beat {i} of 7,"))
        edited.append(measure(pipeline, store_root, *commands["plan"], code=COMMAND, env=env))
    pipeline.write_text(text)
    figures["edited"] = statistics.median(r["wall"] for r in edited)
    for name in ("validate", "plan"):
        print(
            f"{name} from the compile memo: median {figures[name]:.3f} s (target < 0.5 s), "
            f"peak RSS {figures[name + '_rss']:.0f} MB"
        )
    print(f"plan after editing one chain: median {figures['edited']:.3f} s (target < 0.6 s)")
    print_figure("memo_scale", **{k: round(v, 3) for k, v in figures.items()})


if __name__ == "__main__":
    sys.exit(main())
