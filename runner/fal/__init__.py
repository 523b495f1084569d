"""shotgraph's async client for fal's queue API: the ``fal`` backend, and the ``local`` one
(the same client pointed at the bundled emulator).

Modules, one idea each: ``config`` (where to talk), ``credentials`` (the key, never shown),
``endpoint`` (ids and URLs), ``retry`` (what is retried, how long to wait), ``session``
(one request with retries and error translation), ``translate`` (HTTP errors to
``errors``), ``status`` (handles and statuses), ``sse`` and ``waiting`` (the status stream
and the polling fallback), ``storage`` (uploads), ``download``, ``listing`` (fal's request
listing, to reconcile an uncertain submit), and ``client`` (the API).
"""

from __future__ import annotations

from runner.fal.client import FalClient
from runner.fal.config import DEFAULT_API_URL, DEFAULT_QUEUE_URL, DEFAULT_REST_URL, FalConfig
from runner.fal.credentials import Credentials, Secret, load_credentials
from runner.fal.download import Downloaded
from runner.fal.endpoint import EndpointId
from runner.fal.errors import (
    FalAuthError,
    FalConfigError,
    FalError,
    FalHTTPError,
    FalIntegrityError,
    FalJobFailed,
    FalKeyMissing,
    FalLockedError,
    FalNotFound,
    FalProtocolError,
    FalResultExpired,
    FalSubmitUncertain,
    FalUnavailable,
    FalValidationError,
    ValidationIssue,
)
from runner.fal.listing import ListedRequest, ListingIncomplete
from runner.fal.retry import RetryPolicy
from runner.fal.status import (
    COMPLETED,
    IN_PROGRESS,
    IN_QUEUE,
    CancelOutcome,
    JobHandle,
    JobStatus,
)
from runner.fal.storage import UploadedFile, data_uri
from runner.fal.waiting import UpdateCallback

__all__ = [
    "COMPLETED",
    "DEFAULT_API_URL",
    "DEFAULT_QUEUE_URL",
    "DEFAULT_REST_URL",
    "IN_PROGRESS",
    "IN_QUEUE",
    "CancelOutcome",
    "Credentials",
    "Downloaded",
    "EndpointId",
    "FalAuthError",
    "FalClient",
    "FalConfig",
    "FalConfigError",
    "FalError",
    "FalHTTPError",
    "FalIntegrityError",
    "FalJobFailed",
    "FalKeyMissing",
    "FalLockedError",
    "FalNotFound",
    "FalProtocolError",
    "FalResultExpired",
    "FalSubmitUncertain",
    "FalUnavailable",
    "FalValidationError",
    "JobHandle",
    "JobStatus",
    "ListedRequest",
    "ListingIncomplete",
    "RetryPolicy",
    "Secret",
    "UpdateCallback",
    "UploadedFile",
    "ValidationIssue",
    "data_uri",
    "load_credentials",
]
