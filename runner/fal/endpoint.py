"""fal endpoint ids and the queue URLs built from them.

An id splits on ``/`` into owner, alias and a path (everything after); a leading
``workflows`` or ``comfy`` is a namespace that shifts the split by one; the legacy form
``123-app`` means ``123/app``. Jobs are submitted to the full id, but the per-request URLs
(status, result, cancel) use only ``[namespace/]owner/alias``: fal's docs say not to add
the endpoint path there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from runner.fal.errors import FalConfigError

NAMESPACES = ("workflows", "comfy")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LEGACY = re.compile(r"^([0-9]+)-([A-Za-z0-9-]+)$")


@dataclass(frozen=True, slots=True)
class EndpointId:
    """A parsed endpoint id such as ``fal-ai/ltx-video-13b-distilled/image-to-video``."""

    owner: str
    alias: str
    path: str | None = None
    namespace: str | None = None

    @classmethod
    def parse(cls, endpoint_id: str) -> EndpointId:
        """Split an endpoint id; a malformed one is a :class:`FalConfigError`."""
        if legacy := _LEGACY.match(endpoint_id):
            endpoint_id = f"{legacy[1]}/{legacy[2]}"
        parts = endpoint_id.split("/")
        namespace = parts.pop(0) if parts[0] in NAMESPACES else None
        if len(parts) < 2 or not all(_SEGMENT.match(p) for p in parts):
            raise FalConfigError(
                f"invalid fal endpoint id {endpoint_id!r}",
                hint="endpoint ids look like owner/alias[/path], "
                "e.g. fal-ai/ltx-video-13b-distilled/image-to-video",
            )
        return cls(parts[0], parts[1], "/".join(parts[2:]) or None, namespace)

    @property
    def app(self) -> str:
        """``[namespace/]owner/alias``: the part per-request URLs are built on."""
        prefix = f"{self.namespace}/" if self.namespace else ""
        return f"{prefix}{self.owner}/{self.alias}"

    def __str__(self) -> str:
        return f"{self.app}/{self.path}" if self.path else self.app


def submit_url(queue_url: str, endpoint: EndpointId) -> str:
    """``POST`` here to queue a job."""
    return f"{queue_url}/{endpoint}"


def request_url(queue_url: str, endpoint: EndpointId, request_id: str) -> str:
    """The result URL of a request; ``/status``, ``/status/stream``, ``/cancel`` hang off it."""
    return f"{queue_url}/{endpoint.app}/requests/{quote(request_id, safe='')}"
