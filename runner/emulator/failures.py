"""How jobs fail, in fal's shapes.

Model errors (validation, an input that cannot be fetched or read) use the documented
``{"detail": [{"loc", "msg", "type", "url", "input"}]}`` body; request errors use the flat
``{"detail": str, "error_type": str}`` body with the ``X-Fal-Error-Type`` header.
"""

from __future__ import annotations

from typing import Any

from runner.emulator.jobs import JobError

_DOCS = "https://docs.fal.ai/errors/#"


def validation(detail: list[dict[str, Any]]) -> JobError:
    """The app's 422 for a body that does not match its schema."""
    first = detail[0]
    where = ".".join(str(part) for part in first["loc"][1:]) or "body"
    return JobError(
        status=422,
        body={"detail": detail},
        error=f"{where}: {first['msg']}",
        error_type=str(first["type"]),
        headers={"X-Fal-Retryable": "false"},
    )


def download(loc: tuple[str | int, ...], url: str) -> JobError:
    """An input URL the app could not fetch (fal's documented ``file_download_error``)."""
    item = {
        "loc": ["body", *loc],
        "msg": "File download error",
        "type": "file_download_error",
        "url": _DOCS + "file_download_error",
        "input": url,
    }
    return validation([item])


def model(item: dict[str, Any]) -> JobError:
    """A 422 the renderer raised about one input (an image it could not load, say)."""
    return validation([item])


def injected(fault: dict[str, Any], body: dict[str, Any]) -> JobError:
    """The error a ``fail`` fault asks for. 5xx statuses use fal's model error body with
    ``internal_server_error`` unless the rule names another type."""
    status = int(fault.get("status") or 500)
    error_type = str(fault.get("error_type") or "internal_server_error")
    message = str(fault.get("message") or "Internal server error")
    item = {
        "loc": ["body"],
        "msg": message,
        "type": error_type,
        "url": _DOCS + error_type,
        "input": body,
    }
    return JobError(
        status=status,
        body={"detail": [item]},
        error=message,
        error_type=error_type,
        headers={"X-Fal-Retryable": "false"},
    )


def cancelled() -> JobError:
    """A queued request removed by a cancel (fal lists ``client_cancelled`` as 499)."""
    return _request_error(499, "Request was cancelled", "client_cancelled")


def internal(message: str) -> JobError:
    """The emulator itself failed; reported as fal reports its own internal errors."""
    return _request_error(500, message, "internal_error")


def _request_error(status: int, detail: str, error_type: str) -> JobError:
    return JobError(
        status=status,
        body={"detail": detail, "error_type": error_type},
        error=detail,
        error_type=error_type,
        headers={"X-Fal-Error-Type": error_type},
    )
