"""Shared fixtures. Every test runs with a private HOME and store, never the user's."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

# Test files go to memory when there is room for them: the tests' stores sync every write
# (SQLite's WAL, fsync), which on a disk costs the suite seconds of waiting and proves
# nothing more (a killed process keeps the page cache; power cuts are not tested). A
# container's small /dev/shm (64 MB by default) is left alone.
MEMORY_TEMP = Path("/dev/shm")
MEMORY_TEMP_ROOM = 4 << 30


def pytest_configure(config: pytest.Config) -> None:
    chosen = config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT")
    if chosen or not os.access(MEMORY_TEMP, os.W_OK):
        return
    room = os.statvfs(MEMORY_TEMP)
    if room.f_bavail * room.f_frsize >= MEMORY_TEMP_ROOM:
        # pytest (and its xdist workers, started after this) make their temp dirs there
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(MEMORY_TEMP)


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("SHOTGRAPH_CACHE_DIR", str(home / "shotgraph-store"))
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.delenv("FAL_KEY_ID", raising=False)
    monkeypatch.delenv("FAL_KEY_SECRET", raising=False)
    monkeypatch.delenv("FAL_QUEUE_RUN_HOST", raising=False)
    for name in ("SHOTGRAPH_STORE", "SHOTGRAPH_STORE_LEASE", *AWS_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    # Never ask an instance metadata service for credentials: it is not on loopback.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9")
    # A run that finds an uncertain submit looks for its job in the emulator's request
    # listing this long (seconds) before it sends the body again (fal: 10 minutes).
    monkeypatch.setenv("SHOTGRAPH_FAL_LISTING_SETTLE", "4")
    # It looks again this often (seconds) meanwhile (fal: 5), so it finds a job as soon as
    # the listing shows it, not at the end of the settle time.
    monkeypatch.setenv("SHOTGRAPH_FAL_LISTING_POLL", "0.05")
    yield


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the machine has cores (``--maxprocesses`` caps it).
    Much of the suite waits (on emulators, S3 servers, subprocesses, the ``alone`` test's
    turnstile), so a worker per core leaves cores idle: on 2 cores, 2 workers took 125 s,
    3 took 103 s, 4 and 6 about the same as 3 with more CPU spent (2026-11-27, quiet)."""
    return (os.cpu_count() or 1) + 1


