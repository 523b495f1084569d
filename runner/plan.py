"""The plan: per node what it will cost, how long it is, and whether it will render and why.

Why a node renders, or that it will not, comes from the store and the lockfile together:

- cached: the store has a result for the node's key (and its file).
- attach: an earlier run submitted the job (it is in the journal); a run collects it without
  paying again. One that died while submitting it left the body it was sending: that is
  sent again (fal may have it already: it may be paid twice).
- new: neither the store nor the lockfile knows the node.
- request changed: the lockfile rendered this node from a different request (a parameter,
  the prompt, an input file's content).
- upstream changed: its own request is the same, but a node it reads changed.
- backend changed: the lockfile was rendered with the other backend.
- cache entry missing: the lockfile has this exact request, but this store does not (a fresh
  clone, another machine, a cleaned cache): it would render again, or ``replay`` it.

With a shared store, "this store" is the local one and the shared one behind it (:func:`look_in`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.compile.lock_memo import entries_of, lock_known_good
from runner.compile.sources import LocalFile, Upstream
from runner.compile.steps import Compiled, Step, fill_slots
from runner.errors import OverBudget
from runner.lock import Lock, LockEntry, parse_lock, project_lock_path, read_lock
from runner.review.gates import Gates, Wait, output_finder
from runner.store import JournalEntry, Store, is_store

if TYPE_CHECKING:  # asyncio: loaded only for a shared store
    from runner.store import TieredStore

# What a store says about a step: ("cached" | "render", why).
StatusOf = Callable[[Step], tuple[str, str]]


@dataclass(frozen=True)
class PlanRow:
    """One node of the plan."""

    step: Step
    status: str  # "cached" | "render" | "attach" (already submitted: collected, not paid)
    reason: str  # "new", "request changed", "upstream changed", "cache entry missing", ...
    shared: bool = False  # the very same request as an earlier row: one job serves both
    wait: Wait | None = None  # held behind an approval gate: not part of this run

    @property
    def cost(self) -> float:
        """What this node adds to the run: nothing when cached or sharing another's job."""
        return self.step.usd if self.status == "render" and not self.shared else 0.0

    @property
    def shown_status(self) -> str:
        return "wait" if self.wait is not None else self.status

    @property
    def shown_reason(self) -> str:
        if self.wait is not None:
            return f"approval of {self.wait.gate} ({self.wait.why})"
        return self.reason

    def as_json(self, *, verbose: bool = False) -> dict[str, Any]:
        step = self.step
        timing = step.timing
        estimate = step.estimate
        row: dict[str, Any] = {
            "node": step.name,
            "kind": step.kind,
            "endpoint": step.endpoint.id if step.endpoint else None,
            "status": self.shown_status,
            "reason": self.shown_reason,
            "frames": timing.num_frames if timing else None,
            "fps": timing.frame_rate if timing else None,
            "seconds": round(timing.seconds, 3) if timing and timing.seconds else None,
            "timing_assumed": bool(timing and timing.assumed),
            "estimated_usd": estimate.usd if estimate else (0.0 if not step.endpoint else None),
            "price_confirmed": estimate.confirmed if estimate else True,
            "price": estimate.as_json() if estimate else None,
            "seed": step.seed,
            "key": step.key,
            "deps": list(step.deps),
        }
        if self.wait is not None:
            row |= {"waiting_for": self.wait.gate, "then": self.status, "then_reason": self.reason}
        if step.takes:
            row |= {"take": step.take, "takes": step.takes}
        if verbose and step.body is not None:
            row["request"] = step.body
        return row


@dataclass(frozen=True)
class Plan:
    """Rows in run order and the total of what will render; what waits behind an approval
    gate is priced apart (``waiting_usd``), as it renders only once approved."""

    rows: tuple[PlanRow, ...]

    @property
    def total_usd(self) -> float:
        return round(sum(row.cost for row in self.rows if row.wait is None), 6)

    @property
    def waiting(self) -> dict[str, list[PlanRow]]:
        """The rows that wait, by the gate they wait for."""
        found: dict[str, list[PlanRow]] = {}
        for row in self.rows:
            if row.wait is not None:
                found.setdefault(row.wait.gate, []).append(row)
        return found

    @property
    def waiting_usd(self) -> float:
        return round(sum(row.cost for row in self.rows if row.wait is not None), 6)

    @property
    def unpriced(self) -> list[str]:
        """Nodes that will render but whose price fal does not publish."""
        return [
            r.step.name
            for r in self.rows
            if r.status == "render" and r.step.estimate is not None and r.step.estimate.usd is None
        ]

    @property
    def unconfirmed(self) -> list[str]:
        return [
            r.step.name
            for r in self.rows
            if r.status == "render"
            and r.step.estimate is not None
            and not r.step.estimate.confirmed
        ]

    def counts(self) -> Mapping[str, int]:
        out = {"render": 0, "cached": 0, "attach": 0}
        for row in self.rows:
            out[row.shown_status] = out.get(row.shown_status, 0) + 1
        return out


