"""At a cancel, a job whose status was never polled (submitted a moment before the signal)
is asked for it first, and cancelled when it is still queued; a job fal does not show yet
is left journaled, never forgotten (forgetting it could pay for it twice)."""

from __future__ import annotations

from typing import Any

from runner.fal import FalNotFound, JobStatus
from runner.run.job_wait import cancel_if_queued


class Queue:
    """A fal queue at the seam: each status call answers the next of ``statuses``."""

    def __init__(self, *statuses: JobStatus | Exception) -> None:
        self.statuses = list(statuses)
        self.calls: list[str] = []

    async def status(self, handle: Any) -> JobStatus:
        self.calls.append("status")
        answer = self.statuses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def cancel(self, handle: Any) -> str:
        self.calls.append("cancel")
        return "CANCELLATION_REQUESTED"


CANCELLED = JobStatus("COMPLETED", error="cancelled")


async def test_a_job_never_polled_is_asked_then_cancelled_while_queued() -> None:
    queue = Queue(JobStatus("IN_QUEUE"), CANCELLED)
    assert await cancel_if_queued(queue, object(), None)  # type: ignore[arg-type]
    assert queue.calls == ["status", "cancel", "status"]


async def test_a_job_never_polled_and_already_running_is_not_cancelled() -> None:
    queue = Queue(JobStatus("IN_PROGRESS"))
    assert not await cancel_if_queued(queue, object(), None)  # type: ignore[arg-type]
    assert queue.calls == ["status"]


async def test_a_job_fal_does_not_show_yet_stays_journaled() -> None:
    queue = Queue(FalNotFound("not found", status_code=404))
    assert not await cancel_if_queued(queue, object(), None)  # type: ignore[arg-type]
    assert queue.calls == ["status"]