@pytest.fixture(autouse=True)
def _alone_when_marked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """With pytest-xdist, a test marked ``alone`` (one that judges the machine's timing, such
    as the slow-callback check) waits for the other workers' tests to end and keeps them
    from starting until it is done: a reader-writer lock on two files every worker can see.
    The turnstile lets no new test in while an ``alone`` test waits, so it is never starved."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield  # one process: every test is alone already
        return
    shared = tmp_path_factory.getbasetemp().parent  # the session's, above each worker's
    alone = request.node.get_closest_marker("alone") is not None
    with (
        open(shared / "turnstile.lock", "a") as turnstile,
        open(shared / "tests.lock", "a") as tests,
    ):
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if alone:
            fcntl.flock(tests, fcntl.LOCK_EX)  # every running test has ended
        else:
            fcntl.flock(tests, fcntl.LOCK_SH)
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        yield  # the locks go with the files


# The tests that take longest, longest first (a prefix names a test, its parameters or a
# whole file). Measured again on 2026-11-27 (17:00-17:40, load 5-16, `pytest` with a
# per-test CPU and wall plugin, the mean of two runs, the alone test's wait left out: the
# first test of every other worker waits for it). They start first so that the last tests
# to run are short ones and every worker ends at about the same time, instead of one of
# them running a 15 s test while the others have nothing left to do. (xdist's worksteal
# hands the first worker the first half of this order and the second worker the rest; an
# idle worker steals the far end of the other's queue: short tests.) A file named whole
# keeps its module fixtures (an emulator, the S3 servers' buckets) set up once; its tests
# run one after the other.
LONGEST_FIRST = (
    "tests/run/test_shared_store.py",
    "tests/run/test_ltx2_example.py::test_it_renders",
    "tests/emulator/test_emulator_render.py",
    "tests/test_wheel.py",
    "tests/report/test_report_browser.py",
    "tests/run/test_run_signals.py",
    "tests/emulator/test_emulator_moves.py",
    "tests/emulator/test_emulator_queue.py",
    "tests/pipeline/test_property_validate.py",
    "tests/run/test_run_diskfull.py::test_a_full_disk",
    "tests/pipeline/test_schema.py::test_validator_agrees_on",
    "tests/run/test_run_crash.py::test_random_kills",
    "tests/run/test_run_races.py::test_a_replay_on_the_local",
    "tests/report/test_report_page.py::test_a_rendered_pipeline",
    "tests/test_action.py",
    "tests/store/test_s3_remote.py",
    "tests/emulator/test_emulator_ltx2.py::test_pro_and_fast",
    "tests/run/test_run.py::test_gc_clears",
    "tests/media/test_stitch_determinism.py::test_twenty",
    "tests/pipeline/test_schema_tools.py",
    "tests/run/test_run_crash.py::test_two_runs",
    "tests/pipeline/test_hostile.py",
    "tests/run/test_run_crash.py::test_kill_9",
    "tests/run/test_run_races.py::test_a_hand_edited",
    "tests/emulator/test_emulator_fal_js.py",
    "tests/run/test_run.py::test_cached_inputs",
    "tests/run/test_run_reattach_cost.py",
    "tests/fal/test_fal_emulator.py::test_many_jobs",
    "tests/commands/test_run_json.py",
    "tests/run/test_run_reconcile.py::test_a_run_killed_between",
    "tests/ltx/test_pydantic_parity.py",
    "tests/run/test_run_names.py",
    "tests/store/test_store.py::test_two_processes",
    "tests/run/test_run_reconcile.py::test_a_listing",
    "tests/run/test_run.py::test_replay_on_a_fresh",
    "tests/review/test_review_flow.py::test_takes_render",
    "tests/compile/test_memo.py::test_a_memo_hit",
    "tests/store/test_store.py::test_kill_at_any_moment",
    "tests/review/test_review_flow.py::test_a_rejection",
    "tests/run/test_parent_death.py::test_without_the_watch",
    "tests/review/test_review_flow.py::test_a_gate",
)


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by their fixtures
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``alone`` tests first (they wait for every running test to end: at the start there
    are none), then :data:`LONGEST_FIRST`, then the rest in their order. Every xdist worker
    sorts its collection the same way, as xdist requires."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("alone") is not None:
            return -1
        for i, prefix in enumerate(LONGEST_FIRST):
            if item.nodeid.startswith(prefix):
                return i
        return len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(scope="session")
def s3_servers() -> Iterator[dict[str, Any]]:
    """The S3 servers this session uses, by kind, each from its first use; those this
    process started are stopped at the end (an xdist session's shared ones, by their
    watcher). A cache rather than a parametrised session fixture, which pytest
    stops and starts again each time the tests it runs switch from one kind to the other."""
    servers: dict[str, Any] = {}
    yield servers
    for server in servers.values():
        server.stop(keep_data=False)  # the session's end: no test reads it again


@pytest.fixture(params=["seaweedfs", "moto"])
def s3_server(
    request: pytest.FixtureRequest,
    s3_servers: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    """A real S3-compatible server on loopback (each kind in turn), shared by the session:
    each test takes a prefix of its own (``s3_server.url()``)."""
    from tests import s3_servers as servers

    kind: str = request.param
    if kind not in s3_servers:
        why = servers.available(kind)
        if why is not None:
            pytest.skip(f"{kind} cannot be had: {why}")
        if "PYTEST_XDIST_WORKER" in os.environ:
            # One server of each kind for all the workers, started by the first to ask and
            # stopped when the pytest process that started the workers (this one's parent)
            # ends: a pair per worker cost each of them ~0.7 s of CPU and ~2 s to be ready.
            session = tmp_path_factory.getbasetemp().parent
            s3_servers[kind] = servers.shared(kind, session, os.getppid())
        else:
            s3_servers[kind] = servers.start(kind, tmp_path_factory.mktemp(kind))
    return s3_servers[kind]


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


class _SessionPool:
    """The session's pool of emulator render workers, spawned when first asked for (a
    worker that runs only unit tests spawns none); it may be asked for from any thread."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __call__(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                from runner.emulator.pool import render_pool as make_render_pool

                self._pool = make_render_pool(2)
            return self._pool

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def _session_pool() -> Iterator[_SessionPool]:
    pools = _SessionPool()
    yield pools
    pools.shutdown()


@pytest.fixture(scope="session")
def render_pool(_session_pool: _SessionPool) -> ProcessPoolExecutor:
    """One pool of emulator render workers for the whole session (spawning them is the
    slowest part of starting an emulator); they exit with their parent, however it ends."""
    return _session_pool()


@pytest.fixture(autouse=True)
def _emulators_borrow_the_sessions_pool(request: pytest.FixtureRequest) -> Iterator[None]:
    """An emulator a test starts in this process without a pool (``run --backend local``
    run in process) renders on the session's pool instead of spawning two interpreters of
    its own, which cost about 0.5 s of CPU each time. An ``alone`` test (the slow-callback
    check) keeps the whole path of a real run, the spawn of its workers included."""
    if request.node.get_closest_marker("alone") is not None:
        yield
        return
    from runner.emulator import pool

    pool.lend(request.getfixturevalue("_session_pool"))  # spawned if an emulator asks
    try:
        yield
    finally:
        pool.lend(None)


@pytest.fixture
def start_emulator(render_pool: ProcessPoolExecutor) -> Iterator[Callable[..., Any]]:
    """``start(**config)``: a running emulator on loopback, stopped after the test."""
    from runner.emulator import EmulatorConfig, EmulatorServer
    from tests.run_helpers import DRAWN_SMALL

    servers: list[EmulatorServer] = []

    def start(**options: Any) -> EmulatorServer:
        options.setdefault("latency", 0.0)
        options.setdefault("render_scale", DRAWN_SMALL)  # why: tests/run_helpers.py
        server = EmulatorServer(EmulatorConfig(**options), executor=render_pool).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
