"""The emulated queue: FIFO positions, a concurrency limit, latency, and change broadcasts.

As on fal, only IN_PROGRESS jobs count against the limit; queued jobs wait and are never
rejected. Every state or position change wakes whoever watches (the SSE streams) at once,
through an event that is swapped on each change, so nothing polls.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runner.emulator import failures
from runner.emulator.jobs import COMPLETED, IN_PROGRESS, IN_QUEUE, STATES, Job, JobError, JobStore

# Runs one job's model work and says how it ended (the scheduler adds the latency).
Runner = Callable[[Job], Awaitable[tuple[dict[str, Any] | None, JobError | None]]]


class Broadcast:
    """A wake-up for everyone waiting on a change: each change sets the current event and
    replaces it, so a waiter that took the event before looking at the state cannot miss a
    change made after it looked."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    @property
    def event(self) -> asyncio.Event:
        return self._event


class Scheduler:
    """Holds every job, orders the waiting ones, and runs up to ``concurrency`` at a time."""

    def __init__(
        self,
        store: JobStore,
        runner: Runner,
        *,
        concurrency: int,
        latency: float,
        validate: Callable[[Job], JobError | None],
    ) -> None:
        self.store = store
        # Journal writes (a file created and renamed: a disk's wait) on one thread, in order,
        # never on the loop that answers every client.
        self._journal = ThreadPoolExecutor(1, thread_name_prefix="emulator-journal")
        self.changed = Broadcast()
        self._runner = runner
        self._validate = validate
        self._concurrency = concurrency
        self._latency = latency
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._submissions: Counter[str] = Counter()
        self.max_in_progress = 0
        self.unsaved = 0  # journal writes that failed (a full disk)
        self._next_seq = 0
        self._closing = False
        # Positions of queued jobs, indexed on demand and forgotten whenever the queue
        # changes (see position()).
        self._positions: dict[str, int] | None = None

    def restore(self, jobs: Iterable[Job]) -> None:
        """Take back journaled jobs; the unfinished ones queue again in submission order
        (renders are deterministic, so running them again gives the same files)."""
        for job in sorted(jobs, key=lambda j: j.seq):
            self._jobs[job.id] = job
            self._submissions[job.fingerprint] += 1
            self._next_seq = max(self._next_seq, job.seq + 1)
            if job.state != COMPLETED:
                job.state, job.started_at = IN_QUEUE, None
                job.log("emulator restarted: the request is queued again")
                self._save(job)
                self._waiting.append(job)
        self._positions = None
        self._pump()

    def _write(self, job: Job) -> asyncio.Future[None]:
        """``job`` as it is now, journaled on the journal's thread after earlier writes."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(
            self._journal, self.store.write, job.id, self.store.snapshot(job)
        )

    def _save(self, job: Job) -> None:
        """Journal a change of an accepted ``job`` for a restart, without waiting for it.
        On a full disk the job carries on in memory; a restart finds it as last journaled
        (an unfinished job runs again: renders are deterministic), never loses it (see
        :meth:`submit`)."""

        def saved(write: asyncio.Future[None]) -> None:
            exc = None if write.cancelled() else write.exception()
            if isinstance(exc, OSError):
                self.unsaved += 1
                job.log(f"emulator: the job could not be journaled ({exc.strerror or exc})")

        self._write(job).add_done_callback(saved)

    def next_seq(self) -> int:
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        return seq

    async def submit(self, job: Job) -> int:
        """Journal and enqueue ``job``; returns its queue position at submission.

        Journaled first: a job that cannot be (a full disk) is refused, as fal refuses a
        submit it cannot accept (a 5xx, not billed). Accepting one that a restart would
        forget would leave its client holding a request id nobody knows.
        """
        job.log("request queued")
        await self._write(job)
        self._jobs[job.id] = job
        self._submissions[job.fingerprint] += 1
        self._waiting.append(job)
        self._positions = None
        position = len(self._waiting) - 1
        self._pump()
        self.changed.notify()
        return position

    def get(self, request_id: str) -> Job | None:
        return self._jobs.get(request_id)

    def all_jobs(self) -> list[Job]:
        """Every job this emulator knows, in no particular order."""
        return list(self._jobs.values())

    def position(self, job: Job) -> int | None:
        """Requests ahead of ``job`` (0-indexed), while it is queued."""
        if job.state != IN_QUEUE:
            return None
        # Every change wakes every status stream and each asks for its position: index the
        # queue once per change instead of scanning it once per stream.
        if self._positions is None:
            self._positions = {queued.id: i for i, queued in enumerate(self._waiting)}
        return self._positions.get(job.id)

    def cancel(self, job: Job) -> str:
        """Cancel ``job``: a queued one is removed and completes as cancelled; a running one
        only gets the request (the LTX apps finish their work)."""
        if job.state == COMPLETED:
            return "ALREADY_COMPLETED"
        if job.state == IN_QUEUE:
            self._waiting.remove(job)
            self._positions = None
            job.log("request cancelled while queued")
            job.complete(error=failures.cancelled())
        else:
            job.log("cancellation requested while in progress; the model finishes its work")
        self._save(job)
        self.changed.notify()
        return "CANCELLATION_REQUESTED"

    def set_pace(self, latency: float, concurrency: int) -> None:
        """Change the latency and concurrency limit of jobs that start from now on."""
        self._latency, self._concurrency = latency, max(1, concurrency)
        self._pump()

    def _pump(self) -> None:
        while not self._closing and self._waiting and len(self._running) < self._concurrency:
            job = self._waiting.popleft()
            self._positions = None
            # IN_PROGRESS from this moment, not from when the task first runs: a cancel in
            # between must not look for the job in the queue.
            job.state, job.started_at = IN_PROGRESS, time.time()
            self._running.add(job.id)
            self.max_in_progress = max(self.max_in_progress, len(self._running))
            task = asyncio.get_running_loop().create_task(self._execute(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _execute(self, job: Job) -> None:
        job.log(f"running {job.endpoint}")
        self._save(job)
        self.changed.notify()
        try:
            invalid = self._validate(job)
            if invalid is not None:
                # The app rejects the body as soon as it sees it: no inference time.
                job.complete(error=invalid)
            else:
                work = asyncio.ensure_future(self._runner(job))
                await asyncio.gather(work, asyncio.sleep(self._latency))
                result, error = work.result()
                job.complete(result=result, error=error)
        except Exception as exc:  # an emulator bug must not leave the job running forever
            job.complete(error=failures.internal(f"{type(exc).__name__}: {exc}"))
        finally:
            if job.state == COMPLETED:
                job.log("request completed" if job.error is None else f"error: {job.error.error}")
                self._save(job)
            self._running.discard(job.id)
            self._pump()
            self.changed.notify()

    async def close(self) -> None:
        """Stop running jobs where they are; the journal keeps them for a restart."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._journal.shutdown)  # the last states, journaled

    def stats(self) -> dict[str, Any]:
        states = Counter(job.state for job in self._jobs.values())
        return {
            "total_submissions": sum(self._submissions.values()),
            "submissions": dict(self._submissions),
            "states": {state: states.get(state, 0) for state in STATES},
            "failed": sum(1 for j in self._jobs.values() if j.error is not None),
            "cancelled": sum(
                1
                for j in self._jobs.values()
                if j.error and j.error.error_type == "client_cancelled"
            ),
            "max_in_progress": self.max_in_progress,
            "unsaved": self.unsaved,
        }
