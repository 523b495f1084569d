"""Which frame of a clip a ``frame`` node takes: a small value type without media imports,
so that loading and planning a pipeline does not load the video libraries."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from runner.errors import MediaError

_INDEX = re.compile(r"[+-]?\d+")
_SECONDS = re.compile(r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*s")
_HINT = 'use "first", "last", a frame index such as 12 or -1, or a time such as "2.5s"'


@dataclass(frozen=True, slots=True)
class FrameAt:
    """Which frame of a clip: exactly one of ``index`` (0-based; negative counts from the
    end) or ``seconds`` (from the first frame). Build one with :func:`parse_frame_at`."""

    index: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.index is None) == (self.seconds is None):
            raise MediaError("a frame position needs exactly one of an index or a time")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise MediaError(
                f"frame time {self.seconds!r} must be a finite, non-negative number", hint=_HINT
            )

    @property
    def exact_seconds(self) -> Fraction | None:
        """The time as an exact fraction. Going through the float's shortest repr makes
        ``0.1`` mean 1/10, so a time on a frame boundary picks that frame."""
        return Fraction(repr(self.seconds)) if self.seconds is not None else None

    def __str__(self) -> str:
        if self.seconds is not None:
            return f"{self.seconds}s"
        if self.index == 0:
            return "first"
        return "last" if self.index == -1 else str(self.index)


FIRST = FrameAt(index=0)
LAST = FrameAt(index=-1)

FrameSpec = FrameAt | str | int | float


def parse_frame_at(value: object) -> FrameAt:
    """Read a frame position as a pipeline writes it: ``"first"``, ``"last"``, an int or
    an integer string (an index), a float or ``"2.5s"`` (a time in seconds).

    A string without a unit such as ``"2.5"`` is refused rather than guessed at.
    """
    if isinstance(value, FrameAt):
        return value
    # bool is an int subclass; `at: true` in YAML is a mistake, not frame 1.
    if isinstance(value, bool):
        raise MediaError(f"frame position {value!r} is a boolean", hint=_HINT)
    if isinstance(value, int):
        return FrameAt(index=value)
    if isinstance(value, float):
        return FrameAt(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("first", "last"):
            return FIRST if text == "first" else LAST
        if _INDEX.fullmatch(text):
            return FrameAt(index=int(text))
        match = _SECONDS.fullmatch(text)
        if match:
            return FrameAt(seconds=float(match["num"]))
        raise MediaError(f"cannot read frame position {value!r}", hint=_HINT)
    raise MediaError(f"frame position must be a string or a number, not {value!r}", hint=_HINT)
