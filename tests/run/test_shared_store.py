"""Machines sharing one store on a real S3 server (SeaweedFS and moto in turn), the emulator
counting submissions: nothing rendered twice, whichever machine asked first; a second
machine's no-op changes nothing; a machine that dies is taken over after its lease; a
tampered object is never delivered; a store that goes away fails the run by name and
costs nothing twice when it is back."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from runner import cli
from runner.emulator import EmulatorServer
from runner.store import RemoteStore, open_remote
from runner.store.remote_store import file_name
from tests.run.shared_helpers import clone, machine_env, spawn_machine, t2v_pipeline
from tests.run_helpers import lock_of, make_project

pytestmark = pytest.mark.slow


def run_here(pipeline: Path, *extra: str) -> int:
    store = pipeline.parent / ".store"
    return cli.run(["run", str(pipeline), "--cache-dir", str(store), "--plain", *extra])


def use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def bucket(server: Any, url: str) -> RemoteStore:
    return open_remote(url, server.env())


async def journal_states(store: RemoteStore) -> list[str]:
    names = [info.name async for info in store.remote.list("journal/")]
    keys = [name.removeprefix("journal/").removesuffix(".json") for name in names]
    entries = [await store.journal.get(key) for key in keys]
    return [entry.state for entry in entries if entry is not None]


def test_a_second_machine_renders_nothing_and_changes_no_lockfile(
    tmp_path: Path,
    s3_server: Any,
    start_emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator: EmulatorServer = start_emulator()
    use(monkeypatch, machine_env(s3_server, s3_server.url()))
    args = ("--backend", "local", "--emulator-url", emulator.url)
    a = make_project(tmp_path / "a")
    assert run_here(a, *args) == 0
    paid = emulator.stats()["total_submissions"]
    assert paid == 5
    b = clone(a.parent, tmp_path / "b") / a.name  # A's lockfile committed, nothing else
    locked = (a.parent / "tiny.lock.json").read_bytes()
    capsys.readouterr()
    assert run_here(b, *args) == 0
    assert emulator.stats()["total_submissions"] == paid
    assert "0 rendered, 7 cached" in capsys.readouterr().out
    assert (b.parent / "tiny.lock.json").read_bytes() == locked
    for output in ("renders/cut.mp4", "renders/best.png"):
        assert (b.parent / output).read_bytes() == (a.parent / output).read_bytes()
    # B fetched what it delivers, not every intermediate clip.
    assert len(list((b.parent / ".store" / "files").rglob("*"))) <= 2 + 2  # shards + files


def test_four_machines_split_forty_jobs_each_submitted_once(
    tmp_path: Path, s3_server: Any, start_emulator: Any
) -> None:
    emulator: EmulatorServer = start_emulator(latency=0.2, concurrency=8)
    env = machine_env(s3_server, s3_server.url(), SHOTGRAPH_STORE_LEASE="10")
    first = t2v_pipeline(tmp_path / "m0", 40, "four")
    pipelines = [first] + [
        clone(first.parent, tmp_path / f"m{i}") / first.name for i in range(1, 4)
    ]
    args = ("--backend", "local", "--emulator-url", emulator.url, "-j", "6")
    runs = [spawn_machine(f"machine-{i}", p, env, *args) for i, p in enumerate(pipelines)]
    outcomes = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], outcomes
    counts = emulator.stats()["submissions"]
    assert len(counts) == 40 and set(counts.values()) == {1}
    locks = [lock_of(p) for p in pipelines]
    assert all(lock.nodes == locks[0].nodes for lock in locks)
    for p in pipelines[1:]:
        for i in range(3):
            assert (p.parent / f"renders/s{i}.mp4").read_bytes() == (
                first.parent / f"renders/s{i}.mp4"
            ).read_bytes()


def test_a_killed_machine_is_taken_over_after_its_lease_without_a_second_job(
    tmp_path: Path, s3_server: Any, start_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator: EmulatorServer = start_emulator(latency=3.0, concurrency=8)
    url = s3_server.url()
    env = machine_env(s3_server, url, SHOTGRAPH_STORE_LEASE="1.5")
    a = t2v_pipeline(tmp_path / "a", 4, "killed", outputs=4)
    b = clone(a.parent, tmp_path / "b") / a.name
    args = ("--backend", "local", "--emulator-url", emulator.url, "-j", "4")
    victim = spawn_machine("machine-a", a, env, *args)
    shared = bucket(s3_server, url)
    deadline = time.monotonic() + 60
    while asyncio.run(journal_states(shared)) != ["submitted"] * 4:
        assert victim.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    # Killed while its jobs are at fal, and before the survivor starts: the survivor finds
    # claims whose heartbeat stops, waits out the lease, and takes them over.
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    survivor = spawn_machine("machine-b", b, env, *args)
    out, err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, out + err
    assert out.count("re-attached to request") == 4, out
    counts = emulator.stats()["submissions"]
    assert len(counts) == 4 and set(counts.values()) == {1}, counts
    use(monkeypatch, env)
    store = ["--cache-dir", str(b.parent / ".store"), "--store", url]
    assert cli.run(["cache", "verify", *store, "--project", str(b.parent)]) == 0


def test_a_tampered_object_is_detected_not_delivered_and_made_again(
    tmp_path: Path,
    s3_server: Any,
    start_emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator: EmulatorServer = start_emulator()
    url = s3_server.url()
    use(monkeypatch, machine_env(s3_server, url))
    args = ("--backend", "local", "--emulator-url", emulator.url)
    a = make_project(tmp_path / "a")
    assert run_here(a, *args) == 0
    hashes = {name: e.output.sha256 for name, e in lock_of(a).nodes.items()}
    before = emulator.stats()["total_submissions"]
    shared = bucket(s3_server, url)
    for node in ("cut", "street"):  # an output, and a shot the cut needs again
        asyncio.run(shared.remote.put(file_name(hashes[node]), b"not the video you paid for"))
    b = clone(a.parent, tmp_path / "b") / a.name
    capsys.readouterr()
    assert run_here(b, *args) == 0
    out = capsys.readouterr().out
    assert out.count("tampered with") == 2
    assert emulator.stats()["total_submissions"] == before + 1  # street, rendered again
    assert (b.parent / "renders/cut.mp4").read_bytes() == (
        a.parent / "renders/cut.mp4"
    ).read_bytes()
    assert {n: e.output.sha256 for n, e in lock_of(b).nodes.items()} == hashes


@pytest.fixture
def own_server(request: pytest.FixtureRequest, tmp_path: Path, s3_server: Any) -> Any:
    """A server of the same kind, for this test alone (it is stopped mid-run)."""
    from tests import s3_servers

    server = s3_servers.start(s3_server.kind, tmp_path / "own-s3")
    request.addfinalizer(lambda: server.stop(keep_data=False))
    return server


def test_a_store_gone_mid_run_fails_by_name_and_nothing_is_paid_twice(
    tmp_path: Path, own_server: Any, start_emulator: Any
) -> None:
    emulator: EmulatorServer = start_emulator(latency=1.5, concurrency=8)
    url = own_server.url()
    # Only the run that loses the store gives up on it quickly: a second's patience would
    # make the later runs fail on a busy machine, which is not what is tested here.
    env = machine_env(own_server, url, SHOTGRAPH_STORE_LEASE="3")
    a = t2v_pipeline(tmp_path / "a", 4, "gone", outputs=4)
    args = ("--backend", "local", "--emulator-url", emulator.url, "-j", "4")
    first = spawn_machine("machine-a", a, {**env, "SHOTGRAPH_STORE_TIMEOUT": "1"}, *args)
    shared = bucket(own_server, url)
    deadline = time.monotonic() + 60
    while asyncio.run(journal_states(shared)) != ["submitted"] * 4:
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    own_server.stop()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 1, out + err
    assert url in out + err and own_server.endpoint in out + err
    assert "Traceback" not in out + err
    own_server.start()
    again = spawn_machine("machine-a", a, env, *args)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, out + err
    counts = emulator.stats()["submissions"]
    assert len(counts) == 4 and set(counts.values()) == {1}, counts
    shutil.rmtree(a.parent / ".store")  # and a third machine finds everything shared
    third = spawn_machine("machine-c", a, env, *args)
    out, err = third.communicate(timeout=60)
    assert third.returncode == 0 and "0 rendered, 4 cached" in out, out + err