def always_render(step: Step) -> tuple[str, str]:
    """The status of every step when no store is consulted."""
    return "render", "no cache consulted"


def make_plan(
    compiled: Compiled,
    status_of: StatusOf = always_render,
    waits: Mapping[str, Wait] | None = None,
) -> Plan:
    rows: list[PlanRow] = []
    first_with_key: dict[str, str] = {}
    waits = waits or {}
    for step in compiled.steps.values():
        status, reason = status_of(step)
        first = first_with_key.setdefault(step.key, step.name)
        wait = waits.get(step.name)
        if first != step.name and status == "render":
            why = (
                f"take {step.take} of {step.takes}" if step.takes else f"same request as '{first}'"
            )
            rows.append(PlanRow(step, status, why, shared=True, wait=wait))
        else:
            rows.append(PlanRow(step, status, reason, wait=wait))
    return Plan(tuple(rows))


def plan_with_store(
    compiled: Compiled, root: Path, shared: TieredStore | None = None, opened: Store | None = None
) -> Plan:
    """The plan as the lockfile and the store at ``root`` (``opened``: the caller's; one not
    made yet reads as empty, and is not created) see it, and ``shared``, a tiered store."""
    lock = _plan_lock(compiled, root, shared)
    if shared is None:
        with contextlib.ExitStack() as stack:
            fresh = opened is None and is_store(root)  # else the caller's, or none yet
            store = stack.enter_context(Store.open(root)) if fresh else opened
            held = {} if isinstance(lock, Path) else waits(compiled, store, lock)  # no gates
            return make_plan(compiled, CacheStatus(compiled, store, lock), held)
    import asyncio  # here: only a shared store is asked asynchronously

    assert not isinstance(lock, Path)  # deferred only without a shared store
    view = asyncio.run(look_in(shared, compiled))
    status = CacheStatus(compiled, shared.local, lock, view)
    return make_plan(compiled, status, waits(compiled, shared.local, lock))


def _plan_lock(compiled: Compiled, root: Path, shared: TieredStore | None) -> Lock | Path | None:
    """The lockfile, read (a damaged one stops the plan here); or its path when this code
    wrote it, nobody touched it since and no gate needs it (entries are read when needed)."""
    lock_file = project_lock_path(compiled)
    if not lock_file.exists():
        return None
    gated = Gates(compiled.steps, compiled.pipeline.review).names
    if shared is None and not gated and is_store(root) and lock_known_good(root, lock_file):
        return lock_file
    return read_lock(lock_file)


def waits(compiled: Compiled, store: Store | None, lock: Lock | None) -> dict[str, Wait]:
    """The nodes that wait behind an approval gate, as the store and the lockfile see it."""
    gates = Gates(compiled.steps, compiled.pipeline.review)
    if not gates.names:
        return {}
    return gates.waiting(output_finder(compiled.steps, store, lock, compiled.backend))


def check_budget(the_plan: Plan, budget: float) -> None:
    """Refuse a plan whose estimate exceeds ``budget`` or that cannot be priced."""
    if the_plan.unpriced:
        raise OverBudget(
            f"cannot hold a budget: no known price for {', '.join(the_plan.unpriced)}",
            hint="use a family fal publishes prices for, or run without --budget",
        )
    if the_plan.total_usd > budget:
        raise OverBudget(
            f"the estimate ${the_plan.total_usd:.2f} exceeds the budget ${budget:.2f}",
            hint="raise --budget, or render fewer nodes (a cheaper model family; on 0.9.8, "
            "fewer frames)",
        )


@dataclass(frozen=True)
class SharedView:
    """What a shared store says about a pipeline's keys: the results it has, and the jobs
    its journal holds."""

    cached: frozenset[str]
    journal: Mapping[str, JournalEntry]


async def look_in(store: TieredStore, compiled: Compiled) -> SharedView | None:
    """Ask the shared store (if any) about every key of ``compiled``, many at once."""
    if store.remote is None:
        return None
    keys = [step.key for step in compiled.steps.values()]
    found, _ = await store.find_results(keys, compiled.backend)
    missing = [key for key in dict.fromkeys(keys) if key not in found]
    entries = await store.each(missing, store.journal)
    journal = {key: entry for key, entry in zip(missing, entries, strict=True) if entry}
    return SharedView(frozenset(found), journal)


# A job an earlier run's journal holds, by its state: the status a plan shows for it.
_JOURNALED = {
    "submitted": ("attach", "submitted by an earlier run, not paid again"),
    "submitting": ("render", "an earlier run died submitting it: sent again, maybe twice"),
}


