"""What a run need not render: the steps whose results a store already has.

With a local store only, one query for every step, no network. With a shared store, the steps
this machine does not know are looked up in the bucket all at once, and of the results
found there only the files something needs are fetched (verified by hash): the outputs to
deliver, and the inputs of the steps that will run. A file that cannot be had (gone, or
damaged) makes its step run again, which may make more files needed: so, until none fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from runner.compile.steps import Step
from runner.store import ResultRecord, TieredStore


async def find_cached(
    steps: Mapping[str, Step], store: TieredStore, backend: str, outputs: set[str]
) -> tuple[dict[str, ResultRecord], list[ResultRecord]]:
    """The cached steps' records by node name, and the results found only on this machine
    that the shared store should be given (empty without one)."""
    if store.remote is None:
        # Every node's result in one query (their files present too), in a thread.
        return await asyncio.to_thread(_local_hits, steps, store, backend), []
    found, unshared = await store.find_results((step.key for step in steps.values()), backend)
    while True:
        cached = _by_name(steps, found)
        inputs: set[str] = set()
        for name, step in steps.items():
            if name not in cached:
                inputs.update(step.deps)
        needed = [record for name, record in cached.items() if name in outputs or name in inputs]
        lost = await store.fetch_files(needed)
        if not lost:
            return cached, unshared
        for key in lost:
            found.pop(key, None)


def _local_hits(
    steps: Mapping[str, Step], store: TieredStore, backend: str
) -> dict[str, ResultRecord]:
    return _by_name(steps, store.local.results_for((step.key for step in steps.values()), backend))


def _by_name(
    steps: Mapping[str, Step], found: Mapping[str, ResultRecord]
) -> dict[str, ResultRecord]:
    """The records of ``found`` (by cache key) under the names of the steps they serve."""
    return {name: found[step.key] for name, step in steps.items() if step.key in found}
