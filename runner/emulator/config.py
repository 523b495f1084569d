"""The emulator's settings, in one frozen record built by the CLI, the runner or a test."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runner.emulator.faults import FaultPlan

# fal keeps a result for an hour after completion (six minutes when it is 10 KB or more; an
# animatic's result JSON is always far smaller).
FAL_RESULT_TTL = 3600.0


@dataclass(frozen=True)
class EmulatorConfig:
    """How the local fal emulator behaves.

    ``latency`` is the least time a job spends IN_PROGRESS (the render happens within it);
    ``concurrency`` is how many jobs may be IN_PROGRESS at once, as on a fal account (queued
    jobs wait, never rejected). Without ``state_dir`` jobs and files live in a temporary
    directory removed on stop; with one they survive a restart.
    """

    host: str = "127.0.0.1"
    port: int = 0
    # The synchronous host (fal.run) listens on a port of its own, since fal's clients pick
    # it by host name; 0 picks a free port, None serves no run host.
    run_port: int | None = 0
    latency: float = 0.5
    concurrency: int = 2
    state_dir: Path | None = None
    faults: FaultPlan = field(default_factory=FaultPlan)
    # TLS, so that clients which insist on https:// (fal's own) can talk to the emulator.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Lifetime of /files URLs (uploads and rendered outputs); None keeps them forever.
    # An upload's X-Fal-Object-Lifecycle-Preference header sets a file's lifetime, within
    # this bound (a CDN that drops files sooner than a client asked, which it must survive).
    file_ttl: float | None = None
    # Lifetime of a completed job's result; None keeps results forever.
    result_ttl: float | None = FAL_RESULT_TTL
    # Seconds between SSE keep-alive comments on /status/stream (fal sends one every 15 s).
    ping_interval: float = 15.0
    # fal's queue accepts any JSON body and the model app validates it when the job runs,
    # so a bad request surfaces as a COMPLETED job whose result is the 422. True rejects it
    # at submit instead, which some tests find more convenient.
    validate_on_submit: bool = False
    # fal answers 401 without a key. False lets keyless clients in (an offline runner
    # that has no FAL_KEY); api_keys, when set, is the list of keys accepted (None: any
    # well-formed ``id:secret`` key).
    require_auth: bool = True
    api_keys: frozenset[str] | None = None
    # Render worker processes (the machine has two cores).
    render_workers: int = 2
    # Timeout for fetching an input URL that is not the emulator's own.
    fetch_timeout: float = 10.0
    # A test aid: draw animatics (of every endpoint) at this share of their size, then scale
    # them up to it.
    # LTX-2 renders 1080p to 2160p; at 0.25 a 1080p frame is drawn at 480x270. The output
    # keeps the size the request asks for (and is a different file than at 1.0).
    render_scale: float = 1.0
    # Seconds after a request ends before the request listing (/v1/models/requests/
    # by-endpoint) shows it; fal does not say how soon it does.
    listing_delay: float = 0.0
    # A benchmarking aid: every job answers at once with the same tiny stored clip (inputs
    # not fetched, nothing rendered), so that what is measured is the client alone.
    no_render: bool = False

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.latency < 0:
            raise ValueError("latency cannot be negative")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate and a key")
        if self.listing_delay < 0:
            raise ValueError("listing_delay cannot be negative")
        if self.ping_interval <= 0:
            raise ValueError("ping_interval must be positive")
        if not 0 < self.render_scale <= 1:
            raise ValueError("render_scale must be above 0 and at most 1")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert is not None else "http"
