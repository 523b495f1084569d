"""Cache keys and seeds: one canonical spelling of a request, its digest, and the seed a node
gets when the pipeline does not pin one.

A key covers everything that can change a render and nothing that cannot: the endpoint, the
backend, and the full request body in which a project file is its content hash and another
node's output is that node's key (so a renamed node keys the same). ``KEY_VERSION`` changes
only when the spelling does; every key of every store changes with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from runner.compile.sources import MediaSource, Upstream
from runner.compile.steps import Slot, fill_slots
from runner.frame_at import FrameAt

KEY_VERSION = 1
# Every backend there is; the name is part of every cache key. Here, not beside the
# backends themselves: the commands' options need the names without loading asyncio.
BACKENDS = ("fal", "local")
FAL, LOCAL = BACKENDS
SEED_RANGE = 2**31


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def derived_seed(node_name: str) -> int:
    """A seed pinned by the node's name: the same on every run and every machine."""
    hashed = hashlib.sha256(f"shotgraph-seed:{node_name}".encode()).digest()
    return int.from_bytes(hashed[:4], "big") % SEED_RANGE


def input_identity(source: MediaSource, upstream_keys: Mapping[str, str]) -> str:
    """What a key sees of an input: another node's output is that node's key, a project file
    its content hash, a URL itself."""
    if isinstance(source, Upstream):
        return f"key:{upstream_keys[source.node]}"
    return source.placeholder


def keyed_body(
    body: Mapping[str, Any], slots: tuple[Slot, ...], upstream_keys: Mapping[str, str]
) -> dict[str, Any]:
    """The body as the cache key sees it: an upstream output stands for that node's key;
    files are already their content hashes, URLs themselves."""
    upstream = {
        slot.pointer: input_identity(slot.source, upstream_keys)
        for slot in slots
        if isinstance(slot.source, Upstream)
    }
    return fill_slots(body, upstream)


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
