"""SIGINT and SIGTERM stop a run cleanly, as a terminal and CI send them: queued jobs are
cancelled at fal, running ones stay journaled, the run says so at once, nothing prints a
traceback, and the rerun pays for nothing twice. GitHub's cancel (SIGINT, SIGTERM 7.5 s
later, then SIGKILL) is played with the delays compressed."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runner.emulator import EmulatorServer
from runner.store import Store, verify_store
from tests.run_helpers import GENERATION_NODES, make_project, spawn_run, start_emulator

pytestmark = pytest.mark.slow


def journaled(store: Path) -> list[str]:
    if not (store / "records").exists():
        return []
    with Store.open(store) as opened:
        return [entry.state for _, entry in opened.in_flight()]


def until_three_jobs_are_at_fal(process: subprocess.Popen[str], store: Path) -> None:
    deadline = time.monotonic() + 60
    while journaled(store).count("submitted") < 3:  # street, intro and orbit
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the jobs were never submitted"
        time.sleep(0.02)


def read_until(process: subprocess.Popen[str], fragment: str, *, err: bool = False) -> list[str]:
    """Lines of the run's stdout (``err``: stderr) up to the first that holds ``fragment``."""
    stream = process.stderr if err else process.stdout
    assert stream is not None
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if fragment in line:
            return lines
    raise AssertionError(f"{fragment!r} never came:\n{''.join(lines)}")


def ran_once_each(emulator: EmulatorServer) -> dict[str, Any]:
    """The emulator's stats, having checked no job was rendered twice: every job that ran
    ran once, and only jobs cancelled before they ran were ever sent again."""
    stats = emulator.stats()
    ran = stats["states"]["COMPLETED"] - stats["failed"]
    assert ran == len(GENERATION_NODES), stats
    assert stats["total_submissions"] == len(GENERATION_NODES) + stats["cancelled"], stats
    return stats


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_cancels_queued_jobs_keeps_running_ones_and_says_so(
    tmp_path: Path, render_pool: ProcessPoolExecutor, signum: signal.Signals
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    # One job runs at a time: when the signal comes, one runs and two wait in the queue.
    with start_emulator(render_pool, latency=1.0, concurrency=1) as emulator:
        local = ("--backend", "local", "--emulator-url", emulator.url)
        process = spawn_run(pipeline, store, *local)
        until_three_jobs_are_at_fal(process, store)
        time.sleep(0.3)  # the runner sees each job's queue position
        process.send_signal(signum)
        told = read_until(process, f"{signum.name}: stopping")[-1]
        assert "cancelling 2 job(s) queued at fal" in told
        assert "1 running job(s) stay journaled" in told
        out, err = process.communicate(timeout=60)
        assert process.returncode == 128 + signum, out + err
        assert "Traceback" not in out + err
        assert "cancelled at fal before they ran (nothing paid)" in out
        assert "still running at fal" in out
        assert emulator.stats()["cancelled"] == 2
        assert journaled(store) == ["submitted"]  # the running job, collected next time
        emulator.set_pace(latency=0.0, concurrency=8)
        again = spawn_run(pipeline, store, *local, "--json")
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, out + err
        outcomes = {n: node["outcome"] for n, node in json.loads(out)["nodes"].items()}
        assert list(outcomes.values()).count("reattached") == 1
        ran_once_each(emulator)


def test_githubs_cancel_sigint_then_sigterm_then_sigkill(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    pipeline = make_project(tmp_path / "p")
    store = tmp_path / "store"
    with start_emulator(render_pool, latency=1.0, concurrency=1) as emulator:
        # fal takes its time to answer a cancel: the SIGTERM comes while the run still tidies.
        emulator.set_faults([{"kind": "delay", "route": "cancel", "seconds": 3, "times": None}])
        local = ("--backend", "local", "--emulator-url", emulator.url, "--json")
        process = spawn_run(pipeline, store, *local)
        until_three_jobs_are_at_fal(process, store)
        process.send_signal(signal.SIGINT)
        # GitHub waits 7.5 s; here, until the run has begun to stop (its cancels take 3 s).
        said = "".join(read_until(process, "SIGINT: stopping", err=True))
        process.send_signal(signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=2.5)  # GitHub waits 2.5 s more
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            raise AssertionError("SIGTERM after SIGINT did not end the run at once") from None
        err = said + err
        assert process.returncode == 143, err
        assert "SIGINT: stopping" in err and "SIGTERM again: exiting now" in err
        assert "Traceback" not in out + err
        # What the second signal left is consistent: the rerun re-attaches, pays nothing twice.
        emulator.set_faults([])
        emulator.set_pace(latency=0.0, concurrency=8)
        again = spawn_run(pipeline, store, *local)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, out + err
        assert "Traceback" not in out + err
        ran_once_each(emulator)
    with Store.open(store) as opened:
        assert opened.in_flight() == [] and verify_store(opened).clean


def test_ctrl_c_twice_on_a_terminal_restores_it_and_no_process_prints_a_traceback(
    tmp_path: Path,
) -> None:
    """Ctrl-C reaches every process of the terminal's foreground group: the run, and the
    render workers of the local backend's own emulator, spawned in the first seconds."""
    import os
    import pty
    import sys
    import threading

    from tests.run_helpers import ROOT

    pipeline = make_project(tmp_path / "p")
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "run",
            str(pipeline),
            "--backend",
            "local",
            "--cache-dir",
            str(tmp_path / "store"),
            "--emulator-latency",
            "5",
        ],
        cwd=ROOT,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
        env={**os.environ, "COLUMNS": "100", "LINES": "30", "TERM": "xterm"},
    )
    os.close(secondary)
    seen = bytearray()
    header, notice = threading.Event(), threading.Event()

    def read() -> None:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)
            plain = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", bytes(seen))
            if b"run tiny (local)" in plain:
                header.set()
            if b"SIGINT: stopping" in plain:
                notice.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert header.wait(60), seen.decode(errors="replace")
    os.killpg(process.pid, signal.SIGINT)  # the first seconds: workers are starting
    assert notice.wait(10), seen.decode(errors="replace")
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(30) == 130
    reader.join(5)
    os.close(primary)
    raw = seen.decode(errors="replace")
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", raw)  # colours and cursor moves, not ?25
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "SIGINT again: exiting now" in text
    hidden, shown = raw.rfind("\x1b[?25l"), raw.rfind("\x1b[?25h")
    assert hidden != -1, "the live table never hid the cursor: nothing was tested"
    assert shown > hidden, "the cursor was left hidden"
    # The live table was taken down before the last words, not drawn again after them.
    assert "rendered ·" not in text[text.rfind("exiting now") :]
