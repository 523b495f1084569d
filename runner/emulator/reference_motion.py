"""How a multicondition's reference video moves, estimated from its pixels.

Frames an eighth of a second apart, shrunk to grey thumbnails, are compared by phase
correlation (the peak of the normalised cross-power spectrum says how far the content
shifted) over the left, centre and right thirds and the top and bottom halves:

- all three thirds sliding together is a pan (or a tilt);
- the left and right thirds moving apart (and the top and bottom halves) is a zoom;
- the sides sliding while the centre holds is an orbit: the camera circles its subject,
  which stays in the middle while the scene behind it slides past.

:func:`estimate` measures every step of the clip; :func:`camera_moves` names the dominant
motions as camera moves (the same moves the prompt's words give), each timed by how that
motion accumulates in the reference.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from runner.emulator.camera import MOVES, Move, describe
from runner.hashing import sha256_file

Array = npt.NDArray[np.float64]

_THUMB = (128, 72)
# A motion counts when it adds up to this much over the clip (frame widths, or zoom ratio).
_SIGNIFICANT = 0.03
# The least phase-correlation peak (1 is a perfect match) that is taken as a shift.
_CONFIDENT = 0.05


@dataclass(frozen=True)
class Step:
    """How the content moved from one reference frame to the next: ``dx``/``dy`` in frame
    widths/heights, ``zoom`` as a ratio's logarithm, ``orbit`` how far the sides slid
    past the centre and ``sides`` how far they slid (frame widths), and ``energy``, the
    mean absolute change of its pixels (0..1)."""

    dx: float = 0.0
    dy: float = 0.0
    zoom: float = 0.0
    orbit: float = 0.0
    sides: float = 0.0
    energy: float = 0.0

    def share(self, part: float, energy: float) -> Step:
        """``part`` of this motion, with its own ``energy``."""
        return Step(
            self.dx * part,
            self.dy * part,
            self.zoom * part,
            self.orbit * part,
            self.sides * part,
            energy,
        )


@dataclass(frozen=True)
class ReferenceMotion:
    """The reference's steps (one per frame, each a share of its stretch's measurement;
    the first is still) and its frame rate."""

    steps: tuple[Step, ...]
    frame_rate: float

    def progress(self, component: str) -> list[float]:
        """Per reference frame, the share of the clip's total ``component`` (by absolute
        value) done so far: 0 at the start, 1 at the end, never going back."""
        done, shares = 0.0, []
        values = [abs(getattr(step, component)) for step in self.steps]
        total = sum(values)
        for value in values:
            done += value
            shares.append(done / total if total > 0 else 0.0)
        return shares

    def total(self, component: str) -> float:
        """``component`` over the whole clip (signed)."""
        return float(sum(getattr(step, component) for step in self.steps))


# The motions measured last in this process, by the hash of the clip's bytes: a pipeline
# films many shots after the few clips of its motion library, and measuring one (decoding
# it whole, then a phase correlation per step) costs three times the rest of a small render.
_MEASURED: OrderedDict[str, ReferenceMotion] = OrderedDict()
_KEPT = 16


def estimate(path: Path) -> ReferenceMotion:
    """The motion of the video at ``path`` (raises OSError if it cannot be read,
    av.FFmpegError or ValueError if it cannot be decoded)."""
    digest, _ = sha256_file(path)
    motion = _MEASURED.pop(digest, None)
    if motion is None:
        motion = _measure(path)
    _MEASURED[digest] = motion  # the most recent last
    while len(_MEASURED) > _KEPT:
        _MEASURED.popitem(last=False)
    return motion


def _measure(path: Path) -> ReferenceMotion:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 24)
        thumbs = [
            frame.reformat(width=_THUMB[0], height=_THUMB[1], format="gray").to_ndarray()
            for frame in container.decode(stream)
        ]
    if not thumbs:
        raise ValueError(f"{path} has no video frames")
    pictures = [thumb.astype(np.float64) / 255 for thumb in thumbs]
    # Frames a few apart: fewer, larger measurements add up to a smaller error than one per
    # frame (each carries a little), and are still far below what the thumbnails can follow.
    stride = max(1, round(rate / 8))
    steps = [Step()]
    for start in range(0, len(pictures) - 1, stride):
        end = min(start + stride, len(pictures) - 1)
        moved = _step(pictures[start], pictures[end])
        share = 1 / (end - start)  # spread over the frames in between, for the timing
        for k in range(start + 1, end + 1):
            energy = float(np.mean(np.abs(pictures[k] - pictures[k - 1])))
            steps.append(moved.share(share, energy))
    return ReferenceMotion(tuple(steps), rate)


def _step(before: Array, after: Array) -> Step:
    height, width = before.shape
    third, half = width // 3, height // 2
    (left, left_y), (centre, centre_y), (right, right_y) = (
        _shift(before[:, a:b], after[:, a:b])
        for a, b in ((0, third), (third, width - third), (width - third, width))
    )
    _, top = _shift(before[:half], after[:half])
    _, bottom = _shift(before[half:], after[half:])
    # Left and right thirds spreading apart, and the top and bottom halves, is a zoom (their
    # centres are two thirds and one half of the frame apart); both must say so.
    spread = _agreed((right - left) / (width - third), (bottom - top) / half)
    # The sides sliding together while the centre holds: the camera circles the centre.
    sides = _agreed(left, right)
    return Step(
        dx=float(np.median([left, centre, right])) / width,
        dy=float(np.median([left_y, centre_y, right_y])) / height,
        zoom=float(np.log1p(max(-0.5, spread))),
        orbit=(sides - centre) / width,
        sides=sides / width,
    )


def _agreed(one: float, other: float) -> float:
    """What two measurements of one motion agree on: the smaller, if they point the same
    way; nothing if they do not (then it is noise, or two motions cancelling)."""
    if one * other <= 0:
        return 0.0
    return one if abs(one) < abs(other) else other


def _shift(before: Array, after: Array) -> tuple[float, float]:
    """How far the content of ``after`` moved from ``before``, in pixels (x, y), to a
    fraction of a pixel, by phase correlation; (0, 0) without a clear answer."""
    window = np.outer(np.hanning(before.shape[0]), np.hanning(before.shape[1]))
    a = np.fft.fft2((before - before.mean()) * window)
    b = np.fft.fft2((after - after.mean()) * window)
    cross = b * np.conj(a)
    magnitude = np.abs(cross)
    if float(magnitude.max()) < 1e-9:
        return 0.0, 0.0  # a flat picture: nothing to follow
    surface = np.fft.ifft2(cross / np.maximum(magnitude, 1e-12)).real
    row, col = np.unravel_index(int(np.argmax(surface)), surface.shape)
    if surface[row, col] < _CONFIDENT:
        return 0.0, 0.0  # no single shift explains the change: nothing moved as one
    return (
        _peak(surface[row, :], int(col)),
        _peak(surface[:, col], int(row)),
    )


def _peak(line: Array, at: int) -> float:
    """The peak's position to a fraction of a pixel, from its larger neighbour (Foroosh's
    estimate for a phase-correlation peak, less biased towards whole pixels than a
    parabola), as a signed shift."""
    n = len(line)
    here = line[at]
    side = 1 if line[(at + 1) % n] > line[(at - 1) % n] else -1
    beside = line[(at + side) % n]
    fraction = float(beside / (beside + here)) if beside > 0 and here > 0 else 0.0
    position = at + side * fraction
    return position - n if position > n / 2 else position


@dataclass(frozen=True)
class Followed:
    """The camera moves a reference shows, each with the :class:`Step` component that
    times it, and whether it wobbles like a held camera."""

    moves: tuple[tuple[Move, str], ...]
    handheld: bool

    def describe(self) -> str:
        return describe((move for move, _ in self.moves), self.handheld, "still")


def camera_moves(motion: ReferenceMotion) -> Followed:
    """An orbit when the sides slide past the centre, else a pan and a tilt when the whole
    picture slides; a push-in or pull-out when it spreads or gathers; handheld when it
    wanders much further than it ends up going."""
    moves: list[tuple[Move, str]] = []
    orbit = motion.total("orbit")
    dx, dy = motion.total("dx"), motion.total("dy")
    if abs(orbit) >= _SIGNIFICANT and abs(motion.total("sides")) >= _SIGNIFICANT:
        # The scene behind a subject slides the way the camera circles it.
        moves.append((MOVES["orbit-right" if orbit > 0 else "orbit-left"], "orbit"))
    else:
        if abs(dx) >= _SIGNIFICANT:  # the content slides left: the camera pans right
            moves.append((MOVES["pan-right" if dx < 0 else "pan-left"], "dx"))
        if abs(dy) >= _SIGNIFICANT:
            moves.append((MOVES["tilt-down" if dy < 0 else "tilt-up"], "dy"))
    zoom = motion.total("zoom")
    if abs(zoom) >= _SIGNIFICANT:
        moves.append((MOVES["push-in" if zoom > 0 else "pull-out"], "zoom"))
    wander = sum(abs(step.dx) + abs(step.dy) for step in motion.steps)
    handheld = wander >= _SIGNIFICANT and wander > 3 * (abs(dx) + abs(dy))
    return Followed(tuple(moves), handheld)
