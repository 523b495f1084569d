"""The executor: runs a compiled pipeline's steps over their graph. It never prints.

Cache hits are found first, without any network. The rest run as soon as their inputs are
ready: generation steps through fal (at most ``jobs`` at once), media steps in threads. A
failed step fails its descendants only; everything else keeps going. A signal stops the run
cleanly (runner.run.interrupt). An approval gate holds its dependents: they are ``waiting``,
no failure (runner.run.holding).

A full disk stops the run before it pays for more: nothing further is submitted or made,
jobs already at fal are still collected if there is room, else left journaled for the next
run. Reporters (the run log on that disk) can never stop a run: one that fails goes quiet,
and the summary says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.compile.sources import Remote
from runner.compile.steps import Step
from runner.errors import DiskFull, RunStopping, ShotgraphError, StepFailed, disk_full
from runner.run.budget import Budget, estimate
from runner.run.cached import find_cached
from runner.run.delivery import deliver, load_generation, unwritable
from runner.run.events import (
    Event,
    Fanout,
    NodeCached,
    NodeDone,
    NodeFailed,
    NodeSkipped,
    NodeStarted,
    NodeWaiting,
    Notice,
    OutputWritten,
    Reporter,
    RunStarted,
)
from runner.run.heartbeat import keep_beating
from runner.run.holding import Hold, Waiting, likely_waiting, never_hold, sort_before_run
from runner.run.interrupt import Interruption
from runner.run.outcome import RunOptions, RunResult, as_failure, finished
from runner.run.report_thread import ReportThread
from runner.store import Owner, RemoteError, ResultRecord, Store, TieredStore

if TYPE_CHECKING:
    from runner.run.generation import Generated, GenerationContext
    from runner.run.queue_client import QueueClient


class Executor:
    """Runs steps against one store (the local one, or a shared one and its near cache)
    and one backend client."""

    def __init__(
        self,
        steps: Mapping[str, Step],
        store: Store | TieredStore,
        connect: Callable[[], AbstractAsyncContextManager[QueueClient]],
        reporter: Reporter,
        options: RunOptions,
        *,
        outputs: Mapping[str, Path] | None = None,
        describe_issue: Callable[[Step, Any], str] | None = None,
        pipeline_name: str = "",
        owner: Owner | None = None,
        hold: Hold | None = None,
    ) -> None:
        self.steps = steps
        self.store = store if isinstance(store, TieredStore) else TieredStore(store)
        # Behind a Fanout (one that fails is dropped, never the run), on a thread of their own.
        self.reporter = reporter if isinstance(reporter, Fanout) else Fanout(reporter)
        self._reports = ReportThread(self.reporter)
        self.store.warn = lambda message: self.emit(Notice(message=message))
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
        # Who holds this run's journal entries: this process, unless a test plays another.
        self._owner = owner or Owner.current(self.run_id)
        self._budget = Budget(options.budget)
        self._describe_issue = describe_issue or (lambda step, issue: str(issue))
        self._first_with_key: dict[str, str] = {}
        self.interruption = Interruption(self.result, self.emit)
        self._hold = hold or never_hold

    def emit(self, event: Event) -> None:
        self.interruption.observe(event)
        self._reports.handle(event)

    def interrupt(self, signum: int) -> None:
        """A signal (SIGINT, SIGTERM): stop cleanly (see :mod:`runner.run.interrupt`)."""
        self.interruption.stop(signum)

    async def run(self) -> RunResult:
        try:
            return await self._run()
        finally:
            await self._reports.close()  # every event handed over before the caller goes on

    async def _run(self) -> RunResult:
        started = time.monotonic()
        pending, unshared = await self._find_cached()
        # The sweep of staging and the journal's reserve: in a thread, as all of the store's work.
        full = await asyncio.to_thread(self._prepare_store, bool(pending))
        async with self._exits:
            if any(self.steps[name].endpoint is not None for name in pending):
                # Connect before anything starts: a missing key or an emulator that will not
                # start stops the run at once, with one message, not a failure per node.
                await self._context()
            # Priced as the plan prices it: one job per request, leaving out what an earlier
            # run submitted (re-attached, not paid again) and what likely waits at a gate.
            later = likely_waiting(self.steps, pending, self._hold)
            jobs = {self.steps[n].key: self.steps[n] for n in pending if n not in later}
            usd, paid = await estimate(self.store, jobs)
            self.emit(
                RunStarted(
                    pipeline=self.pipeline_name,
                    backend=self.options.backend,
                    nodes=len(self.steps),
                    to_render=len(pending) - len(later),
                    estimated_usd=round(usd, 6),
                    run_id=self.run_id,
                    to_attach=len(paid),
                )
            )
            if full is not None:
                self._stop(full)
            for name in self.steps:
                if name in self.result.cached:
                    self.emit(NodeCached(node=name))
                    await self._deliver(name, self.result.records[name])
                elif name in self.result.waiting:
                    self.emit(NodeWaiting(node=name, reason=self.result.waiting[name]))
            try:  # results only this machine has (from before the bucket, or while away)
                await self.store.publish(unshared)
            except RemoteError as lost:
                self._stop(lost)
            if pending and self.store.remote is not None:
                # The lease first: a claim must never be seen without a heartbeat behind it.
                await self.store.beat(self._owner)
                if await self.store.move_local_journal():
                    self.emit(Notice(message=f"handed this machine's journal to {self.store.url}"))
            beaten = bool(pending) and self.store.remote is not None
            heartbeat = asyncio.create_task(
                keep_beating(self.store, self._owner, self._stop, self.emit, beaten=beaten)
            )
            try:
                await self._run_pending(pending)
            finally:
                heartbeat.cancel()
                if pending or self.store.remote is None:
                    with contextlib.suppress(ShotgraphError):
                        await self.store.end_run(self._owner)
        self.emit(finished(self.result, time.monotonic() - started))
        await self._reports.close()
        self.result.notes.extend(self.reporter.notes)
        return self.result

    def _prepare_store(self, rendering: bool) -> DiskFull | None:
        """Clear what killed runs left in staging (every run: the one after a crash may
        have nothing left to render) and, before rendering, put back the space held in
        reserve for the journal (see :mod:`runner.store.reserve`). A disk without room for
        that reserve is too full to submit anything safely: the run stops before its
        first job."""
        local = self.store.local
        local.sweep_staging()
        if not rendering:
            return None
        return disk_full(local.reserve.keep(), local.reserve.path)

    def _stop(self, reason: ShotgraphError) -> None:
        """Submit and make nothing more (the disk is full); what is at fal is collected if
        there is room, else stays journaled for the next run."""
        if self.result.stopped is not None:
            return
        self.result.stopped = reason
        # Room for the journal writes of the jobs in flight (see runner.store.reserve).
        self.store.local.reserve.release()
        self.emit(Notice(message=f"stopping: {reason.message}; nothing more is submitted"))

    async def _run_pending(self, pending: list[str]) -> None:
        for name in pending:
            self._first_with_key.setdefault(self.steps[name].key, name)
        loop = asyncio.get_running_loop()
        for name in pending:
            self._done[name] = loop.create_future()
        tasks = [asyncio.create_task(self._node(name), name=f"node {name}") for name in pending]
        work = asyncio.gather(*tasks)
        self.interruption.watch(work)
        try:
            await work
        except asyncio.CancelledError:
            # A signal (or the caller cancelled us): stop waiting, let each step tidy its
            # journal entry, then report. This is the top of the run, so the cancellation
            # ends here with a result. gather has already cancelled every task; cancelling
            # again would cut short the tidying (cancelling queued jobs at fal) under way.
            self.result.interrupted = True
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.interruption.settle(pending, self.steps, self.store, self._owner)

    async def _context(self) -> GenerationContext:
        """The backend, connected on first need: a run with nothing to render (or only local
        media steps) never starts the emulator or touches the network."""
        if self._connected is not None:
            return self._connected  # every generation step asks: no thread hop once made
        # The network client (and the emulator) load only here, in a thread: a run with
        # nothing to render starts in a fraction of the time, and the loop never waits.
        await asyncio.to_thread(load_generation)
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
                    stopping=lambda: self.result.stopped,
                    stop=self._stop,
                )
            return self._connected

    async def _find_cached(self) -> tuple[list[str], list[ResultRecord]]:
        """Steps whose results a store has (their files here, fetched from the shared store
        when something needs them); the rest, in run order, but for those an approval gate
        already holds (see :meth:`_held`); and the results the shared store has yet to be
        given."""
        cached, unshared = await find_cached(
            self.steps, self.store, self.options.backend, set(self.outputs)
        )
        return sort_before_run(self.steps, cached, self._hold, self.result), unshared

    async def _node(self, name: str) -> None:
        step = self.steps[name]
        future = self._done[name]
        try:
            try:
                upstream = await self._inputs(step)
            except Waiting as waiting:
                self.result.waiting[name] = waiting.reason
                self.emit(NodeWaiting(node=name, reason=waiting.reason))
                future.set_result(None)
                return
            if upstream is None:
                self.result.skipped.add(name)
                self.emit(NodeSkipped(node=name, reason="an input node failed"))
                future.set_result(None)
                return
            began = time.monotonic()
            first = self._first_with_key[step.key]
            how = "made"
            if first != name:
                # The very same request as another node: one job, shared, never two.
                record = await asyncio.shield(self._done[first])
                if record is None:
                    raise StepFailed(f"the same request as '{first}', which failed")
                how = "shared"
            elif step.endpoint is None:
                record = await self._produce_media(step, upstream)
            else:
                generated = await self._generate(step, upstream)
                record, how = generated.record, generated.how
        except RunStopping as stopping:
            self.result.skipped.add(name)
            self.emit(NodeSkipped(node=name, reason=stopping.message))
            future.set_result(None)
            return
        except (ShotgraphError, OSError) as problem:
            full = disk_full(problem, self.store.local.root)
            if full is not None:
                self._stop(full)
            if isinstance(problem, RemoteError):
                self._stop(problem)  # no claim can be made, nor a result shared
            failure = as_failure(full or problem)
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
        cost = self.result.book(name, how, record)
        self.emit(
            NodeDone(
                node=name,
                sha256=record.output.sha256,
                size=record.output.size,
                cost_usd=cost,
                seconds=round(time.monotonic() - began, 3),
            )
        )
        await self._deliver(name, record)
        future.set_result(record)

    async def _inputs(self, step: Step) -> dict[str, ResultRecord] | None:
        found: dict[str, ResultRecord] = {}
        for dep in step.deps:
            if dep in self.result.records and dep not in self._done:
                found[dep] = self.result.records[dep]
                continue
            record = await asyncio.shield(self._done[dep])
            if record is None:
                if dep in self.result.waiting:
                    raise Waiting(self.result.waiting[dep])
                return None
            reason = self._hold(dep, record.output.sha256)
            if reason is not None:
                raise Waiting(reason)
            found[dep] = record
        return found

    async def _produce_media(
        self, step: Step, upstream: Mapping[str, ResultRecord]
    ) -> ResultRecord:
        from runner.run.media_steps import run_media_step

        if self.result.stopped is not None:
            raise RunStopping(f"not made: the run is stopping ({self.result.stopped.message})")
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

    async def _generate(self, step: Step, upstream: Mapping[str, ResultRecord]) -> Generated:
        from runner.run.generation import generate
        from runner.run.job_wait import FalSlot

        slot = FalSlot(self._fal_slots)
        try:
            return await generate(step, upstream, await self._context(), slot=slot)
        finally:
            slot.free()

    async def _deliver(self, name: str, record: ResultRecord) -> None:
        path = self.outputs.get(name)
        if path is None:
            return
        try:
            if await self.store.fetch_files([record]):
                raise StepFailed(f"the output of '{name}' cannot be had from the store")
            # A hash of what is there and a copy of a whole video: in a thread.
            if await asyncio.to_thread(deliver, self.store.local, record.output.sha256, path):
                self.emit(OutputWritten(node=name, path=str(path)))
            return
        except StepFailed as failed:
            failure = failed
        except OSError as exc:
            full = disk_full(exc, path)
            if full is not None:
                self._stop(full)
            failure = as_failure(full) if full else unwritable(path, exc)
        self.result.failed[name] = failure
        self.emit(NodeFailed(node=name, error=failure.message, hint=failure.hint))
