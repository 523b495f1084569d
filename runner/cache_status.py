"""Why a node will render, or that it will not: the store and the lockfile together.

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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runner.compiler import Compiled
from runner.inputs import LocalFile, Upstream
from runner.steps import Step, set_pointer
from runner.store import Store


class CacheStatus:
    """Answers :data:`runner.plan.StatusOf` for one compiled pipeline."""

    def __init__(
        self, compiled: Compiled, store: Store | None, lock: Mapping[str, Any] | None
    ) -> None:
        self.compiled = compiled
        self.store = store
        self.locked: Mapping[str, Any] = (lock or {}).get("nodes", {})
        self.lock_backend = (lock or {}).get("backend")
        self._changed: dict[str, bool] = {}

    def __call__(self, step: Step) -> tuple[str, str]:
        if self.store is not None:
            if self.store.result_for(step.key, self.compiled.backend) is not None:
                return "cached", ""
            entry = self.store.journal(step.key)
            if entry is not None and entry.state == "submitted":
                return "attach", "submitted by an earlier run, not paid again"
            if entry is not None and entry.state == "submitting":
                return "render", "an earlier run died submitting it: sent again, maybe twice"
        entry = self.locked.get(step.name)
        if entry is None:
            return "render", "new"
        if entry.get("key") == step.key:
            return "render", "cache entry missing"
        if self.lock_backend is not None and self.lock_backend != self.compiled.backend:
            return "render", "backend changed"
        if not _own_request_changed(step, entry) and any(
            self._is_changed(dep) for dep in step.deps
        ):
            return "render", "upstream changed"
        return "render", "request changed"

    def _is_changed(self, name: str) -> bool:
        """Whether a node's key differs from the lock's (so its dependents change too)."""
        if name not in self._changed:
            entry = self.locked.get(name)
            step = self.compiled.steps[name]
            self._changed[name] = entry is None or entry.get("key") != step.key
        return self._changed[name]


def _own_request_changed(step: Step, entry: Mapping[str, Any]) -> bool:
    """Whether the node's own request differs from the locked one, reading another node's
    output as "an input" whatever it is (that is the upstream's business)."""
    if str(step.at) != str(entry.get("at", step.at)):
        return True
    locked_inputs = entry.get("inputs", [])
    if len(locked_inputs) != len(step.slots):
        return True
    for slot, item in zip(step.slots, locked_inputs, strict=True):
        source = slot.source
        if isinstance(source, Upstream):
            if item.get("node") != source.node:
                return True
        elif isinstance(source, LocalFile):
            if item.get("sha256") != source.sha256:
                return True
        elif item.get("url") != getattr(source, "url", None):
            return True
    if step.body is None:
        return False
    current = json.loads(json.dumps(step.body))
    locked = json.loads(json.dumps(entry.get("request", {})))
    for slot in step.slots:
        for body in (current, locked):
            try:
                set_pointer(body, slot.pointer, None)
            except (KeyError, IndexError, TypeError):
                return True
    return bool(current != locked)
