"""The animatic's camera: the prompt's camera words become a move, frame by frame.

A prompt says how the camera moves ("slow push-in", "locked-off on a tripod", "pan left",
"handheld"); :func:`read_camera` finds those words (:data:`WORDS`, the table in
docs/emulator.md) and :func:`from_words` turns them into a :class:`Camera`, a :class:`Pose`
per output frame. Frame 0 is always the input's own framing (an i2v starts on its keyframe,
an extend on the last frame of the clip it continues), and everything is derived from the
request, so the same request moves the same way every time.

Pure arithmetic: the pixels are :mod:`runner.emulator.lens`'s job.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# How far each move goes over a whole clip at normal speed: clearly visible, still gentle.
_ZOOM = 1.2  # push-in / pull-out: 20 % closer (or further)
_DOLLY = 1.35  # in a flat picture a dolly is a push-in that travels further
_PAN = 0.15  # of the frame's width
_TILT = 0.15  # of the frame's height
_ORBIT = 0.45  # radians the picture's plane turns
_ORBIT_SLIDE = 0.08  # how far it slides meanwhile, in frame widths
_SPEEDS = {"slow": 0.6, "fast": 1.6}


@dataclass(frozen=True)
class Pose:
    """Where the camera is relative to frame 0: ``zoom`` > 1 is closer; ``x``/``y`` where it
    looks, in frame widths/heights (+ is right/down, so the picture slides the other way);
    ``turn`` how far it has orbited, in radians (+ is to its right: the right of the picture
    comes nearer and the picture slides right, as the scene behind a subject does)."""

    zoom: float = 1.0
    x: float = 0.0
    y: float = 0.0
    turn: float = 0.0

    def toward(self, share: float) -> Pose:
        """``share`` of the way from frame 0 (0) to this pose (1)."""
        return Pose(self.zoom**share, self.x * share, self.y * share, self.turn * share)

    def __add__(self, other: Pose) -> Pose:
        return Pose(
            self.zoom * other.zoom, self.x + other.x, self.y + other.y, self.turn + other.turn
        )


STILL = Pose()


@dataclass(frozen=True)
class Move:
    """A named camera move and the pose it reaches at the end of a clip at normal speed;
    moves of one ``axis`` cannot happen at once (the first one a prompt names wins)."""

    name: str
    end: Pose
    axis: str


MOVES: dict[str, Move] = {
    move.name: move
    for move in (
        Move("push-in", Pose(zoom=_ZOOM), "depth"),
        Move("pull-out", Pose(zoom=1 / _ZOOM), "depth"),
        Move("dolly-in", Pose(zoom=_DOLLY), "depth"),
        Move("dolly-out", Pose(zoom=1 / _DOLLY), "depth"),
        Move("pan-left", Pose(x=-_PAN), "across"),
        Move("pan-right", Pose(x=_PAN), "across"),
        Move("tilt-up", Pose(y=-_TILT), "up"),
        Move("tilt-down", Pose(y=_TILT), "up"),
        Move("orbit-left", Pose(zoom=1.05, x=_ORBIT_SLIDE, turn=-_ORBIT), "orbit"),
        Move("orbit-right", Pose(zoom=1.05, x=-_ORBIT_SLIDE, turn=_ORBIT), "orbit"),
    )
}


def _toward(direction: str) -> str:
    """ " left", " to the left", " to left" (or right, up, down) after a verb."""
    return rf"\s+(?:to\s+(?:the\s+)?)?{direction}"


_PAN_VERB = r"(?:whip[- ])?pan(?:s|ning|ned)?"
_ORBIT_VERB = r"(?:orbit(?:s|ing|ed)?|arc(?:s|ing)?)"

# The camera words: regular expressions on the lower-cased prompt, matched on word
# boundaries, longer phrases first. The value names a move of MOVES, or "static",
# "handheld", "slow", "fast"; "pan-?", "tilt-?", "orbit-?" take their direction from the seed.
WORDS: tuple[tuple[str, str], ...] = (
    (r"locked[- ]?(?:off|down)|lock[- ]off|static|tripod", "static"),
    (r"(?:fixed|still|stationary|steady|stable) (?:camera|shot|framing)", "static"),
    (r"no camera (?:move(?:ment)?|motion)|camera (?:does not|doesn't) move", "static"),
    (r"stable|steady", "static"),
    (
        r"hand[- ]?held|shaky (?:camera|cam|footage)|camera (?:shake|sway)|swaying camera",
        "handheld",
    ),
    (r"dolly(?:ing)?[- ](?:in|forward)|dollies (?:in|forward)", "dolly-in"),
    (r"dolly(?:ing)?[- ](?:out|back)|dollies (?:out|back)", "dolly-out"),
    (r"dolly|dollies", "dolly-in"),
    (
        r"push(?:es|ing)?[- ](?:in|forward)|zoom(?:s|ing)?[- ]in|camera (?:creep|move)s in",
        "push-in",
    ),
    (r"pull(?:s|ing)?[- ](?:out|back)|zoom(?:s|ing)?[- ]out", "pull-out"),
    (r"zoom(?:s|ing)?", "push-in"),
    (_PAN_VERB + _toward("left"), "pan-left"),
    (_PAN_VERB + _toward("right"), "pan-right"),
    (_PAN_VERB, "pan-?"),
    (r"tilt(?:s|ing|ed)?" + _toward("up"), "tilt-up"),
    (r"tilt(?:s|ing|ed)?" + _toward("down"), "tilt-down"),
    # "she tilts her head" is not a camera move
    (r"tilt(?:s|ing|ed)?(?!\s+(?:her|his|their|its|one's|the|a|an)\b)", "tilt-?"),
    (_ORBIT_VERB + _toward("left") + r"|orbit(?:s|ing)? counter-?clockwise", "orbit-left"),
    (_ORBIT_VERB + _toward("right") + r"|orbit(?:s|ing)? clockwise", "orbit-right"),
    (r"orbit(?:s|ing|ed)?|arc shot|arc(?:s|ing)? around|circl(?:es|ing) around", "orbit-?"),
    (r"slow(?:ly)?|gentl[ey]|subtle|subtly", "slow"),
    (r"fast|quick(?:ly)?|rapid(?:ly)?|whip", "fast"),
)
_PATTERNS = [(re.compile(rf"\b(?:{words})\b"), name) for words, name in WORDS]
_NEGATION = re.compile(r"\b(?:no|not|without|never|avoid|nor|don't|doesn't)\b")
_CLAUSES = re.compile(r"[.,;:!?()\n]+")
_SIDES = {"pan": ("left", "right"), "tilt": ("up", "down"), "orbit": ("left", "right")}


@dataclass(frozen=True)
class CameraWords:
    """What a prompt says about the camera: its moves (at most one per axis, each with its
    speed), and whether it is locked off or handheld."""

    moves: tuple[tuple[Move, float], ...] = ()
    static: bool = False
    handheld: bool = False

    @property
    def said(self) -> bool:
        return bool(self.moves) or self.static or self.handheld

    def describe(self) -> str:
        return describe((move for move, _ in self.moves), self.handheld, "locked-off")


def describe(moves: Iterable[Move], handheld: bool, still: str) -> str:
    """Camera moves as the band names them ("pan-left + handheld"); ``still`` without any."""
    names = [move.name for move in moves] + (["handheld"] if handheld else [])
    return " + ".join(names) or still


def read_camera(prompt: str, seed: int) -> CameraWords:
    """The camera words of ``prompt``, clause by clause. A word after a negation in its clause
    ("no sudden zoom") does not count; a speed word applies to the moves of its clause; a
    move without a direction ("pan") takes one from ``seed``. A locked-off camera stays
    still, handheld or not, unless a move is named too (a move is the more specific ask)."""
    moves: dict[str, tuple[Move, float]] = {}
    static = handheld = False
    for clause in _CLAUSES.split(prompt.lower()):
        found: list[tuple[int, str]] = []
        taken: list[tuple[int, int]] = []
        for pattern, name in _PATTERNS:
            for match in pattern.finditer(clause):
                start, end = match.span()
                if any(a < end and start < b for a, b in taken):
                    continue  # part of a longer phrase already read
                taken.append((start, end))
                if not _NEGATION.search(clause, 0, start):
                    found.append((start, name))
        names = [name for _, name in sorted(found)]
        speed = math.prod(_SPEEDS[name] for name in set(names) & _SPEEDS.keys())
        for name in names:
            if name == "static":
                static = True
            elif name == "handheld":
                handheld = True
            elif name not in _SPEEDS:
                move = MOVES[_sided(name, seed)]
                moves.setdefault(move.axis, (move, speed))
    locked = static and not moves
    return CameraWords(tuple(moves.values()), locked, handheld and not locked)


def _sided(name: str, seed: int) -> str:
    if not name.endswith("-?"):
        return name
    kind = name[:-2]
    return f"{kind}-{_SIDES[kind][seed % 2]}"


Curve = Callable[[int], float]
Path = Callable[[int], Pose]


def ease(total: int) -> Curve:
    """0 -> 1 over ``total`` frames, slow at both ends."""

    def curve(i: int) -> float:
        return 0.5 - 0.5 * math.cos(math.pi * i / max(1, total - 1))

    return curve


def there_and_back(total: int) -> Curve:
    """0 -> 1 -> 0: a sway that ends where it started."""
    out = ease(total)
    return lambda i: math.sin(math.pi * out(i))


@dataclass(frozen=True)
class Camera:
    """What the camera does over a clip: ``path`` gives the pose of output frame ``i``
    (``None``: locked off, every frame is frame 0); ``description`` is what the band says."""

    description: str
    path: Path | None = None

    def pose(self, i: int) -> Pose:
        return STILL if self.path is None else self.path(i)


def moving(description: str, moves: list[tuple[Pose, Curve]], sway: Path | None) -> Camera:
    """A camera taking each ``(end pose, curve)`` ``curve(i)`` of the way at frame ``i``, all
    at once, with ``sway`` on top."""
    if not moves and sway is None:
        return Camera(description)

    def path(i: int) -> Pose:
        pose = STILL
        for end, curve in moves:
            pose = pose + end.toward(curve(i))
        return pose + sway(i) if sway is not None else pose

    return Camera(description, path)


def from_words(words: CameraWords, curve: Curve, sway: Path) -> Camera:
    """The camera a prompt asks for, each move advancing along ``curve``."""
    moves = [(move.end.toward(speed), curve) for move, speed in words.moves]
    return moving(words.describe(), moves, sway if words.handheld else None)


def handheld_sway(seed: int, frame_rate: float, amount: float = 0.012) -> Path:
    """A held camera's drift: a few slow sines with frequencies and phases from ``seed``,
    zero at frame 0 (the clip starts on its input's framing)."""
    digest = hashlib.sha256(f"shotgraph-sway:{seed}".encode()).digest()
    # Per axis (x, y, zoom): three sines, (hertz, phase, weight), two digest bytes each.
    waves = [
        [
            (0.3 + 1.1 * digest[b] / 255, 2 * math.pi * digest[b + 1] / 255, weight)
            for b, weight in ((6 * axis + 2 * k, w) for k, w in enumerate((0.6, 0.3, 0.1)))
        ]
        for axis in range(3)
    ]

    def wave(axis: int, seconds: float) -> float:
        return sum(
            w * (math.sin(2 * math.pi * f * seconds + p) - math.sin(p)) for f, p, w in waves[axis]
        )

    def sway(i: int) -> Pose:
        s = i / frame_rate
        return Pose(1 + amount * 0.4 * wave(2, s), amount * wave(0, s), amount * wave(1, s))

    return sway
