"""The executor: runs a compiled pipeline's steps over their graph. It never prints.

Cache hits are found first, without any network. The rest run as soon as their inputs are
ready: generation steps through fal (at most ``jobs`` at once), media steps in threads. A
failed step fails its descendants only; everything else keeps going. Ctrl-C cancels the
waiting, cancels jobs still queued at fal (they cost nothing yet) and leaves running ones
journaled for the next run to collect.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.compile.sources import Remote
from runner.compile.steps import Step
from runner.errors import ShotgraphError, StepFailed
from runner.run.budget import Budget
from runner.run.delivery import deliver
from runner.run.events import (
    Event,
    NodeCached,
    NodeDone,
    NodeFailed,
    NodeSkipped,
    NodeStarted,
    OutputWritten,
    Reporter,
    RunFinished,
    RunStarted,
)
from runner.store import HEARTBEAT_INTERVAL, Owner, ResultRecord, Store

if TYPE_CHECKING:
    from runner.fal import FalClient
    from runner.run.generation import GenerationContext


@dataclass(frozen=True)
class RunOptions:
    """How a run behaves."""

    backend: str = "fal"
    jobs: int = 4
    budget: float | None = None
    media_workers: int = max(1, min(4, os.cpu_count() or 1))


@dataclass
class RunResult:
    """What happened to every node."""

    records: dict[str, ResultRecord] = field(default_factory=dict)
    rendered: set[str] = field(default_factory=set)
    cached: set[str] = field(default_factory=set)
    failed: dict[str, StepFailed] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    spent_usd: float = 0.0
    interrupted: bool = False
    in_flight: list[str] = field(default_factory=list)  # jobs left running at an interrupt

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.interrupted

    def __repr__(self) -> str:
        # Counts, not thousands of records: asyncio formats the main task's result on exit.
        return (
            f"RunResult(rendered={len(self.rendered)}, cached={len(self.cached)}, "
            f"failed={len(self.failed)}, skipped={len(self.skipped)}, "
            f"spent_usd={self.spent_usd}, interrupted={self.interrupted})"
        )


class Executor:
    """Runs steps against one store and one backend client."""

    def __init__(
        self,
        steps: Mapping[str, Step],
        store: Store,
        connect: Callable[[], AbstractAsyncContextManager[FalClient]],
        reporter: Reporter,
        options: RunOptions,
        *,
        outputs: Mapping[str, Path] | None = None,
        describe_issue: Callable[[Step, Any], str] | None = None,
        pipeline_name: str = "",
    ) -> None:
        self.steps = steps
        self.store = store
        self.reporter = reporter
        self.options = options
        self.outputs = outputs or {}
        self.pipeline_name = pipeline_name
        self.run_id = uuid.uuid4().hex[:12]
        self.result = RunResult()
        self._fal_slots = asyncio.Semaphore(max(1, options.jobs))
        self._media_slots = asyncio.Semaphore(max(1, options.media_workers))
        self._done: dict[str, asyncio.Future[ResultRecord | None]] = {}
        self._connect = connect
        self._connected: GenerationContext | None = None
        self._connecting = asyncio.Lock()
        self._exits = AsyncExitStack()
        self._owner = Owner.current(self.run_id)
        self._budget = Budget(options.budget)
        self._describe_issue = describe_issue or (lambda step, issue: str(issue))
        self._first_with_key: dict[str, str] = {}

    def emit(self, event: Event) -> None:
        self.reporter.handle(event)

    async def run(self) -> RunResult:
        started = time.monotonic()
        pending = self._find_cached()
        async with self._exits:
            if any(self.steps[name].endpoint is not None for name in pending):
                # Connect before anything starts: a missing key or an emulator that will not
                # start stops the run at once, with one message, not a failure per node.
                await self._context()
            # a request two nodes share is one job: priced once
            jobs = {self.steps[n].key: self.steps[n] for n in pending}
            estimate = sum(step.usd for step in jobs.values())
            self.emit(
                RunStarted(
                    pipeline=self.pipeline_name,
                    backend=self.options.backend,
                    nodes=len(self.steps),
                    to_render=len(pending),
                    estimated_usd=round(estimate, 6),
                    run_id=self.run_id,
                )
            )
            for name in self.steps:
                if name in self.result.cached:
                    self.emit(NodeCached(node=name))
                    self._deliver(name, self.result.records[name])
            heartbeat = asyncio.create_task(self._heartbeat())
            try:
                await self._run_pending(pending)
            finally:
                heartbeat.cancel()
                self.store.end_run(self._owner)
        self.emit(self._finished(time.monotonic() - started))
        return self.result

    async def _run_pending(self, pending: list[str]) -> None:
        for name in pending:
            self._first_with_key.setdefault(self.steps[name].key, name)
        loop = asyncio.get_running_loop()
        for name in pending:
            self._done[name] = loop.create_future()
        tasks = [asyncio.create_task(self._node(name), name=f"node {name}") for name in pending]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            # Ctrl-C: stop waiting, let each step tidy its journal entry, then report. This
            # is the top of the run, so the cancellation ends here with a result.
            # gather has already cancelled every task; cancelling again would cut short the
            # tidying (cancelling queued jobs at fal) that each task is doing now.
            self.result.interrupted = True
            await asyncio.gather(*tasks, return_exceptions=True)
            self.result.in_flight = [
                name for name in pending if self._still_at_fal(self.steps[name])
            ]

    def _still_at_fal(self, step: Step) -> bool:
        entry = self.store.journal(step.key)
        return entry is not None and entry.state == "submitted" and entry.owner == self._owner

    async def _heartbeat(self) -> None:
        """Tell runs sharing the store (on other hosts too) that this one is still going."""
        while True:
            self.store.beat(self._owner)
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def _context(self) -> GenerationContext:
        """The backend, connected on first need: a run with nothing to render (or only local
        media steps) never starts the emulator or touches the network."""
        # The network client (and, for the local backend, the emulator) load only here: a run
        # with nothing to render starts in a fraction of the time.
        from runner.run.generation import GenerationContext
        from runner.run.uploads import Materializer

        async with self._connecting:
            if self._connected is None:
                client = await self._exits.enter_async_context(self._connect())
                self._connected = GenerationContext(
                    store=self.store,
                    client=client,
                    materializer=Materializer(self.store, client, self.options.backend),
                    owner=self._owner,
                    backend=self.options.backend,
                    budget=self._budget,
                    emit=self.emit,
                    describe_issue=self._describe_issue,
                )
            return self._connected

    def _find_cached(self) -> list[str]:
        """Steps whose results are in the store (the file present); the rest, in run order."""
        pending: list[str] = []
        for name, step in self.steps.items():
            record = self.store.result_for(step.key, self.options.backend)  # file present too
            if record is not None:
                self.result.records[name] = record
                self.result.cached.add(name)
            else:
                pending.append(name)
        return pending

    async def _node(self, name: str) -> None:
        step = self.steps[name]
        future = self._done[name]
        try:
            upstream = await self._inputs(step)
            if upstream is None:
                self.result.skipped.add(name)
                self.emit(NodeSkipped(node=name, reason="an input node failed"))
                future.set_result(None)
                return
            began = time.monotonic()
            first = self._first_with_key[step.key]
            if first != name:
                # The very same request as another node: one job, shared, never two.
                record = await asyncio.shield(self._done[first])
                if record is None:
                    raise StepFailed(f"the same request as '{first}', which failed")
            else:
                record = await self._produce(step, upstream)
        except (ShotgraphError, OSError) as problem:
            failure = _as_failure(problem)
            self.result.failed[name] = failure
            self.emit(NodeFailed(node=name, error=failure.message, hint=failure.hint))
            future.set_result(None)
            return
        except asyncio.CancelledError:
            self.result.skipped.add(name)
            if not future.done():
                future.cancel()
            raise
        self.result.records[name] = record
        self.result.rendered.add(name)
        # Counted once per job (a node sharing another's job cost nothing), re-attached ones
        # too: the run that submitted them never got to report them (it was killed).
        paid = step.endpoint is not None and self._first_with_key[step.key] == name
        cost = record.cost_usd if paid else 0.0
        self.result.spent_usd += cost or 0.0
        self.emit(
            NodeDone(
                node=name,
                sha256=record.output.sha256,
                size=record.output.size,
                cost_usd=cost,
                seconds=round(time.monotonic() - began, 3),
            )
        )
        self._deliver(name, record)
        future.set_result(record)

    async def _inputs(self, step: Step) -> dict[str, ResultRecord] | None:
        found: dict[str, ResultRecord] = {}
        for dep in step.deps:
            if dep in self.result.records and dep not in self._done:
                found[dep] = self.result.records[dep]
                continue
            record = await asyncio.shield(self._done[dep])
            if record is None:
                return None
            found[dep] = record
        return found

    async def _produce(self, step: Step, upstream: Mapping[str, ResultRecord]) -> ResultRecord:
        from runner.run.generation import generate
        from runner.run.media_steps import run_media_step

        if step.endpoint is None:
            what = (
                f"stitching {len(step.slots)} clips"
                if step.kind == "stitch"
                else f"taking frame {step.at}"
            )
            self.emit(NodeStarted(node=step.name, what=what))
            remote = any(isinstance(slot.source, Remote) for slot in step.slots)
            client = (await self._context()).client if remote else None
            return await run_media_step(
                step, upstream, self.store, client, self.options.backend, self._media_slots
            )
        async with self._fal_slots:
            return await generate(step, upstream, await self._context())

    def _deliver(self, name: str, record: ResultRecord) -> None:
        path = self.outputs.get(name)
        if path is None:
            return
        try:
            if deliver(self.store, record.output.sha256, path):
                self.emit(OutputWritten(node=name, path=str(path)))
        except OSError as exc:
            failure = StepFailed(
                f"could not write the output {path}: {exc.strerror or exc}",
                hint="check the directory exists and is writable",
            )
            self.result.failed[name] = failure
            self.emit(NodeFailed(node=name, error=failure.message, hint=failure.hint))

    def _finished(self, seconds: float) -> RunFinished:
        r = self.result
        return RunFinished(
            done=len(r.rendered),
            cached=len(r.cached),
            failed=len(r.failed),
            skipped=len(r.skipped),
            spent_usd=round(r.spent_usd, 6),
            seconds=round(seconds, 3),
            interrupted=r.interrupted,
            failures={n: f.message for n, f in r.failed.items()},
        )


def _as_failure(problem: ShotgraphError | OSError) -> StepFailed:
    """A node's failure from what stopped it; a disk that is full or not writable fails the
    node, not the run."""
    if isinstance(problem, StepFailed):
        return problem
    if isinstance(problem, ShotgraphError):
        return StepFailed(problem.message, problem.hint)
    where = f" ({problem.filename})" if problem.filename else ""
    return StepFailed(
        f"{problem.strerror or problem}{where}",
        hint="check the disk space and permissions of the store and outputs",
    )
