"""The review file: what a director decided about a pipeline's shots, committed beside it.

``demo.yaml`` -> ``demo.review``. Plain text, one line per node, sorted by node name, so two
branches that review different shots change different lines and git merges them cleanly::

    # shotgraph review of demo.yaml: one line per node (shotgraph pick / approve / reject)
    intro approved=3f5a…(64 hex) note="lovely light"
    orbit take=2
    street take=3 rejected=9ab1…(64 hex) note="too dark: relight the street"

After the node's name, in this order, each optional:

- ``take=N``: the take the node's dependents use (a node with ``takes``); without it, take 1.
- ``approved=SHA256`` or ``rejected=SHA256``: the verdict on the node's output, named by its
  content hash. A verdict holds only for that exact output: once the node renders something
  else (its prompt changed, another take was picked), it is void.
- ``note="..."``: the director's words, as a JSON string (quotes and backslashes escaped).

Comments (``#``) and blank lines are allowed; the commands rewrite the file in this form.
This module is the only code that knows the format: reader, writer and the records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from runner.errors import Diagnostics, Location

REVIEW_SUFFIX = ".review"
MAX_REVIEW_BYTES = 1024 * 1024
_LINE = re.compile(
    r"(?P<node>[A-Za-z_][A-Za-z0-9_-]*)"
    r"(?:\s+take=(?P<take>[0-9]{1,4}))?"
    r"(?:\s+(?P<verdict>approved|rejected)=(?P<sha>[0-9a-f]{64}))?"
    r"(?:\s+note=(?P<note>\".*\"))?\s*"
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A director's verdict on one output of a node, by its content hash."""

    approved: bool
    sha256: str
    note: str = ""

    @property
    def word(self) -> str:
        return "approved" if self.approved else "rejected"


@dataclass(frozen=True, slots=True)
class NodeReview:
    """What the review file says about one node (``line``: where, for messages)."""

    take: int | None = None
    verdict: Verdict | None = None
    line: int | None = None


@dataclass(frozen=True)
class Review:
    """A pipeline's review file, read (or empty when there is none)."""

    path: Path | None = None
    nodes: Mapping[str, NodeReview] = field(default_factory=dict)

    @property
    def picks(self) -> dict[str, int]:
        return {name: r.take for name, r in self.nodes.items() if r.take is not None}

    @property
    def verdicts(self) -> dict[str, Verdict]:
        return {name: r.verdict for name, r in self.nodes.items() if r.verdict is not None}

    def where(self, node: str) -> Location:
        entry = self.nodes.get(node)
        return Location(self.path, entry.line if entry else None)

    def with_pick(self, node: str, take: int) -> Review:
        current = self.nodes.get(node, NodeReview())
        return replace(self, nodes={**self.nodes, node: replace(current, take=take)})

    def with_verdict(self, node: str, verdict: Verdict | None) -> Review:
        current = self.nodes.get(node, NodeReview())
        return replace(self, nodes={**self.nodes, node: replace(current, verdict=verdict)})

    def render(self, pipeline_file: str) -> str:
        """The file's text: a header, then one line per node, sorted."""
        lines = [
            f"# shotgraph review of {pipeline_file}: one line per node "
            "(shotgraph pick / approve / reject). Commit it."
        ]
        for name in sorted(self.nodes):
            entry = self.nodes[name]
            parts = [name]
            if entry.take is not None:
                parts.append(f"take={entry.take}")
            if entry.verdict is not None:
                parts.append(f"{entry.verdict.word}={entry.verdict.sha256}")
                if entry.verdict.note:
                    parts.append("note=" + json.dumps(entry.verdict.note, ensure_ascii=False))
            if len(parts) > 1:
                lines.append(" ".join(parts))
        return "\n".join(lines) + "\n"


def review_path(pipeline_path: Path) -> Path:
    """The review file of a pipeline: beside it, ``demo.yaml`` -> ``demo.review``."""
    return pipeline_path.with_name(f"{pipeline_path.stem}{REVIEW_SUFFIX}")


def parse_review(text: str, path: Path, diags: Diagnostics) -> Review:
    """The review file's text as a :class:`Review`; each malformed line is an error with its
    line number (and left out)."""
    nodes: dict[str, NodeReview] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = Location(path, number)
        match = _LINE.fullmatch(line)
        note = _note(match["note"]) if match and match["note"] else ""
        if match is None or note is None or (match["note"] and not match["verdict"]):
            diags.error(
                "review-line",
                f"cannot read this line of the review file: {line[:80]!r}",
                where,
                'write: NODE [take=N] [approved=SHA256|rejected=SHA256 [note="..."]]',
            )
            continue
        name = match["node"]
        if name in nodes:
            diags.error(
                "review-duplicate",
                f"node '{name}' has a second line (the first is line {nodes[name].line})",
                where,
                "keep one line per node",
            )
            continue
        take = int(match["take"]) if match["take"] else None
        verdict = (
            Verdict(match["verdict"] == "approved", match["sha"], note)
            if match["verdict"]
            else None
        )
        nodes[name] = NodeReview(take, verdict, number)
    return Review(path, nodes)


def _note(quoted: str) -> str | None:
    try:
        value = json.loads(quoted)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def check_review(
    review: Review, takes: Mapping[str, int], nodes: set[str], diags: Diagnostics
) -> None:
    """A pick must name a take the node has (it decides what its dependents read); a line
    about a node the pipeline no longer has is only a warning."""
    for name, entry in sorted(review.nodes.items()):
        where = review.where(name)
        if name not in nodes:
            diags.warning(
                "review-unknown-node",
                f"the review file names '{name}', which is not a node of the pipeline",
                where,
                "remove the line, or rename it with the node",
            )
            continue
        count = takes.get(name, 0)
        if entry.take is None:
            continue
        if count == 0:
            diags.error(
                "review-take",
                f"'{name}' has no takes, so take={entry.take} cannot be picked",
                where,
                f"add `takes: N` to nodes.{name}, or remove take= from this line",
            )
        elif not 1 <= entry.take <= count:
            diags.error(
                "review-take",
                f"'{name}' has {count} takes; there is no take {entry.take}",
                where,
                f"pick one of 1 to {count}",
            )
