"""Shared fixtures. Every test runs with a private HOME and store, never the user's."""

from __future__ import annotations

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
    # A run that finds an uncertain submit looks for its job in the emulator's request
    # listing this long (seconds) before it sends the body again (fal: 10 minutes).
    monkeypatch.setenv("SHOTGRAPH_FAL_LISTING_SETTLE", "4")
    yield


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
