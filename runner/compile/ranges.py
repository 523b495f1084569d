"""What a node takes from a clip must lie within it: a frame node's frame, a retake's section.

Checked at compile time when the clip's length is fixed by its request (another node's
output of known timing), so the mistake is an error now, not a failure at the end of a paid
render. A clip of unknown or assumed length is not checked here: fal checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.compile.sources import MediaSource, Upstream
from runner.compile.steps import Step
from runner.errors import Diagnostics
from runner.ltx.clip import Timing
from runner.pipeline.records import Node, Pipeline

# Two floats of seconds that differ by less than this are the same instant.
_EPSILON = 1e-9


def _known_timing(source: MediaSource, steps: Mapping[str, Step]) -> Timing | None:
    """The timing of the clip ``source`` names, when its request fixes it (not assumed)."""
    upstream = steps.get(source.node) if isinstance(source, Upstream) else None
    timing = upstream.timing if upstream is not None else None
    return None if timing is None or timing.assumed else timing


def frame_in_range(
    node: Node,
    source: MediaSource,
    steps: Mapping[str, Step],
    pipeline: Pipeline,
    diags: Diagnostics,
) -> bool:
    """A frame node's ``at`` lies within its clip."""
    at = node.at
    timing = _known_timing(source, steps)
    if at is None or timing is None or not timing.num_frames:
        return True
    frames, rate = timing.num_frames, timing.frame_rate or 0.0
    if at.index is not None:
        ok = -frames <= at.index < frames
        length = f"{frames} frames (0 to {frames - 1}, or -1 to -{frames})"
    else:
        last = (frames - 1) / rate if rate else 0.0
        ok = at.seconds is not None and at.seconds <= last + _EPSILON
        length = f"{frames} frames at {rate:g} fps (the last frame is at {last:.2f}s)"
    if not ok:
        assert isinstance(source, Upstream)
        diags.error(
            "frame-at-range",
            f"frame {at} is past the end of '{source.node}'",
            pipeline.source.locate((*node.key_path, "at")),
            f"'{source.node}' renders {length}",
        )
    return ok


def section_in_range(
    node: Node,
    body: Mapping[str, Any],
    source: MediaSource,
    steps: Mapping[str, Step],
    pipeline: Pipeline,
    diags: Diagnostics,
) -> bool:
    """A retake's section (``start_time`` + ``duration`` seconds) lies within its clip."""
    timing = _known_timing(source, steps)
    if timing is None or timing.seconds is None:
        return True
    start, duration = float(body.get("start_time", 0)), float(body.get("duration", 0))
    if start + duration <= timing.seconds + _EPSILON:
        return True
    assert isinstance(source, Upstream)
    diags.error(
        "retake-range",
        f"the section {start:g}s to {start + duration:g}s is past the end of '{source.node}'",
        pipeline.source.locate((*node.key_path, "duration")),
        f"'{source.node}' is {timing.seconds:g} s long: start_time + duration must not exceed it",
    )
    return False
