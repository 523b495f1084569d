"""Backends: where generation requests go. Both are the same fal client.

- ``fal``: fal.ai, with the key from ``FAL_KEY``.
- ``local``: the bundled emulator, started here on a free loopback port, keeping its jobs and
  files under the store (``<store>/emulator``). Because its state outlives the process, a run
  killed with ``kill -9`` and started again finds its jobs still there, as it would on fal.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
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

    config = EmulatorConfig(
        latency=options.latency,
        concurrency=options.concurrency,
        state_dir=store_root / "emulator",
        require_auth=False,
        result_ttl=None,
    )
    server = EmulatorServer(config).start()
    try:
        async with _local_client(server.url) as client:
            yield client
    finally:
        server.stop()


def _local_client(url: str) -> FalClient:
    from runner.fal import FalClient, FalConfig

    # No key: the emulator lets keyless clients in, and FAL_KEY must never travel to it.
    return FalClient(FalConfig(queue_url=url, rest_url=url), credentials=None)
