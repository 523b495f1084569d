#!/usr/bin/env python3
"""Issue 9's first check, on the real demo: machine A renders pipelines/demo.yaml into a
shared store on SeaweedFS (loopback); machine B, another clone with an empty local store
and only A's committed lockfile, runs it against the same store. Prints B's submissions
(target 0), whether B's outputs are byte-identical to A's and whether B's lockfile is A's.

    .venv/bin/python benchmarks/demo_two_machines.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.emulator_process import emulator_process  # noqa: E402
from benchmarks.reference import print_reference  # noqa: E402
from tests import s3_servers  # noqa: E402

LOCK = "pipelines/demo.lock.json"
OUTPUTS = ("pipelines/renders/rainy-night.mp4", "pipelines/renders/rainy-night-best-frame.png")


def checkout(where: Path) -> Path:
    """The project as a clone has it: the pipelines (no lockfile yet, no renders)."""
    (where / ".git").mkdir(parents=True)
    ignore = shutil.ignore_patterns("renders", ".shotgraph", "*.lock.json")
    shutil.copytree(ROOT / "pipelines", where / "pipelines", ignore=ignore)
    return where


def submissions(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_emulator/stats") as answer:
        return int(json.load(answer)["total_submissions"])


def run(project: Path, env: dict[str, str], url: str) -> float:
    command = [sys.executable, "-m", "runner", "run", str(project / "pipelines/demo.yaml")]
    command += ["--plain", "--backend", "local", "--emulator-url", url]
    command += ["--cache-dir", str(project / ".store")]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"the run in {project} failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started


def main() -> int:
    print_reference(ROOT / "pipelines" / "demo.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        with s3_servers.serving("seaweedfs", base / "seaweedfs") as server:
            env = {**os.environ, **server.env(), "SHOTGRAPH_STORE": server.url("demo")}
            with emulator_process() as url:
                a = checkout(base / "a")
                took_a = run(a, env, url)
                paid_a = submissions(url)
                b = checkout(base / "b")
                shutil.copy(a / LOCK, b / LOCK)  # A's lockfile, committed
                took_b = run(b, env, url)
                paid_b = submissions(url) - paid_a
            same = all((a / o).read_bytes() == (b / o).read_bytes() for o in OUTPUTS)
            same_lock = (a / LOCK).read_bytes() == (b / LOCK).read_bytes()
    print(f"machine A: {paid_a} submissions, {took_a:.1f} s")
    print(
        f"machine B (empty local store, same bucket): {paid_b} submissions (target 0), "
        f"{took_b:.1f} s; outputs byte-identical: {same}; lockfile identical: {same_lock}"
    )
    return 0 if paid_b == 0 and same and same_lock else 1


if __name__ == "__main__":
    sys.exit(main())
