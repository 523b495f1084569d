"""`shotgraph emulator serve` in a process of its own, for benchmarks that must not count the
emulator's work as the client's (fal runs elsewhere, after all)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def emulator_process(*options: str) -> Iterator[str]:
    """Start the emulator with ``options`` (e.g. ``--latency 1``); yield its URL."""
    command = [
        sys.executable,
        "-m",
        "runner",
        "emulator",
        "serve",
        "--port",
        "0",
        "--no-auth",
        *options,
    ]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield server.stdout.readline().split()[-1]  # "fal emulator listening on URL"
    finally:
        server.terminate()
        try:
            # After thousands of jobs it may take a while to close its journal.
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
