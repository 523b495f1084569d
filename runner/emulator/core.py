"""The emulator's state: its stores, queue, model and fault plan, shared by every route."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from starlette.responses import Response

from runner.emulator import pool, protocol
from runner.emulator.config import EmulatorConfig
from runner.emulator.faults import FaultPlan
from runner.emulator.files import FileStore
from runner.emulator.inputs import InputResolver
from runner.emulator.jobs import Job, JobStore
from runner.emulator.model import Model, validate
from runner.emulator.scheduler import Scheduler

_TEMP_PREFIX = "shotgraph-emulator-"


def _temporary_root() -> Path:
    """A fresh temporary state dir. Those of emulators that died without cleaning up (a
    killed process cannot) are removed first, so they do not pile up."""
    for stale in Path(tempfile.gettempdir()).glob(_TEMP_PREFIX + "*"):
        try:
            owner = int((stale / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner):
            shutil.rmtree(stale, ignore_errors=True)
    root = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX))
    (root / "owner.pid").write_text(str(os.getpid()))
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Emulator:
    """Everything one running emulator holds. Built before the event loop starts;
    :meth:`start` and :meth:`close` run on it."""

    def __init__(self, config: EmulatorConfig, executor: Executor | None = None) -> None:
        self.config = config
        self._root: Path | None = None
        self._files: FileStore | None = None
        self.faults: FaultPlan = config.faults
        self.requests: Counter[str] = Counter()
        self.faults_fired: Counter[str] = Counter()
        self.closing = asyncio.Event()
        # What lifetimes (of files, of results) are counted on; tests move it on by hand.
        self.clock: Callable[[], float] = time.time
        self._own_executor = executor is None
        self._executor = executor
        self.scheduler: Scheduler | None = None

    @property
    def queue(self) -> Scheduler:
        if self.scheduler is None:
            raise RuntimeError("the emulator is not started")
        return self.scheduler

    @property
    def files(self) -> FileStore:
        if self._files is None:
            raise RuntimeError("the emulator is not started")
        return self._files

    async def start(self) -> None:
        """Open the stores, start the render pool and finish jobs left unfinished."""
        # Files, the job journal and the pool's processes: in a thread, off the loop.
        model, store, jobs = await asyncio.to_thread(self._open)
        self.scheduler = Scheduler(
            store,
            model.run,
            concurrency=self.config.concurrency,
            latency=self.config.latency,
            validate=validate,
        )
        self.scheduler.restore(jobs)

    def _open(self) -> tuple[Model, JobStore, list[Job]]:
        state_dir = self.config.state_dir
        root = _temporary_root() if state_dir is None else state_dir
        root.mkdir(parents=True, exist_ok=True)
        self._root = root
        self._files = FileStore(root, self.config.file_ttl, lambda: self.clock())
        if self._executor is None:
            self._executor = pool.lent()
            self._own_executor = self._executor is None
        if self._executor is None:
            self._executor = pool.render_pool(self.config.render_workers)  # each one warmed up
        inputs = InputResolver(self.files, self.config.fetch_timeout, {self.config.host})
        model = Model(
            self.files,
            inputs,
            self._executor,
            root / "scratch",
            self.config.render_scale,
            no_render=self.config.no_render,
        )
        store = JobStore(root)
        return model, store, list(store.load())

    async def close(self) -> None:
        """End status streams, stop jobs where they are (journaled) and the pool we own."""
        self.closing.set()
        if self.scheduler is not None:
            self.scheduler.changed.notify()
            await self.scheduler.close()
        # Waiting for the pool's processes and removing files: in a thread, off the loop.
        await asyncio.to_thread(self._release)

    def _release(self) -> None:
        if self._own_executor and self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        if self.config.state_dir is None and self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    async def intercept(
        self, route: str, endpoint: str | None = None, prompt: str | None = None
    ) -> Response | None:
        """The response a route fault imposes on this request, if one fires."""
        self.requests[route] += 1
        rule = self.faults.take_route_fault(route, endpoint, prompt)
        if rule is None:
            return None
        self.faults_fired[rule.kind] += 1
        if rule.kind == "delay":
            await asyncio.sleep(rule.seconds)
            return None
        if rule.kind == "rate_limit":
            return protocol.rate_limited(rule.retry_after)
        if rule.kind == "ingress":
            return protocol.ingress(rule.status or 503)
        if rule.kind == "locked":
            return protocol.locked()
        return protocol.DropConnection()

    def result_expired(self, job: Job) -> bool:
        if job.fault_kind == "expire":
            return True
        ttl = self.config.result_ttl
        return (
            ttl is not None
            and job.completed_at is not None
            and self.clock() > job.completed_at + ttl
        )

    def stats(self) -> dict[str, Any]:
        return {
            **self.queue.stats(),
            "requests": dict(self.requests),
            "faults_fired": dict(self.faults_fired),
        }
