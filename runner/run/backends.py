"""Backends: where generation requests go. Both are the same fal client.

- ``fal``: fal.ai, with the key from ``FAL_KEY``.
- ``local``: the bundled emulator, started here on a free loopback port, keeping its jobs and
  files under the store (``<store>/emulator``). Because its state outlives the process, a run
  killed with ``kill -9`` and started again finds its jobs still there, as it would on fal.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.fal import FalClient

BACKENDS = ("fal", "local")


@dataclass(frozen=True)
class LocalOptions:
    """How the emulator behind ``--backend local`` behaves."""

    latency: float = 0.0
    concurrency: int = 4
    url: str | None = None  # an emulator already running elsewhere (e.g. `emulator serve`)


@asynccontextmanager
async def open_backend(
    name: str,
    store_root: Path,
    *,
    local: LocalOptions | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[FalClient]:
    """A connected client for ``name`` ("fal" or "local"), closed (and the emulator stopped)
    on exit."""
    from runner.fal import FalClient

    env = os.environ if env is None else env
    if name == "fal":
        async with FalClient.from_env(env, require_key=True) as client:
            yield client
        return
    options = local or LocalOptions()
    if options.url is not None:
        async with _local_client(options.url) as client:
            yield client
        return
    from runner.emulator import EmulatorConfig, EmulatorServer

    with _emulator_state(store_root) as state_dir:
        config = EmulatorConfig(
            latency=options.latency,
            concurrency=options.concurrency,
            state_dir=state_dir,
            require_auth=False,
            result_ttl=None,
        )
        server = EmulatorServer(config).start()
        try:
            async with _local_client(server.url) as client:
                yield client
        finally:
            server.stop()


@contextmanager
def _emulator_state(store_root: Path) -> Iterator[Path]:
    """The emulator's state directory: ``<store>/emulator``, held with a lock for as long as
    this run's emulator serves it (the lock dies with the process, however it ends). A second
    run sharing the store at that moment gets a private one instead: two emulators must not
    run the same jobs. (That run's jobs are not re-attachable after a crash of its own.)"""
    shared = store_root / "emulator"
    shared.mkdir(parents=True, exist_ok=True)
    fd = os.open(shared / "in-use.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        private = Path(tempfile.mkdtemp(prefix="emulator-", dir=store_root / "tmp"))
        try:
            yield private
        finally:
            shutil.rmtree(private, ignore_errors=True)
        return
    try:
        yield shared
    finally:
        os.close(fd)  # releases the lock


# What the local backend sends for a key: the emulator (as fal) wants one of the form
# id:secret. FAL_KEY itself never travels to an emulator.
EMULATOR_KEY = "local:emulator"


def _local_client(url: str) -> FalClient:
    from runner.fal import Credentials, FalClient, FalConfig, Secret

    credentials = Credentials(Secret(EMULATOR_KEY), source="the local backend")
    return FalClient(FalConfig(queue_url=url, rest_url=url), credentials=credentials)
