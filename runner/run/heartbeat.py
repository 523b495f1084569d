"""A run's heartbeat: how runs sharing a store (on other hosts too) know it is still going."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from runner.errors import DiskFull, ShotgraphError
from runner.run.events import Event, Notice
from runner.store import HEARTBEAT_INTERVAL, Owner, RemoteError, TieredStore


async def keep_beating(
    store: TieredStore,
    owner: Owner,
    stop: Callable[[ShotgraphError], None],
    emit: Callable[[Event], None],
    *,
    beaten: bool = False,
) -> None:
    """Renew ``owner``'s heartbeat (its lease, in a shared store) until cancelled; the
    first beat is skipped when it was just ``beaten``. A run that cannot (a full disk, a
    store out of reach) is stopped from submitting: another host could soon judge it dead
    and take its jobs over."""
    told = False
    interval = store.beat_interval or HEARTBEAT_INTERVAL
    while True:
        if beaten:
            beaten = False
        else:
            try:
                await store.beat(owner)
            except (DiskFull, RemoteError) as lost:
                stop(lost)
            except ShotgraphError as problem:
                if not told:
                    emit(Notice(message=f"the run's heartbeat failed: {problem.message}"))
                    told = True
        await asyncio.sleep(interval)