class CacheStatus:
    """Answers :data:`StatusOf` for one compiled pipeline."""

    def __init__(
        self,
        compiled: Compiled,
        store: Store | None,
        lock: Lock | Path | None,
        shared: SharedView | None = None,
    ) -> None:
        self.compiled = compiled
        self.store = store
        self.shared = shared
        self._lock = lock  # or its file, read when a node's reason needs it
        self._changed: dict[str, bool] = {}
        # Every node's result in one query, not one per node.
        keys = (step.key for step in compiled.steps.values())
        local = store if shared is None else None
        self._cached = local.usable_results(keys, compiled.backend) if local else set()

    def __call__(self, step: Step) -> tuple[str, str]:
        stored = self._in_store(step.key)
        if stored is not None:
            return stored
        entry = self.locked.get(step.name)
        if entry is None:
            return "render", "new"
        if entry.key == step.key:
            return "render", "cache entry missing"
        if self.lock_backend is not None and self.lock_backend != self.compiled.backend:
            return "render", "backend changed"
        if not _own_request_changed(step, entry) and any(
            self._is_changed(dep) for dep in step.deps
        ):
            return "render", "upstream changed"
        return "render", "request changed"

    @cached_property
    def lock(self) -> Lock | None:
        """The lockfile, read on first use when it was deferred: only the entries of the
        nodes not cached and of their inputs (all a status reads)."""
        if not isinstance(self._lock, Path):
            return self._lock
        missing = [s for s in self.compiled.steps.values() if s.key not in self._cached]
        text = entries_of(self._lock, {s.name for s in missing}.union(*(s.deps for s in missing)))
        return read_lock(self._lock) if text is None else parse_lock(text, self._lock)

    @property
    def locked(self) -> Mapping[str, LockEntry]:
        return self.lock.nodes if self.lock is not None else {}

    @property
    def lock_backend(self) -> str | None:
        return self.lock.backend if self.lock is not None else None

    def _in_store(self, key: str) -> tuple[str, str] | None:
        """What the store (shared, else local) says of ``key``: a result, or a job its
        journal holds; None when it knows nothing."""
        if self.shared is not None:
            if key in self.shared.cached:
                return "cached", ""
            journaled = self.shared.journal.get(key)
        elif self.store is not None:
            if key in self._cached:
                return "cached", ""
            journaled = self.store.journal(key)
        else:
            return None
        return _JOURNALED.get(journaled.state) if journaled is not None else None

    def _is_changed(self, name: str) -> bool:
        """Whether a node's key differs from the lock's (so its dependents change too)."""
        if name not in self._changed:
            entry = self.locked.get(name)
            step = self.compiled.steps[name]
            self._changed[name] = entry is None or entry.key != step.key
        return self._changed[name]


def _own_request_changed(step: Step, entry: LockEntry) -> bool:
    """Whether the node's own request differs from the locked one, reading another node's
    output as "an input" whatever it is (that is the upstream's business)."""
    if entry.at is not None and str(step.at) != entry.at:
        return True
    if len(entry.inputs) != len(step.slots):
        return True
    for slot, item in zip(step.slots, entry.inputs, strict=True):
        source = slot.source
        if isinstance(source, Upstream):
            if item.node != source.node:
                return True
        elif isinstance(source, LocalFile):
            if item.sha256 != source.sha256:
                return True
        elif item.url != getattr(source, "url", None):
            return True
    if step.body is None:
        return False
    # Through JSON, so that both sides are JSON values (a tuple is a list) before comparing.
    current = json.loads(json.dumps(step.body))
    locked = json.loads(json.dumps(entry.request or {}))
    blank = dict.fromkeys((slot.pointer for slot in step.slots), None)
    try:
        return fill_slots(current, blank) != fill_slots(locked, blank)
    except (KeyError, IndexError, TypeError):
        return True


@dataclass(frozen=True)
class LockDrift:
    """How a compiled pipeline differs from its lock (``run --frozen`` refuses any)."""

    added: list[str]
    removed: list[str]
    changed: list[str]

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        parts = []
        for label, names in (
            ("new", self.added),
            ("gone", self.removed),
            ("changed", self.changed),
        ):
            if names:
                shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
                parts.append(f"{label}: {shown}")
        return "; ".join(parts)


def drift(compiled: Compiled, lock: Lock) -> LockDrift:
    locked = {name: entry.key for name, entry in lock.nodes.items()}
    current = {name: step.key for name, step in compiled.steps.items()}
    return LockDrift(
        added=sorted(set(current) - set(locked)),
        removed=sorted(set(locked) - set(current)),
        changed=sorted(n for n in set(current) & set(locked) if current[n] != locked[n]),
    )
