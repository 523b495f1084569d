"""How two versions of a pipeline's renders differ, shot by shot.

A shot changed when its cache key did. Each side of a shot is a :class:`Side` (what a lock
entry, or the current pipeline, says of it), so the comparison works between two lockfiles
(:func:`diff_locks`) and between a lockfile and a pipeline not rendered yet. For a changed
shot it says which request fields differ (media inputs aside: a new input shows as a new
key with the same fields), the prompt's words removed and added (:func:`prompt_diff`), and
the cost delta. :mod:`runner.review.lockgit` reads the other lock from a file or a git
revision.

:func:`compare` is the account ``shotgraph diff`` and ``ci review`` render: per node, what
changed (the endpoint, an input, the prompt, a parameter, the seed, or only a node it
reads; also a re-render with the same key), and the locks' totals. It needs what only a
lock entry holds (each input's source, the frame, the deps), which a planned shot lacks,
so the two accounts stay apart; they pair the nodes of two sides the one way (``_pair``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from runner.compile.steps import JsonPath, fill_slots
from runner.errors import format_key_path
from runner.lock import Lock, LockedInput, LockEntry

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


T = TypeVar("T", Side, LockEntry)


def _pair(
    old: Mapping[str, T], new: Mapping[str, T], same: Callable[[T, T], bool]
) -> tuple[list[tuple[str, T | None, T | None]], int]:
    """The nodes of two sides by name, in order, that only one has or that are not the
    ``same`` on both, each as (name, old, new); and how many are the same."""
    differ: list[tuple[str, T | None, T | None]] = []
    unchanged = 0
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before is not None and after is not None and same(before, after):
            unchanged += 1
        else:
            differ.append((name, before, after))
    return differ, unchanged


def diff_sides(old: Mapping[str, Side], new: Mapping[str, Side]) -> LockDiff:
    """The shots whose keys differ between ``old`` and ``new`` (or that only one has)."""
    differ, unchanged = _pair(old, new, lambda a, b: a.key == b.key)
    return LockDiff(tuple(ShotDiff(*shot) for shot in differ), unchanged)


def diff_locks(old: Lock, new: Lock) -> LockDiff:
    """How ``new`` differs from ``old``, shot by shot."""
    return diff_sides(
        {name: Side.of_entry(e) for name, e in old.nodes.items()},
        {name: Side.of_entry(e) for name, e in new.nodes.items()},
    )


# -- the review's account: what changed in each node --------------------------------

PROMPTS = ("prompt", "negative_prompt")


@dataclass(frozen=True)
class NodeChange:
    """One node that differs: ``change`` is added, removed or changed; ``what`` says how
    (empty when only a node it reads changed: ``upstream`` names those)."""

    name: str
    change: str
    kind: str
    cost_usd: float | None
    what: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    prompts: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # field: (old, new)
    local: bool = False  # a frame or stitch: made here, costs nothing

    def reason(self) -> str:
        """How it changed, in words."""
        if self.change != "changed":
            return self.change
        parts = list(self.what)
        if self.upstream:
            parts.append(f"upstream changed ({', '.join(self.upstream)})")
        return "; ".join(parts) or "re-rendered (same request, another output)"


@dataclass(frozen=True)
class LockChanges:
    """Two locks compared, node by node (for a review)."""

    old_label: str
    new_label: str
    changes: tuple[NodeChange, ...]
    unchanged: int
    old_total: float
    new_total: float

    def of(self, change: str) -> list[NodeChange]:
        return [c for c in self.changes if c.change == change]

    @property
    def render_usd(self) -> float:
        """What rendering the added and changed nodes costs (before any cache)."""
        return round(sum(c.cost_usd or 0.0 for c in self.changes if c.change != "removed"), 6)

    @property
    def delta_usd(self) -> float:
        return round(self.new_total - self.old_total, 6)

    def summary(self) -> str:
        sign = "+" if self.delta_usd >= 0 else "-"
        return (
            f"{len(self.of('added'))} added, {len(self.of('removed'))} removed, "
            f"{len(self.of('changed'))} changed, {self.unchanged} unchanged · lock total "
            f"${self.old_total:.2f} -> ${self.new_total:.2f} ({sign}${abs(self.delta_usd):.2f}) "
            f"· rendering what is new or changed: ${self.render_usd:.2f}"
        )


def compare(old: Lock | None, new: Lock | None, old_label: str, new_label: str) -> LockChanges:
    """The difference from ``old`` to ``new`` (None: no lockfile there)."""
    before = dict(old.nodes) if old is not None else {}
    after = dict(new.nodes) if new is not None else {}
    changed_keys = {
        name for name in after if name not in before or before[name].key != after[name].key
    }
    # Also a re-render: the same key, another output.
    differ, unchanged = _pair(
        before, after, lambda a, b: a.key == b.key and a.output.sha256 == b.output.sha256
    )
    changes: list[NodeChange] = []
    for name, was, now in differ:
        if was is None:
            assert now is not None
            local = now.endpoint is None
            changes.append(NodeChange(name, "added", now.kind, now.cost_usd, local=local))
        elif now is None:
            local = was.endpoint is None
            changes.append(NodeChange(name, "removed", was.kind, was.cost_usd, local=local))
        else:
            changes.append(_changed(name, was, now, changed_keys))
    return LockChanges(
        old_label, new_label, tuple(changes), unchanged, _total(before), _total(after)
    )


def _total(nodes: Mapping[str, LockEntry]) -> float:
    return round(sum(entry.cost_usd or 0.0 for entry in nodes.values()), 6)


def _changed(name: str, was: LockEntry, now: LockEntry, changed_keys: set[str]) -> NodeChange:
    what: list[str] = []
    if was.endpoint != now.endpoint:
        what.append(f"endpoint {was.endpoint} -> {now.endpoint}")
    if was.at != now.at:
        what.append(f"frame {was.at} -> {now.at}")
    old_inputs = {tuple(i.at): i for i in was.inputs}
    new_inputs = {tuple(i.at): i for i in now.inputs}
    slots = set(old_inputs) | set(new_inputs)
    for at in sorted(slots, key=str):
        a, b = old_inputs.get(at), new_inputs.get(at)
        if a is None or b is None or a.node != b.node or a.url != b.url:
            what.append(f"input {format_key_path(at)}: {_source(a)} -> {_source(b)}")
        elif a.node is None and a.sha256 != b.sha256:
            what.append(f"input {format_key_path(at)} ({b.file or 'file'} changed)")
    prompts: dict[str, tuple[str, str]] = {}
    old_request, new_request = dict(was.request or {}), dict(now.request or {})
    media = {at[0] for at in slots if at}
    for key in sorted(set(old_request) | set(new_request)):
        if key in media or old_request.get(key) == new_request.get(key):
            continue
        if key in PROMPTS:
            prompts[key] = (str(old_request.get(key, "")), str(new_request.get(key, "")))
            what.append(key.replace("_", " "))
        elif key == "seed":
            what.append(f"seed {old_request.get(key)} -> {new_request.get(key)}")
        else:
            what.append(f"{key} {_short(old_request.get(key))} -> {_short(new_request.get(key))}")
    upstream = tuple(dep for dep in now.deps if dep in changed_keys and dep in was.deps)
    local = now.endpoint is None
    return NodeChange(
        name, "changed", now.kind, now.cost_usd, tuple(what), upstream, prompts, local
    )


def _source(item: LockedInput | None) -> str:
    if item is None:
        return "none"
    return item.node or item.file or item.url or "a file"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _without_media(side: Side) -> dict[str, Any]:
    request = dict(side.request or {})
    try:
        return fill_slots(request, dict.fromkeys(side.media, None))
    except (KeyError, IndexError, TypeError):
        return request


_WORDS = re.compile(r"\S+\s*|\s+")  # a word with the space after it


def prompt_diff(old: str, new: str) -> list[tuple[str, str]]:
    """The words of two prompts as ("same" | "del" | "ins", text) runs, in reading order."""
    return [
        (op, "".join(words)) for op, words in word_runs(_WORDS.findall(old), _WORDS.findall(new))
    ]


def word_runs(a: list[str], b: list[str]) -> list[tuple[str, list[str]]]:
    """Two sequences of words as ("same" | "del" | "ins", words) runs, in reading order."""
    runs: list[tuple[str, list[str]]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            runs.append(("same", a[i1:i2]))
            continue
        if i2 > i1:
            runs.append(("del", a[i1:i2]))
        if j2 > j1:
            runs.append(("ins", b[j1:j2]))
    return runs
