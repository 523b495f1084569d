"""Compiled nodes ("steps"): what exactly will be sent or done, priced and keyed.

A generation step carries the complete request body for its fal endpoint. Media inputs in the
body are placeholders until run time: ``sha256:<hex>`` for a project file, ``node:<name>`` for
another node's output (a URL is kept as written). ``slots`` says where each one is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.compile.sources import MediaSource, Upstream
from runner.frame_at import FrameAt
from runner.ltx.pricing import Estimate, Timing
from runner.ltx.registry import Endpoint
from runner.pipeline.presets import Setting
from runner.pipeline.records import MediaType, output_type

JsonPath = tuple[str | int, ...]
KEY_VERSION = 1


@dataclass(frozen=True, slots=True)
class Slot:
    """A media input of a step and where it goes in the request body."""

    pointer: JsonPath
    source: MediaSource


@dataclass(frozen=True)
class Step:
    """One node, compiled."""

    name: str
    kind: str
    deps: tuple[str, ...]
    key: str
    slots: tuple[Slot, ...] = ()
    endpoint: Endpoint | None = None
    body: Mapping[str, Any] | None = None
    seed: int | None = None
    seed_pinned_by: str = ""  # "node" when the pipeline sets it, else "derived"
    character: str | None = None
    estimate: Estimate | None = None
    timing: Timing | None = None
    at: FrameAt | None = None
    settings: Mapping[str, Setting] = field(default_factory=dict)

    @property
    def output_type(self) -> MediaType:
        return output_type(self.kind)

    @property
    def usd(self) -> float:
        """The estimated price of running it: 0 for local steps and unpriced endpoints."""
        return self.estimate.usd or 0.0 if self.estimate else 0.0


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def set_pointer(body: dict[str, Any], pointer: JsonPath, value: Any) -> None:
    target: Any = body
    for part in pointer[:-1]:
        target = target[part]
    target[pointer[-1]] = value


def keyed_body(
    body: Mapping[str, Any], slots: tuple[Slot, ...], upstream_keys: Mapping[str, str]
) -> dict[str, Any]:
    """The body as the cache key sees it: an upstream output stands for that node's key, so a
    renamed node keys the same; files are already their content hashes."""
    keyed: dict[str, Any] = dict(body)
    for slot in slots:
        if isinstance(slot.source, Upstream):
            copy_along(keyed, slot.pointer)
            set_pointer(keyed, slot.pointer, input_identity(slot.source, upstream_keys))
    return keyed


def input_identity(source: MediaSource, upstream_keys: Mapping[str, str]) -> str:
    """What a key sees of an input: another node's output is that node's key, a project file
    its content hash, a URL itself."""
    if isinstance(source, Upstream):
        return f"key:{upstream_keys[source.node]}"
    return source.placeholder


def copy_along(body: dict[str, Any], pointer: JsonPath) -> None:
    """Copy the containers on the way to ``pointer`` so that setting it leaves the original
    body untouched."""
    target: Any = body
    for part in pointer[:-1]:
        child = target[part]
        target[part] = child = list(child) if isinstance(child, list) else dict(child)
        target = child


def generation_key(endpoint_id: str, body: Mapping[str, Any], backend: str) -> str:
    return digest({"v": KEY_VERSION, "endpoint": endpoint_id, "backend": backend, "body": body})


def media_key(
    kind: str,
    at: FrameAt | None,
    sources: Sequence[MediaSource],
    upstream_keys: Mapping[str, str],
) -> str:
    """Key of a local media step: its operation and the keys/hashes of what it reads."""
    options = {"at": str(at)} if at is not None else {}
    inputs = [input_identity(source, upstream_keys) for source in sources]
    return digest({"v": KEY_VERSION, "kind": kind, "options": options, "inputs": inputs})
