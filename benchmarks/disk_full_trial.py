#!/usr/bin/env python3
"""The disk-full trial: runs on a small tmpfs filled to a little free space, then a rerun
once space is back; exit codes, tracebacks and jobs paid twice.

The project (outputs, lockfile) and the store (records, files, run log) live on a 24 MB
tmpfs filled until a given amount is left; the first run must end in exit 1 without a
traceback, naming the full disk (or succeed, if it fitted). Then the space comes back and a
rerun must complete, and no request may have been billed twice: counted from the jobs the
emulator journaled, by request body, leaving out jobs that failed with a 5xx (fal bills
none of those). Two set-ups: fal elsewhere (the emulator in this process: `--emulator-url`),
and the local backend's own emulator, whose state lives in the store on the full disk too
(there its renders fail for lack of space, as fal's own internal errors, and are rendered
again by the rerun: not billed twice).

Mounting a tmpfs needs root.

    .venv/bin/python benchmarks/disk_full_trial.py [--free 0.1,0.3,...] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.reference import print_reference  # noqa: E402
from runner.emulator import EmulatorConfig, EmulatorServer  # noqa: E402
from runner.emulator.jobs import JobStore  # noqa: E402
from tests.run_helpers import WIDE, make_project, spawn_run  # noqa: E402
from tests.small_disk import fill, unfill  # noqa: E402

FREE_MB = "0.1,0.3,0.6,0.9,1.2,1.5,2,2.5,3,3.5,4"


def billed(state: Path) -> Counter[str]:
    """Jobs fal would bill, by request fingerprint: every journaled job but those that
    failed with a 5xx."""
    return Counter(
        job.fingerprint
        for job in JobStore(state).load()
        if job.error is None or job.error.status < 500
    )


def trial(
    disk: Path, free_mb: float, fal_url: str | None, state: Path
) -> tuple[int, bool, int, int]:
    """(first exit code, traceback seen, jobs billed, requests billed more than once)."""
    pipeline = make_project(disk / "p", text=WIDE)
    store = disk / "store"
    args = ["--backend", "local", "--emulator-latency", "0.3"]
    if fal_url is not None:
        args += ["--emulator-url", fal_url]
    fill(disk, leave=int(free_mb * 1e6))
    first = spawn_run(pipeline, store, *args)
    out, err = first.communicate(timeout=300)
    traceback = "Traceback" in err or "internal error" in err
    if first.returncode not in (0, 1) or traceback:
        print(f"    first run ({first.returncode}):\n{out[-1500:]}\n{err[-1500:]}")
    unfill(disk)
    again = spawn_run(pipeline, store, *args)
    out2, err2 = again.communicate(timeout=300)
    if again.returncode != 0:
        print(f"    the rerun failed ({again.returncode}):\n{out2[-1500:]}\n{err2[-1500:]}")
    counts = billed(state)
    return first.returncode, traceback, sum(counts.values()), sum(n - 1 for n in counts.values())


def mounted(where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(where)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--free", default=FREE_MB, help="MB left free, comma-separated")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print_reference()
    if os.geteuid() != 0:
        print("skipped: mounting a small tmpfs needs root (make bench runs every benchmark)")
        return 0
    frees = [float(x) for x in args.free.split(",")] * args.repeat
    totals = {"runs": 0, "exit 1": 0, "other exit": 0, "tracebacks": 0, "duplicates": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for label, own in (("fal elsewhere", False), ("the local backend's own emulator", True)):
            print(f"{label}:")
            for free_mb in frees:
                disk = Path(tmp) / "disk"
                mounted(disk)
                try:
                    if own:
                        state = disk / "store" / "emulator"
                        code, traceback, sent, twice = trial(disk, free_mb, None, state)
                    else:
                        state = Path(tmp) / f"fal-{free_mb}"
                        config = EmulatorConfig(
                            latency=0.3, concurrency=8, require_auth=False, state_dir=state
                        )
                        with EmulatorServer(config) as fal:
                            code, traceback, sent, twice = trial(disk, free_mb, fal.url, state)
                finally:
                    subprocess.run(["umount", "-l", str(disk)], capture_output=True)
                    shutil.rmtree(disk, ignore_errors=True)
                totals["runs"] += 1
                totals["exit 1"] += code == 1
                totals["other exit"] += code not in (0, 1)
                totals["tracebacks"] += traceback
                totals["duplicates"] += twice
                print(
                    f"  {free_mb:4.1f} MB free: first run exit {code}"
                    f"{', TRACEBACK' if traceback else ''}; {sent} jobs billed, {twice} twice"
                )
    print(
        f"{totals['runs']} runs: {totals['exit 1']} ended in exit 1 (the rest fitted), "
        f"{totals['other exit']} in another code, {totals['tracebacks']} traceback(s), "
        f"{totals['duplicates']} request(s) billed twice across the reruns"
    )
    bad = totals["other exit"] + totals["tracebacks"] + totals["duplicates"]
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
