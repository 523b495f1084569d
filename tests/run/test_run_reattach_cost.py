"""After a crash, plan and run price what is left the same way: jobs an earlier run submitted
are collected, not paid again, in the plan's total, the run's header and its budget."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tests.run_helpers import ROOT, make_project, spawn_run, start_emulator, submitted


def test_plan_and_run_agree_on_cost_and_budget_after_a_reattach(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    with start_emulator(render_pool, latency=1.0) as emulator:
        local = ("--backend", "local", "--emulator-url", emulator.url)
        victim = spawn_run(pipeline, store, *local)
        deadline = time.monotonic() + 60
        while submitted(store) < 3:  # street, intro and orbit: paid for, then the run dies
            assert victim.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        plan = subprocess.run(
            [
                sys.executable,
                "-m",
                "runner",
                "plan",
                str(pipeline),
                "--json",
                "--backend",
                "local",
                "--cache-dir",
                str(store),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        total = json.loads(plan.stdout)["total"]
        assert total["to_attach"] == 3 and total["estimated_usd"] == 0.08, total
        # The slow pace kept three jobs in flight at the kill; the rest need not wait.
        emulator.set_pace(latency=0.0, concurrency=8)
        # Over the plan's total by a cent: the run starts and renders everything.
        again = spawn_run(pipeline, store, *local, "--budget", "0.09")
        out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    header = out.splitlines()[0]
    assert "7 to render (3 already submitted), estimated ~$0.08" in header, header
    assert "would cost ~$0.08 on fal" in out
    assert "3 re-attached (sent and paid for by an earlier run, ~$0.12)" in out
