"""What changed between two lockfiles, for a review: shots added, removed and changed (and
why: the prompt, with a diff, a parameter, an input file, the seed, or only a node it reads),
and what it does to the cost. As text, markdown (a pull request comment) or JSON."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.errors import format_key_path
from runner.lock import Lock, LockedInput, LockEntry
from runner.ui.plan_markdown import cell, money

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
        if self.change != "changed":
            return self.change
        parts = list(self.what)
        if self.upstream:
            parts.append(f"upstream changed ({', '.join(self.upstream)})")
        return "; ".join(parts) or "re-rendered (same request, another output)"

    @property
    def price(self) -> str:
        return "local" if self.local else money(self.cost_usd)


@dataclass(frozen=True)
class LockDiff:
    """Two locks compared, node by node."""

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


def compare(old: Lock | None, new: Lock | None, old_label: str, new_label: str) -> LockDiff:
    """The difference from ``old`` to ``new`` (None: no lockfile there)."""
    before = dict(old.nodes) if old is not None else {}
    after = dict(new.nodes) if new is not None else {}
    changed_keys = {
        name for name in after if name not in before or before[name].key != after[name].key
    }
    changes: list[NodeChange] = []
    unchanged = 0
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name), after.get(name)
        if was is None:
            assert now is not None
            local = now.endpoint is None
            changes.append(NodeChange(name, "added", now.kind, now.cost_usd, local=local))
        elif now is None:
            local = was.endpoint is None
            changes.append(NodeChange(name, "removed", was.kind, was.cost_usd, local=local))
        elif was.key != now.key or was.output.sha256 != now.output.sha256:
            changes.append(_changed(name, was, now, changed_keys))
        else:
            unchanged += 1
    return LockDiff(old_label, new_label, tuple(changes), unchanged, _total(before), _total(after))


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


def prompt_diff(old: str, new: str) -> list[str]:
    """A word diff of two prompts as ``-``/``+`` lines, changed words in [brackets]."""
    a, b = old.split(), new.split()
    minus, plus = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            minus += a[i1:i2]
            plus += b[j1:j2]
            continue
        if i2 > i1:
            minus.append("[" + " ".join(a[i1:i2]) + "]")
        if j2 > j1:
            plus.append("[" + " ".join(b[j1:j2]) + "]")
    return ["- " + " ".join(minus), "+ " + " ".join(plus)]


# -- formats ---------------------------------------------------------------------------


def format_text(diff: LockDiff) -> str:
    lines = [f"lock diff: {diff.old_label} -> {diff.new_label}"]
    for change in diff.changes:
        cost = f", {change.price}" if not change.local else ""
        head = f"  {change.change:<8} {change.name} ({change.kind}{cost})"
        if change.change == "changed":
            head += f": {change.reason()}"
        lines.append(head)
        for key, (old, new) in change.prompts.items():
            lines += [f"      {key}:", *(f"      {line}" for line in prompt_diff(old, new))]
    if not diff.changes:
        lines.append("  no change")
    lines.append(diff.summary())
    return "\n".join(lines) + "\n"


def format_markdown(diff: LockDiff) -> str:
    lines = [
        f"### Lock diff: `{diff.old_label}` → `{diff.new_label}`",
        "",
        f"**{cell(diff.summary())}**",
    ]
    if diff.changes:
        lines += ["", "| node | change | what | cost |", "| --- | --- | --- | ---: |"]
        for change in diff.changes:
            lines.append(
                f"| {cell(change.name)} | {change.change} | "
                f"{cell(change.reason() if change.change == 'changed' else change.kind)} | "
                f"{change.price} |"
            )
    prompted = [c for c in diff.changes if c.prompts]
    if prompted:
        lines += ["", "<details><summary>Prompt changes</summary>", ""]
        for change in prompted:
            for key, (old, new) in change.prompts.items():
                lines += [f"**{cell(change.name)}** `{key}`", "", "```diff"]
                lines += [*prompt_diff(old, new), "```", ""]
        lines.append("</details>")
    return "\n".join(lines) + "\n"


def diff_json(diff: LockDiff) -> dict[str, Any]:
    return {
        "old": diff.old_label,
        "new": diff.new_label,
        "added": [c.name for c in diff.of("added")],
        "removed": [c.name for c in diff.of("removed")],
        "changed": {
            c.name: {
                "what": list(c.what),
                "upstream": list(c.upstream),
                "prompts": {k: {"old": o, "new": n} for k, (o, n) in c.prompts.items()},
            }
            for c in diff.of("changed")
        },
        "unchanged": diff.unchanged,
        "old_total_usd": diff.old_total,
        "new_total_usd": diff.new_total,
        "delta_usd": diff.delta_usd,
        "render_usd": diff.render_usd,
    }
