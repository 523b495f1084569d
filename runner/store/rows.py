"""The plain records the store keeps: files, results, uploads.

Records live in SQLite as JSON objects with a schema version (``v``), never as pickles, so a
store outlives code changes. ``from_dict`` checks every field; a record that does not fit
(another schema version, a damaged row) raises :class:`RecordError` and the store treats it
as absent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

SCHEMA = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


class RecordError(ValueError):
    """A stored record that this version of shotgraph cannot read."""


def check_sha256(value: object) -> str:
    """``value`` if it is a lowercase hex SHA-256 (it becomes a path, so nothing else passes)."""
    if not isinstance(value, str) or _SHA256.fullmatch(value) is None:
        raise RecordError(f"not a sha256 hex digest: {value!r}")
    return value


def check_version(data: Mapping[str, Any]) -> None:
    if data.get("v") != SCHEMA:
        raise RecordError(f"record schema {data.get('v')!r}, expected {SCHEMA}")


def req_str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise RecordError(f"{name}: expected a string, got {value!r}")
    return value


def opt_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None else req_str(data, name)


def opt_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{name}: expected an integer, got {value!r}")
    return value


def req_int(data: Mapping[str, Any], name: str) -> int:
    value = opt_int(data, name)
    if value is None:
        raise RecordError(f"{name}: missing")
    return value


def opt_float(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{name}: expected a number, got {value!r}")
    return float(value)


def req_float(data: Mapping[str, Any], name: str) -> float:
    value = opt_float(data, name)
    if value is None:
        raise RecordError(f"{name}: missing")
    return value


def opt_mapping(data: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecordError(f"{name}: expected an object, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file in the content-addressed store: its SHA-256 (hex) and size in bytes."""

    sha256: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoredFile:
        return cls(check_sha256(data.get("sha256")), req_int(data, "size"))


def serves(endpoint: str | None, made_on: str, backend: str) -> bool:
    """Whether a result rendered by ``endpoint`` (None: a local media step) on the backend
    ``made_on`` may serve a run on ``backend``. A render only serves its own backend (an
    animatic must never pass for a fal render, even under a hand-edited key); a local media
    step computes the same file whichever backend the run uses."""
    return endpoint is None or made_on == backend


@dataclass(frozen=True)
class ResultRecord:
    """What a finished node produced, under its cache key.

    ``endpoint`` and ``request_id`` are None for local media steps. ``extra`` holds what the
    backend returned beside the file (fal's seed, timings); it must be JSON and is stored
    verbatim, so it must never carry credentials.
    """

    key: str
    node: str
    kind: str
    endpoint: str | None
    backend: str
    request_id: str | None
    seed: int | None
    output: StoredFile
    content_type: str
    cost_usd: float | None
    result_url: str | None
    recorded_at: float = field(default_factory=time.time)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def serves(self, backend: str) -> bool:
        """Whether a run on ``backend`` may use it (see :func:`serves`)."""
        return serves(self.endpoint, self.backend, backend)

    def as_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA,
            "key": self.key,
            "node": self.node,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "backend": self.backend,
            "request_id": self.request_id,
            "seed": self.seed,
            "output": self.output.as_dict(),
            "content_type": self.content_type,
            "cost_usd": self.cost_usd,
            "result_url": self.result_url,
            "recorded_at": self.recorded_at,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResultRecord:
        check_version(data)
        output = opt_mapping(data, "output")
        if output is None:
            raise RecordError("output: missing")
        return cls(
            key=req_str(data, "key"),
            node=req_str(data, "node"),
            kind=req_str(data, "kind"),
            endpoint=opt_str(data, "endpoint"),
            backend=req_str(data, "backend"),
            request_id=opt_str(data, "request_id"),
            seed=opt_int(data, "seed"),
            output=StoredFile.from_dict(output),
            content_type=req_str(data, "content_type"),
            cost_usd=opt_float(data, "cost_usd"),
            result_url=opt_str(data, "result_url"),
            recorded_at=req_float(data, "recorded_at"),
            extra=opt_mapping(data, "extra") or {},
        )


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """A local file (by content hash) already uploaded to a backend, and until when its URL
    serves it (``expires_at`` as a Unix time; None: no known expiry)."""

    backend: str
    sha256: str
    url: str
    expires_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA,
            "backend": self.backend,
            "sha256": self.sha256,
            "url": self.url,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UploadRecord:
        check_version(data)
        return cls(
            backend=req_str(data, "backend"),
            sha256=check_sha256(data.get("sha256")),
            url=req_str(data, "url"),
            expires_at=opt_float(data, "expires_at"),
        )

    def usable(self, now: float, margin: float) -> bool:
        """The URL will still serve the file ``margin`` seconds from ``now``."""
        return self.expires_at is None or self.expires_at >= now + margin


Row = TypeVar("Row", ResultRecord, UploadRecord)


def read_row(kind: type[Row], data: Mapping[str, Any] | None) -> Row | None:
    """``data`` as a ``kind`` record; None when absent or unreadable (damaged, or written
    by another version): a row that cannot be read is a miss, never an error."""
    if data is None:
        return None
    try:
        return kind.from_dict(data)
    except RecordError:
        return None
