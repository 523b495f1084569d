"""Backends: where generation requests go. Both are the same fal client.

- ``fal``: fal.ai, with the key from ``FAL_KEY``.
- ``local``: the bundled emulator, started here on a free loopback port, keeping its jobs and
  files under the store (``<store>/emulator``). Because its state outlives the process, a run
  killed with ``kill -9`` and started again finds its jobs still there, as it would on fal.

This module is the only one that knows where that state lives and when it may be cleared.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

# The backends' names live with the cache keys (which hold them); named again for importers.
from runner.compile.keys import BACKENDS as BACKENDS
from runner.compile.keys import FAL as FAL
from runner.compile.keys import LOCAL as LOCAL

if TYPE_CHECKING:
    from runner.emulator import EmulatorServer
    from runner.fal import FalClient
    from runner.run.queue_client import QueueClient
    from runner.store import Store

# The local backend's state under the store, and the lock its emulator holds while it serves.
LOCAL_STATE = "emulator"
_IN_USE = "in-use.lock"


@dataclass(frozen=True)
class LocalOptions:
    """How the emulator behind ``--backend local`` behaves."""

    latency: float = 0.0
    concurrency: int = 4
    url: str | None = None  # an emulator already running elsewhere (e.g. `emulator serve`)
    # A test aid (EmulatorConfig.render_scale): animatics drawn at this share of their size.
    render_scale: float = 1.0


@asynccontextmanager
async def open_backend(
    name: str,
    store_root: Path,
    *,
    local: LocalOptions | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[QueueClient]:
    """A connected client for ``name`` ("fal" or "local"), closed (and the emulator stopped)
    on exit. What blocks (building the HTTP client loads TLS certificates; the emulator's
    state is locked, its server started and joined) runs in threads, off the event loop."""
    from runner.fal import FalClient

    env = os.environ if env is None else env
    if name == FAL:
        fal = await asyncio.to_thread(FalClient.from_env, env, require_key=True)
        async with fal as client:
            yield client
        return
    options = local or LocalOptions()
    if options.url is not None:
        async with await asyncio.to_thread(_local_client, options.url, env) as client:
            yield client
        return
    async with _emulator_state(store_root) as state_dir:
        server = await asyncio.to_thread(_emulator, options, state_dir)
        await server.start_async()
        try:
            async with await asyncio.to_thread(_local_client, server.url, env) as client:
                yield client
        finally:
            await server.stop_async()


def _emulator(options: LocalOptions, state_dir: Path) -> EmulatorServer:
    from runner.emulator import EmulatorConfig, EmulatorServer

    config = EmulatorConfig(
        latency=options.latency,
        concurrency=options.concurrency,
        state_dir=state_dir,
        require_auth=False,
        result_ttl=None,
        render_scale=options.render_scale,
    )
    return EmulatorServer(config)


@asynccontextmanager
async def _emulator_state(store_root: Path) -> AsyncIterator[Path]:
    """The emulator's state directory: ``<store>/emulator``, held with a lock for as long as
    this run's emulator serves it (the lock dies with the process, however it ends). A second
    run sharing the store at that moment gets a private one instead: two emulators must not
    run the same jobs. (That run's jobs are not re-attachable after a crash of its own.)"""
    held = await asyncio.to_thread(_hold_state, store_root)
    try:
        yield held.path
    finally:
        await asyncio.to_thread(held.release)


@dataclass(frozen=True)
class _State:
    path: Path
    fd: int | None  # the shared directory's lock; None for a private directory

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def _hold_state(store_root: Path) -> _State:
    shared = store_root / LOCAL_STATE
    shared.mkdir(parents=True, exist_ok=True)
    fd = os.open(shared / _IN_USE, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return _State(Path(tempfile.mkdtemp(prefix="emulator-", dir=store_root / "tmp")), None)
    return _State(shared, fd)


def local_state_bytes(store_root: Path) -> int:
    """What the local backend's jobs and files take under the store."""
    from runner.store import tree_size

    return tree_size(store_root / LOCAL_STATE)


def clear_local_state(store: Store, *, dry_run: bool = False) -> int:
    """Remove the local backend's jobs and files (and the uploads that pointed at them) once
    nothing in the journal may need them and no run is using them (its emulator holds the
    state directory's lock); the bytes freed."""
    from runner.store import tree_size

    state = store.root / LOCAL_STATE
    if not state.is_dir():
        return 0
    lock = state / _IN_USE
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # a local run is going on
        freed = tree_size(state)
        if not dry_run:
            for child in state.iterdir():
                if child.name == lock.name:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
    finally:
        os.close(fd)
    if freed and not dry_run:
        # Uploads to the local backend lived in the emulator's files: gone with them.
        store.forget_uploads(LOCAL)
    return freed


# What the local backend sends for a key: the emulator (as fal) wants one of the form
# id:secret. FAL_KEY itself never travels to an emulator.
EMULATOR_KEY = "local:emulator"


# The header the emulator reads a job's node name from (runner.emulator.protocol spells it
# too: importing the emulator here would load its server for every local run).
NODE_HEADER = "x-shotgraph-node"


def _local_client(url: str, env: Mapping[str, str]) -> FalClient:
    from runner.fal import Credentials, FalClient, FalConfig, Secret
    from runner.fal.config import LISTING_VARIABLES

    credentials = Credentials(Secret(EMULATOR_KEY), source="the local backend")
    # The emulator serves the queue, storage and platform API on one origin, and writes
    # each job's node name on its animatic (fal's backend never sends it); only the
    # listing's settle time and poll interval are taken from the environment.
    config = FalConfig(queue_url=url, rest_url=url, api_url=f"{url}/v1", node_header=NODE_HEADER)
    listing = FalConfig.from_env({name: env.get(name, "") for name in LISTING_VARIABLES})
    config = replace(
        config, listing_settle=listing.listing_settle, listing_poll=listing.listing_poll
    )
    return FalClient(config, credentials=credentials)
