"""Fault injection: a small plan of rules saying what should go wrong, where and how often.

A rule (:class:`Fault`) has a ``kind``, an optional ``route`` and match on ``endpoint`` or
``prompt_contains``, and ``times`` (how often it fires; ``None`` means every time).

Route faults answer an HTTP request instead of the emulator:

- ``rate_limit``: 429 with ``Retry-After`` (seconds, ``retry_after``);
- ``ingress``: 502/503/504 (``status``, default 503) with nginx's HTML page and no
  ``x-fal-request-id``, which fal's clients recognise as an ingress error and retry;
- ``drop``: the connection is closed without any response;
- ``delay``: the response is held for ``seconds``, then the request is served normally;
- ``locked``: 403 "User is locked. Reason: Exhausted balance" (route ``submit`` by default, as
  on fal, where status GETs keep working for a locked account).

An answer fault fires after a submit was accepted:

- ``lose_answer``: the job is queued (and counted), then the connection is closed without
  the answer, after ``seconds`` (a lost 2xx; a runner killed while it waits never sees it).

Job faults are bound to a job when it is submitted:

- ``fail``: the job completes with an error; its status carries ``error``/``error_type`` and
  its result answers ``status`` (default 500) with fal's error body;
- ``expire``: the job completes but its result has expired (the result route answers 404).

A plan comes from the config, a JSON or YAML file (a list of rules, or ``{"faults": [...]}``)
or ``POST /_emulator/faults``, which replaces the plan of a running emulator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

ROUTES = (
    "submit",
    "status",
    "stream",
    "result",
    "cancel",
    "upload",
    "files",
    "token",
    "listing",
    "run",
    "any",
)
ROUTE_KINDS = ("rate_limit", "ingress", "drop", "delay", "locked")
ANSWER_KINDS = ("lose_answer",)
JOB_KINDS = ("fail", "expire")


class FaultSpecError(ValueError):
    """A fault plan that cannot be read; the message names the rule and the key."""


@dataclass
class Fault:
    """One rule of a fault plan (see the module docstring for the kinds)."""

    kind: str
    route: str = "any"
    times: int | None = 1
    endpoint: str | None = None
    prompt_contains: str | None = None
    status: int | None = None
    retry_after: float = 1.0
    seconds: float = 0.0
    error_type: str | None = None
    message: str | None = None
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ROUTE_KINDS + ANSWER_KINDS + JOB_KINDS:
            known = ", ".join(ROUTE_KINDS + ANSWER_KINDS + JOB_KINDS)
            raise FaultSpecError(f"unknown fault kind '{self.kind}' (known: {known})")
        if self.kind in ("locked", "lose_answer") and self.route == "any":
            self.route = "submit"
        if self.kind == "lose_answer" and self.route != "submit":
            raise FaultSpecError("lose_answer applies to submits only")
        if self.route not in ROUTES:
            raise FaultSpecError(f"unknown route '{self.route}' (known: {', '.join(ROUTES)})")
        if self.kind == "ingress" and self.status not in (None, 502, 503, 504):
            raise FaultSpecError("an ingress fault answers 502, 503 or 504")
        if self.times is not None and self.times < 0:
            raise FaultSpecError("times must be a count, or null for always")

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, route: str | None, endpoint: str | None, prompt: str | None) -> bool:
        if self.exhausted:
            return False
        if route is not None and self.route not in ("any", route):
            return False
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        return self.prompt_contains is None or self.prompt_contains in (prompt or "")

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultPlan:
    """The rules in force. The first matching rule that is not used up fires."""

    rules: list[Fault] = field(default_factory=list)

    def take_route_fault(
        self, route: str, endpoint: str | None = None, prompt: str | None = None
    ) -> Fault | None:
        """The route fault to apply to this HTTP request, counted as fired."""
        return self._take(ROUTE_KINDS, route, endpoint, prompt)

    def take_answer_fault(self, endpoint: str, prompt: str | None) -> Fault | None:
        """The fault that loses the answer to an accepted submit, counted as fired."""
        return self._take(ANSWER_KINDS, "submit", endpoint, prompt)

    def take_job_fault(self, endpoint: str, prompt: str | None) -> Fault | None:
        """The job fault to bind to a job being submitted, counted as fired."""
        return self._take(JOB_KINDS, None, endpoint, prompt)

    def _take(
        self, kinds: Sequence[str], route: str | None, endpoint: str | None, prompt: str | None
    ) -> Fault | None:
        for rule in self.rules:
            if rule.kind in kinds and rule.matches(route, endpoint, prompt):
                rule.fired += 1
                return rule
        return None

    def as_json(self) -> list[dict[str, Any]]:
        return [rule.as_json() for rule in self.rules]

    @classmethod
    def from_json(cls, data: object) -> FaultPlan:
        """A plan from parsed JSON/YAML: a list of rules or ``{"faults": [...]}``."""
        if isinstance(data, Mapping):
            extra = set(data) - {"faults"}
            if extra:
                raise FaultSpecError(f"unknown key(s) {sorted(extra)}; expected 'faults'")
            data = data.get("faults") or []
        if not isinstance(data, list):
            raise FaultSpecError("a fault plan is a list of rules")
        return cls([_rule(i, item) for i, item in enumerate(data)])

    @classmethod
    def load(cls, path: Path) -> FaultPlan:
        """A plan from a JSON or YAML file."""
        text = path.read_text()
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise FaultSpecError(f"{path}: not valid JSON or YAML: {exc}") from exc
        try:
            return cls.from_json(data)
        except FaultSpecError as exc:
            raise FaultSpecError(f"{path}: {exc}") from exc


_KEYS = {f.name for f in fields(Fault)} - {"fired"}


def _rule(index: int, item: object) -> Fault:
    if not isinstance(item, Mapping):
        raise FaultSpecError(f"faults[{index}]: a rule is a mapping with a 'kind'")
    unknown = set(item) - _KEYS
    if unknown:
        known = ", ".join(sorted(_KEYS))
        raise FaultSpecError(f"faults[{index}]: unknown key(s) {sorted(unknown)}; known: {known}")
    if "kind" not in item:
        raise FaultSpecError(f"faults[{index}]: missing 'kind'")
    try:
        return Fault(**{str(k): v for k, v in item.items()})
    except FaultSpecError as exc:
        raise FaultSpecError(f"faults[{index}]: {exc}") from exc
