"""Where the client talks to and how patiently: :class:`FalConfig`, built in one place.

Base URLs, highest precedence first:

- an explicit option (``FalConfig.from_env(queue_url=...)``);
- ``SHOTGRAPH_FAL_QUEUE_URL`` / ``SHOTGRAPH_FAL_REST_URL`` / ``SHOTGRAPH_FAL_API_URL``
  (the platform API, where the request listing is): full URLs, http allowed, for the local
  emulator or a proxy;
- ``FAL_QUEUE_RUN_HOST``: a host name, spoken over https, as fal's own client takes it;
- ``https://queue.fal.run``, ``https://rest.fal.ai`` and ``https://api.fal.ai/v1``.

``SHOTGRAPH_FAL_LISTING_SETTLE`` (seconds) is how long after a submit attempt the runner
keeps looking for its job in fal's request listing before it submits again;
``SHOTGRAPH_FAL_LISTING_POLL`` (seconds) how often it looks meanwhile.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from runner.fal.errors import FalConfigError
from runner.fal.retry import RetryPolicy

DEFAULT_QUEUE_URL = "https://queue.fal.run"
DEFAULT_REST_URL = "https://rest.fal.ai"
DEFAULT_API_URL = "https://api.fal.ai/v1"
MiB = 1024 * 1024
#: How patiently an uncertain submit is looked for in the request listing: the variables.
LISTING_VARIABLES = {
    "SHOTGRAPH_FAL_LISTING_SETTLE": "listing_settle",
    "SHOTGRAPH_FAL_LISTING_POLL": "listing_poll",
}


@dataclass(frozen=True, slots=True)
class FalConfig:
    """Everything about the fal client except the credentials and the transport."""

    queue_url: str = DEFAULT_QUEUE_URL
    rest_url: str = DEFAULT_REST_URL
    #: fal's platform API (``/models/requests/by-endpoint``: the request listing).
    api_url: str = DEFAULT_API_URL
    #: How long after a submit attempt its job may still be missing from fal's request
    #: listing (fal does not document whether queued or running requests are listed, nor
    #: how soon a finished one appears): an uncertain submit is looked for that long
    #: before it is sent again. A job queued longer than this is paid for twice.
    listing_settle: float = 600.0
    #: Seconds between looks at the listing while waiting for a job to appear.
    listing_poll: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Wait on the SSE status stream; polling is the fallback (or the only way if False).
    use_stream: bool = True
    #: Seconds between status polls when the stream is unavailable. fal-js polls at 0.5 s.
    poll_interval: float = 0.5
    #: Stream failures in a row after which ``wait`` polls until the job is done.
    stream_attempts: int = 3
    #: fal pings the stream every 15 s: three missed pings mean the connection is dead.
    stream_idle_timeout: float = 45.0
    connect_timeout: float = 10.0
    #: Read/write/pool timeout of ordinary requests, in seconds.
    timeout: float = 60.0
    max_connections: int = 256
    multipart_threshold: int = 100 * MiB
    multipart_part_size: int = 10 * MiB
    multipart_concurrency: int = 10
    #: Size of the reads and writes of streamed uploads and downloads: the memory they use.
    chunk_size: int = 1 * MiB
    #: fsync a download before renaming it into place (survives power loss, not only kill -9).
    fsync_downloads: bool = True
    #: The header a submit names its pipeline node in, percent-encoded; None sends no name.
    #: Only the local backend sets it, for its emulator: fal never hears of pipeline nodes.
    node_header: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "queue_url", _checked_url(self.queue_url, "queue URL"))
        object.__setattr__(self, "rest_url", _checked_url(self.rest_url, "REST URL"))
        object.__setattr__(self, "api_url", _checked_url(self.api_url, "platform API URL"))
        if self.multipart_part_size < 1 or self.chunk_size < 1 or self.multipart_concurrency < 1:
            raise FalConfigError("part size, chunk size and upload concurrency must be positive")
        if self.poll_interval < 0 or self.stream_attempts < 0 or self.listing_settle < 0:
            raise FalConfigError(
                "poll_interval, stream_attempts and listing_settle cannot be negative"
            )
        if self.listing_poll <= 0:
            raise FalConfigError("listing_poll must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **options: Any) -> FalConfig:
        """A config from the environment (``os.environ`` by default), then ``options``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if host := env.get("FAL_QUEUE_RUN_HOST", "").strip():
            if "://" in host or "/" in host:
                raise FalConfigError(
                    f"FAL_QUEUE_RUN_HOST must be a host name, not {host!r}",
                    hint="for a full URL (an http emulator or proxy) use SHOTGRAPH_FAL_QUEUE_URL",
                )
            values["queue_url"] = f"https://{host}"
        if url := env.get("SHOTGRAPH_FAL_QUEUE_URL", "").strip():
            values["queue_url"] = url
        if url := env.get("SHOTGRAPH_FAL_REST_URL", "").strip():
            values["rest_url"] = url
        if url := env.get("SHOTGRAPH_FAL_API_URL", "").strip():
            values["api_url"] = url
        for name, key in LISTING_VARIABLES.items():
            if seconds := env.get(name, "").strip():
                try:
                    values[key] = float(seconds)
                except ValueError:
                    raise FalConfigError(
                        f"{name} must be a number of seconds, not {seconds!r}"
                    ) from None
        values.update({k: v for k, v in options.items() if v is not None})
        return cls(**values)

    def request_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=self.connect_timeout)

    def stream_timeout(self) -> httpx.Timeout:
        # No pool limit on the stream: a wait can sit behind other requests for a connection.
        return httpx.Timeout(
            self.stream_idle_timeout, connect=self.connect_timeout, write=self.timeout, pool=None
        )


def _checked_url(url: str, what: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FalConfigError(f"the fal {what} {url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FalConfigError(
            f"the fal {what} {url!r} must be an http(s) URL with a host",
            hint="e.g. https://queue.fal.run, or http://127.0.0.1:8000 for the emulator",
        )
    if parsed.query or parsed.fragment:
        raise FalConfigError(f"the fal {what} {url!r} cannot have a query or fragment")
    return url.rstrip("/")


def same_origin(a: str | httpx.URL, b: str | httpx.URL) -> bool:
    """Whether two URLs share scheme, host and port (so a credential may go to both)."""
    return _origin(str(a)) == _origin(str(b))


def _origin(url: str) -> tuple[str, str, int | None]:
    # Asked for every request (which key goes where); parsing a whole URL with httpx
    # costs tens of microseconds. httpx's authority ends at the first "/", "?" or "#"
    # after "//", so the origin depends on the URL up to there alone: parsed once each.
    scheme, sep, rest = url.partition("://")
    if sep:
        ends = [i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0]
        url = url[: len(scheme) + len(sep) + min(ends, default=len(rest))]
    return _origin_of(url)


@functools.lru_cache(maxsize=256)
def _origin_of(prefix: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(prefix)
    return parsed.scheme, parsed.host, _port(parsed)


def _port(url: httpx.URL) -> int | None:
    return url.port or {"http": 80, "https": 443}.get(url.scheme)
