#!/usr/bin/env python3
"""How fast a run answers a signal: from SIGINT (Ctrl-C, GitHub's cancel) to the run saying
what it does about it, and to its exit with the summary (queued jobs cancelled at fal, the
running one left journaled). GitHub sends SIGTERM 7.5 s after the SIGINT, so a clean stop
must end well within that.

A run of the tests' tiny pipeline against an emulator in a process of its own (one job runs
at a time, for 30 s): when three jobs are at fal, one runs and two wait in its queue; then
SIGINT.

    .venv/bin/python benchmarks/signal_feedback.py [--trials 3]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.emulator_process import emulator_process  # noqa: E402
from benchmarks.reference import print_reference  # noqa: E402
from tests.run_helpers import WIDE, make_project, submitted  # noqa: E402


def trial(url: str, folder: Path) -> tuple[float, float]:
    """Seconds from the SIGINT to the run's notice, and to its exit."""
    pipeline = make_project(folder / "p", text=WIDE)
    store = folder / "store"
    command = [sys.executable, "-m", "runner", "run", str(pipeline), "--backend", "local"]
    command += ["--emulator-url", url, "--cache-dir", str(store), "--plain"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while submitted(store) < 3:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the run never had three jobs at fal")
        time.sleep(0.02)
    time.sleep(0.5)  # the run sees each job's queue position
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.stdout is not None
    told = None
    for line in process.stdout:
        if told is None and "SIGINT: stopping" in line:
            told = time.monotonic() - sent
    code = process.wait()
    ended = time.monotonic() - sent
    if code != 130 or told is None:
        raise SystemExit(f"unexpected end: exit {code}, notice {told}")
    return told, ended


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    print_reference()
    told, ended = [], []
    with emulator_process("--latency", "30", "--concurrency", "1") as url:
        for n in range(args.trials):
            with tempfile.TemporaryDirectory() as folder:
                a, b = trial(url, Path(folder))
            told.append(a)
            ended.append(b)
            print(f"trial {n + 1}: notice after {a * 1000:.0f} ms, exit 130 after {b:.2f} s")
    print(
        f"SIGINT -> notice: {statistics.median(told) * 1000:.0f} ms median; "
        f"-> exit with the summary: {statistics.median(ended):.2f} s median "
        f"({args.trials} trials; GitHub's SIGTERM comes at 7.5 s)"
    )


if __name__ == "__main__":
    main()
