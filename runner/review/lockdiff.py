"""How two versions of a pipeline's renders differ, shot by shot: the one comparison of locks.

A shot changed when its cache key did. Each side of a shot is a :class:`Side` (what a lock
entry, or the current pipeline, says of it), so the comparison works between two lockfiles
(:func:`diff_locks`) and between a lockfile and a pipeline not rendered yet. For a changed
shot it says which request fields differ (media inputs aside: a new input shows as a new
key with the same fields), the prompt's words removed and added (:func:`prompt_diff`), and
the cost delta. :func:`lock_at` reads the other lock from a file or a git revision.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runner.compile.steps import JsonPath, fill_slots
from runner.errors import ShotgraphError
from runner.lock import Lock, LockEntry, parse_lock, read_lock

Change = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class Side:
    """One side of a shot: its key, request (media slots at ``media``), cost and output
    (a sha256; None when it is not rendered)."""

    key: str
    kind: str
    endpoint: str | None
    request: Mapping[str, Any] | None
    media: tuple[JsonPath, ...]
    cost_usd: float | None
    output: str | None

    @classmethod
    def of_entry(cls, entry: LockEntry) -> Side:
        media = tuple(item.at for item in entry.inputs)
        output = entry.output.sha256
        return cls(
            entry.key, entry.kind, entry.endpoint, entry.request, media, entry.cost_usd, output
        )

    @property
    def prompt(self) -> str:
        return str((self.request or {}).get("prompt", ""))


@dataclass(frozen=True)
class ShotDiff:
    """One shot that differs: added, removed, or changed (with the fields that did)."""

    node: str
    old: Side | None
    new: Side | None

    @property
    def change(self) -> Change:
        return "added" if self.old is None else "removed" if self.new is None else "changed"

    @property
    def fields(self) -> list[str]:
        """The request fields that differ, media inputs aside; ``inputs`` when only those
        (or what an input was made from) changed."""
        if self.old is None or self.new is None:
            return []
        old, new = _without_media(self.old), _without_media(self.new)
        found = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if self.old.endpoint != self.new.endpoint:
            found.insert(0, "endpoint")
        return found or ["inputs"]

    @property
    def cost_delta(self) -> float:
        before = (self.old.cost_usd or 0.0) if self.old else 0.0
        after = (self.new.cost_usd or 0.0) if self.new else 0.0
        return round(after - before, 6)


@dataclass(frozen=True)
class LockDiff:
    """Every shot that differs, by node name, and how many are the same."""

    shots: tuple[ShotDiff, ...]
    unchanged: int

    @property
    def cost_delta(self) -> float:
        return round(sum(shot.cost_delta for shot in self.shots), 6)

    def of(self, change: Change) -> list[ShotDiff]:
        return [shot for shot in self.shots if shot.change == change]


def diff_sides(old: Mapping[str, Side], new: Mapping[str, Side]) -> LockDiff:
    """The shots whose keys differ between ``old`` and ``new`` (or that only one has)."""
    shots = []
    unchanged = 0
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before is not None and after is not None and before.key == after.key:
            unchanged += 1
        else:
            shots.append(ShotDiff(name, before, after))
    return LockDiff(tuple(shots), unchanged)


def diff_locks(old: Lock, new: Lock) -> LockDiff:
    """How ``new`` differs from ``old``, shot by shot."""
    return diff_sides(
        {name: Side.of_entry(e) for name, e in old.nodes.items()},
        {name: Side.of_entry(e) for name, e in new.nodes.items()},
    )


def _without_media(side: Side) -> dict[str, Any]:
    request = dict(side.request or {})
    try:
        return fill_slots(request, dict.fromkeys(side.media, None))
    except (KeyError, IndexError, TypeError):
        return request


_WORDS = re.compile(r"\S+\s*|\s+")  # a word with the space after it


def prompt_diff(old: str, new: str) -> list[tuple[str, str]]:
    """The words of two prompts as ("same" | "del" | "ins", text) runs, in reading order."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    runs: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            runs.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            runs.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            runs.append(("ins", "".join(b[j1:j2])))
    return runs


def lock_at(spec: str, lock_file: Path) -> Lock:
    """The lock ``spec`` names: a lockfile's path, or a git revision (``main``, ``HEAD~2``,
    a commit) whose version of ``lock_file`` is read with git."""
    candidate = Path(spec)
    if candidate.is_file():
        return read_lock(candidate)
    directory = lock_file.parent
    hint = "give a lockfile's path, or a revision where the lockfile is committed"
    top, _ = _git(["rev-parse", "--show-toplevel"], directory)
    if top is None:
        raise ShotgraphError(
            f"no lockfile '{spec}', and {directory} is not in a git work tree to read a "
            "revision from",
            hint=hint,
        )
    try:
        relative = lock_file.resolve().relative_to(Path(top.strip()).resolve()).as_posix()
    except ValueError:
        raise ShotgraphError(f"{lock_file} is not inside its git work tree") from None
    text, said = _git(["show", f"{spec}:{relative}"], directory)
    if text is None:
        raise ShotgraphError(f"no lockfile or git revision '{spec}': {said}", hint=hint)
    return parse_lock(text, Path(f"{spec}:{relative}"))


def _git(args: list[str], cwd: Path) -> tuple[str | None, str]:
    """What git prints (None when it fails) and the first line of what it says on stderr."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShotgraphError(
            f"git {' '.join(args)} failed: {exc}", hint="is git installed?"
        ) from None
    said = (done.stderr.strip().splitlines() or [""])[0][:200]
    return (done.stdout if done.returncode == 0 else None), said
