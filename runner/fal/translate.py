"""Turning fal's HTTP error responses into the errors of :mod:`runner.fal.errors`.

fal's error bodies are ``{"detail": ..., "error_type"?: ...}`` (``detail`` a string, or a
list of issues on 422); infrastructure errors also name their type in ``X-Fal-Error-Type``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from runner.fal.errors import (
    FalAuthError,
    FalError,
    FalHTTPError,
    FalLockedError,
    FalNotFound,
    FalResultExpired,
    FalValidationError,
    parse_issues,
)

Operation = Literal["submit", "status", "result", "cancel", "upload", "download", "list"]
Redactor = Callable[[str], str]

_MAX_TEXT = 2000  # keep an HTML error page from swamping a message


def read_body(content: bytes, content_type: str) -> tuple[object, str]:
    """The parsed JSON body (or None) and the body as text."""
    text = content.decode("utf-8", errors="replace")
    if "json" in content_type or text[:1] in "{[":
        try:
            return json.loads(text), text
        except ValueError:
            pass
    return None, text


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    operation: Operation,
    what: str,
    redact: Redactor,
    request_id: str | None = None,
) -> FalError:
    """The error for an HTTP error response to ``operation`` on ``what`` (for messages)."""
    body, text = read_body(content, headers.get("content-type", ""))
    detail: object = text[:_MAX_TEXT].strip()
    error_type = headers.get("x-fal-error-type")
    if isinstance(body, dict):
        detail = body.get("detail", body.get("error", detail))
        if isinstance(body.get("error_type"), str):
            error_type = body["error_type"]
    detail = _redact_tree(detail, redact)
    request_id = request_id or headers.get("x-fal-request-id")
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "detail": detail,
        "error_type": error_type,
        "headers": {k: redact(v) for k, v in headers.items()},
        "request_id": request_id,
    }
    said = _said(detail)
    prefix = f"fal {operation} of {what}"

    if status_code == 401:
        return FalAuthError(
            f"{prefix}: fal rejected the API key (HTTP 401: {said})",
            hint="check FAL_KEY (fal keys look like <key_id>:<key_secret>), "
            "or render offline with `--backend local`",
            **kwargs,
        )
    if status_code == 403:
        if "lock" in said.lower():
            return _locked(prefix, said, kwargs)
        return FalAuthError(
            f"{prefix}: access denied (HTTP 403: {said})",
            hint="check that FAL_KEY belongs to an account with access to this endpoint",
            **kwargs,
        )
    if status_code == 422:
        issues = parse_issues(detail)
        listed = "; ".join(str(i) for i in issues[:10]) or said
        more = f" (and {len(issues) - 10} more)" if len(issues) > 10 else ""
        return FalValidationError(
            f"{prefix}: fal rejected the request: {listed}{more}",
            hint="fix the named parameters; 422s can be billed, so `shotgraph validate` first",
            **kwargs,
        )
    if status_code in (404, 410) and operation in ("result", "download"):
        gone = "result" if operation == "result" else "output file"
        return FalResultExpired(
            f"{prefix}: the {gone} is gone (HTTP {status_code}: {said})",
            hint="fal keeps results for 1 hour, or only 6 minutes when they are 10 KB or more, "
            "so results must be fetched promptly; the node has to be rendered again",
            **kwargs,
        )
    if status_code == 404 and operation in ("status", "cancel"):
        return FalNotFound(
            f"{prefix}: fal does not know this request (HTTP 404: {said})",
            hint="a request id is only valid with the endpoint (owner/alias) that created it",
            **kwargs,
        )
    kind = f", {error_type}" if error_type else ""
    return FalHTTPError(f"{prefix} failed: HTTP {status_code}{kind}: {said}", **kwargs)


def _locked(prefix: str, said: str, kwargs: dict[str, Any]) -> FalLockedError:
    if "exhausted balance" in said.lower():
        message = f"{prefix}: your fal account is out of credit (Exhausted balance)"
        hint = (
            "top up at https://fal.ai/dashboard/billing and run again (fal has been seen to "
            "keep accounts locked for a while after a top-up), or render offline with "
            "`--backend local`"
        )
    else:
        message = f"{prefix}: your fal account is locked ({said})"
        hint = "contact fal support (https://fal.ai/dashboard) to unlock the account"
    return FalLockedError(message, hint=hint, **kwargs)


def _said(detail: object) -> str:
    if isinstance(detail, str):
        return detail or "no detail"
    return json.dumps(detail, default=str)[:_MAX_TEXT]


def _redact_tree(value: object, redact: Redactor) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_tree(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: _redact_tree(v, redact) for k, v in value.items()}
    return value
