"""A queued job (:class:`JobHandle`) and what fal says about it (:class:`JobStatus`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from runner.fal.errors import FalProtocolError

IN_QUEUE: Final = "IN_QUEUE"
IN_PROGRESS: Final = "IN_PROGRESS"
COMPLETED: Final = "COMPLETED"
# fal's queue documents only the three above; third-party schemas add these. A job in one of
# them is over and did not produce a result, so waiting on it treats them as failures.
FAILED_STATES: Final = frozenset({"FAILED", "ERROR", "CANCELED", "CANCELLED"})

CancelOutcome = Literal["OK", "CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND"]
_CANCEL_OUTCOMES: Final[dict[str, CancelOutcome]] = {
    "OK": "OK",
    "CANCELLATION_REQUESTED": "CANCELLATION_REQUESTED",
    "ALREADY_COMPLETED": "ALREADY_COMPLETED",
    "NOT_FOUND": "NOT_FOUND",
}


@dataclass(frozen=True, slots=True)
class JobHandle:
    """A job fal has queued: its endpoint, request id and per-request URLs.

    The URLs are the ones the submit response returned (when they point at the configured
    queue) or, when re-attaching, built from the endpoint's owner/alias. Everything here is
    plain data, safe to journal: ``as_dict``/``from_dict`` round-trip it.
    """

    endpoint_id: str
    request_id: str
    response_url: str
    status_url: str
    cancel_url: str

    @property
    def stream_url(self) -> str:
        return f"{self.status_url}/stream"

    def as_dict(self) -> dict[str, str]:
        return {
            "endpoint_id": self.endpoint_id,
            "request_id": self.request_id,
            "response_url": self.response_url,
            "status_url": self.status_url,
            "cancel_url": self.cancel_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> JobHandle:
        return cls(**{k: str(data[k]) for k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One status report: state, queue position, logs, and for COMPLETED, error and metrics.

    ``received_at`` is ``time.monotonic()`` when the report arrived, so callers (and the
    benchmarks) can measure how late a completion was noticed.
    """

    state: str
    request_id: str | None = None
    queue_position: int | None = None
    logs: tuple[Mapping[str, Any], ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    error: str | None = None
    error_type: str | None = None
    received_at: float = field(default_factory=time.monotonic, compare=False)

    @property
    def done(self) -> bool:
        """The job will not change any more (completed, failed or cancelled)."""
        return self.state == COMPLETED or self.state in FAILED_STATES

    @property
    def failed(self) -> bool:
        """Done without a result: COMPLETED with an error, or a failure state."""
        return self.state in FAILED_STATES or (
            self.state == COMPLETED and (self.error is not None or self.error_type is not None)
        )

    @property
    def inference_time(self) -> float | None:
        value = self.metrics.get("inference_time")
        return float(value) if isinstance(value, int | float) else None


def parse_status(data: object) -> JobStatus:
    """A :class:`JobStatus` from a status body or stream event.

    Lenient where fal is loose (``logs`` may be null or absent, ``metrics`` absent on
    legacy apps) and strict only about ``status`` itself.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("status"), str):
        raise FalProtocolError(f"fal sent a status without a 'status' field: {_short(data)}")
    logs = data.get("logs")
    metrics = data.get("metrics")
    position = data.get("queue_position")
    error = data.get("error")
    error_type = data.get("error_type")
    request_id = data.get("request_id")
    return JobStatus(
        state=data["status"],
        request_id=request_id if isinstance(request_id, str) else None,
        queue_position=position if isinstance(position, int) else None,
        logs=tuple(e for e in logs if isinstance(e, Mapping)) if isinstance(logs, list) else (),
        metrics=MappingProxyType(dict(metrics)) if isinstance(metrics, Mapping) else _EMPTY,
        error=_text(error),
        error_type=_text(error_type),
    )


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _short(data: object) -> str:
    text = repr(data)
    return text if len(text) <= 200 else text[:200] + "…"


def cancel_outcome(data: object, success: bool) -> CancelOutcome | None:
    """fal's answer to a cancel, from its body ``{"status": …}`` (any HTTP code: fal sends
    ALREADY_COMPLETED and NOT_FOUND with error codes) or ``{"success": bool}``; None when
    the answer is an ordinary error."""
    said = data.get("status") if isinstance(data, Mapping) else None
    if isinstance(said, str) and said in _CANCEL_OUTCOMES:
        return _CANCEL_OUTCOMES[said]
    if not success:
        return None
    # {"success": false}: fal found nothing it could cancel.
    return "NOT_FOUND" if isinstance(data, Mapping) and data.get("success") is False else "OK"
