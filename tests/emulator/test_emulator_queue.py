"""Queueing (concurrency, positions) and persistence across restarts, including kill -9."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from emulator_helpers import AUTH, StartEmulator, follow, probe_mp4, submit, wait_completed

T2V = "fal-ai/ltx-video-13b-distilled"
SMALL = {"prompt": "queue", "num_frames": 9, "resolution": "480p"}


def test_only_in_progress_jobs_count_against_the_limit(
    start_emulator: StartEmulator, client: httpx.Client, tmp_path: Path
) -> None:
    # Jobs that stay in progress until the test is done looking: nothing hangs on timing.
    state = tmp_path / "state"
    held = start_emulator(latency=3600, concurrency=2, state_dir=state)
    handles = [submit(client, held.url, T2V, SMALL | {"seed": i}) for i in range(5)]
    # Two start at once; the other three wait in order, none rejected.
    assert [h["queue_position"] for h in handles] == [0, 0, 0, 1, 2]
    states = [client.get(h["status_url"]).json() for h in handles]
    assert [s["status"] for s in states] == ["IN_PROGRESS"] * 2 + ["IN_QUEUE"] * 3
    assert [s.get("queue_position") for s in states[2:]] == [0, 1, 2]
    assert held.stats()["states"] == {"IN_QUEUE": 3, "IN_PROGRESS": 2, "COMPLETED": 0}
    held.stop()
    # The same queue, let go: every job runs, two at a time at most.
    server = start_emulator(latency=0, concurrency=2, state_dir=state)
    for handle in handles:
        wait_completed(client, f"{server.url}/{T2V}/requests/{handle['request_id']}/status")
    stats = server.stats()
    assert stats["max_in_progress"] == 2
    assert stats["states"]["COMPLETED"] == 5


def test_queue_positions_move_up_as_jobs_finish(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(latency=0.2, concurrency=1)
    handles = [submit(client, server.url, T2V, SMALL | {"seed": i}) for i in range(3)]
    events = follow(client, handles[2]["status_url"])
    positions = [e["queue_position"] for e in events if e["status"] == "IN_QUEUE"]
    assert positions == [1, 0]
    assert events[-1]["status"] == "COMPLETED"


def test_jobs_survive_a_restart(
    start_emulator: StartEmulator, client: httpx.Client, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = start_emulator(latency=0.0, state_dir=state)
    done = submit(client, first.url, T2V, SMALL | {"seed": 1})
    wait_completed(client, done["status_url"])
    video_before = client.get(client.get(done["response_url"]).json()["video"]["url"]).content
    first.stop()

    slow = start_emulator(latency=30, concurrency=1, state_dir=state)
    pending = [submit(client, slow.url, T2V, SMALL | {"seed": s}) for s in (2, 3)]
    slow.stop()  # one job in progress, one queued: both unfinished

    again = start_emulator(latency=0.0, state_dir=state)
    for handle in [done, *pending]:
        rid = handle["request_id"]
        url = f"{again.url}/{T2V}/requests/{rid}"
        wait_completed(client, f"{url}/status")
        result = client.get(url)
        assert result.status_code == 200
        video = client.get(result.json()["video"]["url"])
        assert video.status_code == 200
        assert result.json()["video"]["url"].startswith(again.url)
        assert probe_mp4(video.content).frames == 9
    # The old result is served, byte for byte, from the new port.
    result = client.get(f"{again.url}/{T2V}/requests/{done['request_id']}").json()
    assert client.get(result["video"]["url"]).content == video_before
    assert again.stats()["total_submissions"] == 3


@pytest.fixture
def spawn_cli(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def start_cli(processes: list[subprocess.Popen[str]], *args: str) -> str:
    command = [sys.executable, "-m", "runner", "emulator", "serve", "--port", "0", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2]
    )
    processes.append(process)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("fal emulator listening on "), line
    return line.rsplit(" ", 1)[1].strip()


def test_kill_9_loses_nothing(spawn_cli: list[subprocess.Popen[str]], tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    with httpx.Client(headers=AUTH, timeout=30) as client:
        url = start_cli(spawn_cli, "--state-dir", state, "--latency", "30", "--concurrency", "1")
        handles = [submit(client, url, T2V, SMALL | {"seed": s}) for s in (1, 2)]
        os.kill(spawn_cli[0].pid, signal.SIGKILL)
        spawn_cli[0].wait()

        url = start_cli(spawn_cli, "--state-dir", state, "--latency", "0")
        for handle in handles:
            base = f"{url}/{T2V}/requests/{handle['request_id']}"
            status = wait_completed(client, f"{base}/status")
            assert "error" not in status
            video = client.get(client.get(base).json()["video"]["url"])
            assert probe_mp4(video.content).frames == 9
        stats = client.get(f"{url}/_emulator/stats").json()
        assert stats["total_submissions"] == 2
        # SIGTERM shuts down gracefully (uvicorn then re-raises the signal).
        spawn_cli[1].send_signal(signal.SIGTERM)
        assert spawn_cli[1].wait(timeout=10) in (0, -signal.SIGTERM)


def test_render_workers_die_with_a_killed_emulator(
    spawn_cli: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    url = start_cli(spawn_cli, "--latency", "0", "--state-dir", str(tmp_path / "state"))
    with httpx.Client(headers=AUTH, timeout=30) as client:
        wait_completed(client, submit(client, url, T2V, SMALL)["status_url"])
    workers = children(spawn_cli[0].pid)
    assert workers
    exits = [os.pidfd_open(pid) for pid in workers]  # readable once the process has ended
    try:
        os.kill(spawn_cli[0].pid, signal.SIGKILL)
        spawn_cli[0].wait()
        for pidfd in exits:
            assert select.select([pidfd], [], [], 30)[0], "a render worker outlived its emulator"
    finally:
        for pidfd in exits:
            os.close(pidfd)
    assert not any(alive(pid) for pid in workers)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_temporary_state_of_a_killed_emulator_is_swept(
    spawn_cli: list[subprocess.Popen[str]], start_emulator: StartEmulator
) -> None:
    url = start_cli(spawn_cli, "--latency", "0")
    assert httpx.get(f"{url}/_emulator/stats").status_code == 200  # started: state made
    pid = spawn_cli[0].pid
    owned = [
        d
        for d in Path(tempfile.gettempdir()).glob("shotgraph-emulator-*")
        if (d / "owner.pid").is_file() and (d / "owner.pid").read_text() == str(pid)
    ]
    assert len(owned) == 1
    os.kill(pid, signal.SIGKILL)
    spawn_cli[0].wait()
    assert owned[0].exists()
    start_emulator().stop()
    assert not owned[0].exists()
