"""What changed between two lockfiles, for a review, rendered: as text, markdown (a pull
request comment) or JSON. The comparison is :mod:`runner.review.lockdiff`'s."""

from __future__ import annotations

from typing import Any

from runner.review.lockdiff import LockChanges, NodeChange, word_runs
from runner.ui.plan_markdown import cell, money


def price(change: NodeChange) -> str:
    return "local" if change.local else money(change.cost_usd)


def prompt_diff(old: str, new: str) -> list[str]:
    """A word diff of two prompts as ``-``/``+`` lines, changed words in [brackets]."""
    minus: list[str] = []
    plus: list[str] = []
    for op, words in word_runs(old.split(), new.split()):
        if op == "same":
            minus += words
            plus += words
        elif op == "del":
            minus.append("[" + " ".join(words) + "]")
        else:
            plus.append("[" + " ".join(words) + "]")
    return ["- " + " ".join(minus), "+ " + " ".join(plus)]


# -- formats ---------------------------------------------------------------------------


def format_text(diff: LockChanges) -> str:
    lines = [f"lock diff: {diff.old_label} -> {diff.new_label}"]
    for change in diff.changes:
        cost = f", {price(change)}" if not change.local else ""
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


def format_markdown(diff: LockChanges) -> str:
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
                f"{price(change)} |"
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


def diff_json(diff: LockChanges) -> dict[str, Any]:
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
