"""A run started by a CI step's shell without `exec`: when the runner kills that shell
outright, the kernel sends the run SIGTERM (Linux), so it stops cleanly instead of rendering
on, orphaned. Outside the context nothing is armed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"),
]

CHILD = """
import signal, sys, time
from pathlib import Path
from runner.run.interrupt import parent_death_is_sigterm

seen = Path(sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: (seen.write_text("SIGTERM"), sys.exit(143)))
armed = sys.argv[2] == "armed"
if armed:
    with parent_death_is_sigterm():
        print("ready", flush=True)
        time.sleep(30)
else:
    print("ready", flush=True)
    time.sleep(2)
seen.write_text("timeout")
"""


def orphan(tmp_path: Path, mode: str) -> str:
    """Start the child behind a shell that waits for it, kill the shell with SIGKILL, and
    return what the child saw."""
    seen = tmp_path / f"seen-{mode}"
    shell = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" -c "$CHILD" "{seen}" {mode} & wait'],
        env={**os.environ, "CHILD": CHILD},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert shell.stdout is not None
    assert shell.stdout.readline() == "ready\n"
    os.kill(shell.pid, signal.SIGKILL)  # the runner's last word to the step's shell
    shell.wait(10)
    deadline = time.monotonic() + 20
    while not seen.exists():
        assert time.monotonic() < deadline, "the child never ended"
        time.sleep(0.02)
    return seen.read_text()


def test_the_parents_death_is_a_sigterm(tmp_path: Path) -> None:
    assert orphan(tmp_path, "armed") == "SIGTERM"


def test_without_it_an_orphan_runs_on(tmp_path: Path) -> None:
    assert orphan(tmp_path, "plain") == "timeout"
