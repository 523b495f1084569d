"""The errors of the fal client, all under :class:`~runner.errors.ShotgraphError`.

::

    ShotgraphError
    └── FalError                    anything the fal backend reports
        ├── FalKeyMissing           no usable FAL_KEY (hint: --backend local)
        ├── FalConfigError          a bad base URL or endpoint id
        ├── FalProtocolError        fal answered something this client cannot read
        ├── FalJobFailed            the job completed with an error (fal's message)
        ├── FalIntegrityError       a download's size or sha256 is not what was expected
        ├── FalUnavailable          retries exhausted: network errors, 429, ingress 5xx
        │   └── FalSubmitUncertain  a submit failed in a way that may have queued a job
        └── FalHTTPError            any other HTTP error response
            ├── FalAuthError        401, or a 403 that is not an account lock
            ├── FalLockedError      403 "User is locked" (e.g. exhausted balance)
            ├── FalValidationError  422, with fal's ``detail`` kept for key-path mapping
            ├── FalNotFound         404 on a status or cancel: unknown request id
            └── FalResultExpired    the result or output file is gone (fal keeps them briefly)

Errors keep plain data (status code, response headers, fal's ``detail``), never an httpx
request or response, so none of them can carry the API key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.errors import ShotgraphError

_OFFLINE_HINT = "or render offline, for free, with `--backend local` (the bundled emulator)"


class FalError(ShotgraphError):
    """Base of every error the fal backend raises.

    ``request_id`` is fal's request id when the error concerns one job; ``status_code``
    the HTTP status when there was a response.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.request_id = request_id
        self.status_code = status_code


class FalKeyMissing(FalError):
    """No fal API key could be found or used."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            hint="set FAL_KEY to a key from https://fal.ai/dashboard/keys, " + _OFFLINE_HINT,
        )


class FalConfigError(FalError):
    """A base URL, host, endpoint id or header the client cannot use."""


class FalProtocolError(FalError):
    """fal's answer lacks something the protocol promises (a request id, an ETag, JSON)."""


class FalIntegrityError(FalError):
    """A downloaded file's size or content hash differs from what was expected."""


class FalJobFailed(FalError):
    """The job reached COMPLETED with an ``error``: it failed, and this is fal's message.

    ``status`` is the final :class:`~runner.fal.status.JobStatus` (its logs may say more).
    """

    def __init__(
        self, message: str, *, request_id: str, error_type: str | None, status: object
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.error_type = error_type
        self.status = status


class FalUnavailable(FalError):
    """fal could not be reached or kept refusing (429, gateway errors) after every retry."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        status_code: int | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            message,
            hint=hint or "fal or the network is having trouble; try again later",
            request_id=request_id,
            status_code=status_code,
        )
        self.attempts = attempts


class FalSubmitUncertain(FalUnavailable):
    """A submit failed after the request may have reached the queue.

    It is not retried because a second POST could queue (and bill) a second job; fal has no
    idempotency key. The job may exist: look before submitting it again.
    """


class FalHTTPError(FalError):
    """fal answered with an HTTP error. ``detail`` and ``error_type`` are fal's, as sent."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        detail: object = None,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, request_id=request_id, status_code=status_code)
        self.detail = detail
        self.error_type = error_type
        self.headers: Mapping[str, str] = dict(headers or {})


class FalAuthError(FalHTTPError):
    """401 (the key is wrong) or a 403 that is not an account lock (no access)."""


class FalLockedError(FalHTTPError):
    """403 "User is locked": the account cannot start jobs. ``reason`` is fal's reason."""

    @property
    def reason(self) -> str:
        text = str(self.detail or "")
        return text.split("Reason:", 1)[1].strip() if "Reason:" in text else text

    @property
    def exhausted_balance(self) -> bool:
        return "exhausted balance" in str(self.detail or "").lower()


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One item of a 422 ``detail``: where (``loc``), what (``msg``, ``type``), and extras."""

    loc: tuple[str | int, ...]
    msg: str
    type: str | None = None
    ctx: Mapping[str, Any] | None = None
    input: Any = None

    @property
    def field_path(self) -> tuple[str | int, ...]:
        """``loc`` without its leading ``"body"``: the key path inside the request body."""
        return self.loc[1:] if self.loc[:1] == ("body",) else self.loc

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.field_path)
        return f"{where}: {self.msg}" if where else self.msg


class FalValidationError(FalHTTPError):
    """422: fal (or the model) rejected the request body.

    ``detail`` is fal's as sent (a list of issues, or a plain string); ``issues`` is the
    same as :class:`ValidationIssue` records, so a caller can map ``field_path`` back to a
    pipeline key. A plain-string detail becomes one issue with an empty ``loc``.
    """

    @property
    def issues(self) -> tuple[ValidationIssue, ...]:
        return parse_issues(self.detail)


class FalNotFound(FalHTTPError):
    """404 on a status or cancel: fal does not know this request id under this endpoint."""


class FalResultExpired(FalHTTPError):
    """The result (or an output file) is gone: fal keeps results 1 h, or 6 min when ≥10 KB."""


def parse_issues(detail: object) -> tuple[ValidationIssue, ...]:
    """fal's 422 ``detail`` (a list of ``{loc, msg, type, ctx?, input?}``, or a string)."""
    if isinstance(detail, str):
        return (ValidationIssue(loc=(), msg=detail),)
    if not isinstance(detail, Sequence):
        return (ValidationIssue(loc=(), msg=str(detail)),) if detail is not None else ()
    issues = []
    for item in detail:
        if not isinstance(item, Mapping):
            issues.append(ValidationIssue(loc=(), msg=str(item)))
            continue
        loc = item.get("loc") or ()
        ctx = item.get("ctx")
        issues.append(
            ValidationIssue(
                loc=tuple(p if isinstance(p, int) else str(p) for p in loc)
                if isinstance(loc, Sequence) and not isinstance(loc, str)
                else (str(loc),),
                msg=str(item.get("msg", "")),
                type=str(item["type"]) if item.get("type") is not None else None,
                ctx=ctx if isinstance(ctx, Mapping) else None,
                input=item.get("input"),
            )
        )
    return tuple(issues)
