"""Shared fixtures. Every test runs with a private HOME and store, never the user's."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest


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
    yield


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


@pytest.fixture(scope="session", params=["seaweedfs", "moto"])
def s3_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A real S3-compatible server on loopback (each kind in turn), shared by the session:
    each test takes a prefix of its own (``s3_server.url()``)."""
    from tests import s3_servers

    why = s3_servers.available(request.param)
    if why is not None:
        pytest.skip(f"{request.param} cannot be had: {why}")
    server = s3_servers.start(request.param, tmp_path_factory.mktemp(request.param))
    yield server
    server.stop()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def render_pool() -> Iterator[ProcessPoolExecutor]:
    """One pool of emulator render workers for the whole session (spawning them is the
    slowest part of starting an emulator); they exit with their parent, however it ends."""
    from runner.emulator.pool import render_pool as make_render_pool

    pool = make_render_pool(2)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def start_emulator(render_pool: ProcessPoolExecutor) -> Iterator[Callable[..., Any]]:
    """``start(**config)``: a running emulator on loopback, stopped after the test."""
    from runner.emulator import EmulatorConfig, EmulatorServer

    servers: list[EmulatorServer] = []

    def start(**options: Any) -> EmulatorServer:
        options.setdefault("latency", 0.0)
        server = EmulatorServer(EmulatorConfig(**options), executor=render_pool).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
