"""A run started by a CI step's shell without `exec`: when the runner kills that shell
outright, the run takes its parent's death for a SIGTERM and stops cleanly instead of
rendering on, orphaned; a real signal after it is the second one. Without the watch an
orphan runs on (the control)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# The run's side, as `execute` holds it: signals_handled around the loop's work.
CHILD = """
import asyncio, sys
from runner.run.interrupt import signals_handled

async def main(watched):
    done = asyncio.Event()
    def first(signum):
        print("first", signum, flush=True)
        done.set()
    def second(signum):
        print("second", signum, flush=True)
    if not watched:
        print("ready", flush=True)
        await asyncio.sleep(2)
        print("ran on", flush=True)
        return
    with signals_handled(first, second):
        print("ready", flush=True)
        await asyncio.wait_for(done.wait(), 30)

asyncio.run(main(sys.argv[1] == "watched"))
"""


def orphan(tmp_path: Path, mode: str) -> list[str]:
    """Start the child behind a shell that waits for it, kill the shell with SIGKILL, and
    return the two lines the child says: "ready", then what became of it."""
    said = tmp_path / f"said-{mode}"
    said.touch()
    shell = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" -c "$CHILD" {mode} > "{said}" & wait'],
        env={**os.environ, "CHILD": CHILD},
        start_new_session=True,
    )
    lines = until_lines(said, 1)
    os.kill(shell.pid, signal.SIGKILL)  # the runner's last word to the step's shell
    shell.wait(10)
    return lines + until_lines(said, 2)[1:]


def until_lines(said: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while len(lines := said.read_text().splitlines()) < count:
        assert time.monotonic() < deadline, f"the child said only {lines}"
        time.sleep(0.02)
    return lines


def test_the_parents_death_is_a_sigterm(tmp_path: Path) -> None:
    assert orphan(tmp_path, "watched") == ["ready", f"first {int(signal.SIGTERM)}"]


def test_without_the_watch_an_orphan_runs_on(tmp_path: Path) -> None:
    assert orphan(tmp_path, "plain") == ["ready", "ran on"]
