"""What the report shows of each shot, and where each fact comes from.

- the request, seed, endpoint, length and estimated cost: the compiled pipeline (so a
  pipeline never run still has a report: every shot is "planned");
- the output, fal's request id and what was billed: the store's result for the shot's key,
  else the lockfile's entry with that very key (rendered, but not in this store);
- how the output came (rendered, cached, re-attached, failed): the newest run log of the
  pipeline; a job submitted and not collected yet: the journal;
- waiting for approval, the verdict and the note, the picked take: the review file, checked
  against the output's content hash (:mod:`runner.review.gates`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.compile.sources import LocalFile, Remote
from runner.compile.steps import Compiled, Step
from runner.lock import Lock
from runner.review.gates import Gates, output_finder
from runner.store import ResultRecord, Store

# Statuses, as shown.
PLANNED, RENDERED, CACHED, REATTACHED = "planned", "rendered", "cached", "re-attached"
FAILED, SUBMITTED, WAITING, LOCKED = "failed", "submitted", "waiting for approval", "not in store"


@dataclass(frozen=True)
class Output:
    """A shot's output: its content hash, type and size; ``file`` is the report's copy
    (relative to the report folder), None when the bytes are not in this store."""

    sha256: str
    content_type: str
    size: int
    file: str | None = None
    poster: str | None = None


@dataclass
class Shot:
    """One card of the contact sheet: a node, or one take of a node."""

    name: str
    node: str
    kind: str
    description: str
    step: Step
    status: str = PLANNED
    detail: str = ""  # why it waits, fal's error, ...
    output: Output | None = None
    request_id: str | None = None
    billed_usd: float | None = None
    verdict: str = ""  # "approved", "rejected", "void" (the verdict named another output)
    note: str = ""
    came_from: list[str] = field(default_factory=list)  # node names
    files: list[str] = field(default_factory=list)  # project files and URLs it reads
    used_by: list[str] = field(default_factory=list)
    takes: list[Shot] = field(default_factory=list)  # a node with takes: each take's card

    @property
    def prompt(self) -> str:
        return str((self.step.body or {}).get("prompt", ""))

    @property
    def negative_prompt(self) -> str:
        return str((self.step.body or {}).get("negative_prompt", ""))

    @property
    def family(self) -> str:
        return self.step.endpoint.family if self.step.endpoint else "local"

    @property
    def is_cut(self) -> bool:
        return self.kind == "stitch"


def collect_shots(
    compiled: Compiled, store: Store | None, lock: Lock | None, events: list[dict[str, Any]]
) -> list[Shot]:
    """Every node of the pipeline as a card, in run order; a node's takes inside its card."""
    steps = compiled.steps
    output_of = output_finder(steps, store, lock, compiled.backend)
    review = compiled.pipeline.review
    waits = Gates(steps, review).waiting(output_of)
    last = _last_outcomes(events, compiled.backend)
    used_by: dict[str, list[str]] = {}
    for step in steps.values():
        for dep in step.deps:
            used_by.setdefault(dep, []).append(step.name)
    shots: dict[str, Shot] = {}
    takes: dict[str, list[Shot]] = {}
    for name, step in steps.items():
        node = compiled.pipeline.nodes[step.node]
        shot = Shot(name, step.node, step.kind, node.description, step)
        shot.came_from = list(step.deps)
        shot.files = [
            _file_label(slot.source, compiled) for slot in step.slots if not _is_node(slot.source)
        ]
        shot.used_by = used_by.get(name, [])
        _outcome(shot, step, store, lock, last, compiled.backend)
        if name in waits:
            shot.status, shot.detail = WAITING, waits[name].describe()
        verdict = review.verdicts.get(name)
        if verdict is not None and step.take_of is None:
            current = shot.output.sha256 if shot.output else None
            shot.verdict = verdict.word if verdict.sha256 == current else "void"
            shot.note = verdict.note
        if step.take_of is not None:
            takes.setdefault(step.take_of, []).append(shot)
        else:
            shots[name] = shot
    for owner, found in takes.items():
        if owner in shots:
            shots[owner].takes = found
    return list(shots.values())


def _is_node(source: object) -> bool:
    return not isinstance(source, LocalFile | Remote)


def _file_label(source: object, compiled: Compiled) -> str:
    if isinstance(source, LocalFile):
        try:
            return str(source.path.relative_to(compiled.pipeline.base_dir))
        except ValueError:
            return source.path.name
    return str(getattr(source, "url", ""))


def _last_outcomes(events: list[dict[str, Any]], backend: str) -> dict[str, tuple[str, str]]:
    """Per node, how the newest run (on this backend) ended it: (status, detail)."""
    if not events or events[0].get("backend", backend) != backend:
        return {}
    found: dict[str, tuple[str, str]] = {}
    reattached: set[str] = set()
    for event in events:
        node, kind = event.get("node"), event.get("event")
        if not isinstance(node, str):
            continue
        if kind == "NodeSubmitted" and event.get("reattached"):
            reattached.add(node)
        elif kind == "NodeDone":
            found[node] = (REATTACHED if node in reattached else RENDERED, "")
        elif kind == "NodeCached":
            found[node] = (CACHED, "")
        elif kind == "NodeFailed":
            found[node] = (FAILED, str(event.get("error", "")))
    return found


def _outcome(
    shot: Shot,
    step: Step,
    store: Store | None,
    lock: Lock | None,
    last: Mapping[str, tuple[str, str]],
    backend: str,
) -> None:
    record: ResultRecord | None = store.result_for(step.key, backend) if store else None
    ran, detail = last.get(step.name, ("", ""))
    if record is not None:
        shot.status = ran if ran in (RENDERED, REATTACHED) else CACHED
        shot.output = Output(record.output.sha256, record.content_type, record.output.size)
        shot.request_id = record.request_id
        billed = record.extra.get("billed_usd")
        shot.billed_usd = float(billed) if isinstance(billed, int | float) else None
        return
    entry = lock.nodes.get(step.name) if lock is not None else None
    if entry is not None and entry.key == step.key:
        out = entry.output
        shot.status, shot.detail = LOCKED, "rendered (see the lockfile), not in this store"
        shot.output = Output(out.sha256, out.content_type, out.size)
        shot.request_id = entry.request_id
        return
    journaled = store.journal(step.key) if store is not None else None
    if journaled is not None and journaled.state == "submitted":
        shot.status, shot.detail = SUBMITTED, "submitted, not collected yet: run again"
    elif ran == FAILED:
        shot.status, shot.detail = FAILED, detail
