"""The lockfile: what a pipeline rendered, exactly, so anyone can replay it. This is the only
code that knows its format: :class:`Lock` and :class:`LockEntry`, the writer, the reader.

Written beside the pipeline (``demo.yaml`` -> ``demo.lock.json``) after a run in which every
node has a result, and meant to be committed. One entry per node, on one line of its own,
keys sorted, no timestamps: a rerun with nothing new leaves it byte-identical, and two
branches that render different nodes change different lines, so git merges them cleanly.
Entries are separated by a line holding only the comma: git takes two changes on adjacent
lines for a conflict, and the comma line is never changed (adding or removing the last node
does not touch the one before it).
Per node: the cache key, the endpoint, the full request with media as content hashes
(``sha256:...``; another node's output is that output's hash), the seed sent and the one fal
returned, fal's request id, the output's hash and size (and its audio stream, when it has
sound: codec, sample rate, channels, length), the estimated cost, and the sha256 of the
endpoint schema the request was checked against (``replay`` warns when it changed).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import atomic
from runner.compile.sources import LocalFile, Remote, Upstream
from runner.compile.steps import JsonPath, Step, fill_slots
from runner.errors import ShotgraphError
from runner.ltx.schema import schema_digest
from runner.pipeline.confine import Refused, confine

if TYPE_CHECKING:
    # Types only: reading a lock (replay, gc) need not load the compiler or the store.
    from runner.compile.steps import Compiled
    from runner.store import ResultRecord

LOCK_VERSION = 1
LOCK_SUFFIX = ".lock.json"
RESTORE_HINT = "restore the lockfile from git, or run the pipeline again to write it"
# Directories that never hold a project's lockfiles and can be large.


@dataclass(frozen=True)
class LockedInput:
    """A media input of a node and where its request takes it (``at``): a project ``file``
    or another ``node``'s output (both with the content's hash and size), or a ``url``."""

    at: JsonPath
    sha256: str | None = None
    size: int | None = None
    file: str | None = None  # relative to the lockfile's directory
    node: str | None = None
    url: str | None = None

    def as_json(self) -> dict[str, Any]:
        fields = {"sha256": self.sha256, "size": self.size, "file": self.file}
        fields |= {"node": self.node, "url": self.url}
        return {"at": list(self.at)} | {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class LockedOutput:
    """What a node produced, by content; ``audio`` its sound's facts (None: silent)."""

    sha256: str
    size: int
    content_type: str
    audio: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class LockEntry:
    """One node of a lock. A generation step has an ``endpoint`` and its full ``request``
    (media as ``sha256:`` hashes); a local media step (frame, stitch) has neither."""

    kind: str
    key: str
    deps: tuple[str, ...]
    inputs: tuple[LockedInput, ...]
    output: LockedOutput
    at: str | None = None  # the frame a frame step takes
    endpoint: str | None = None
    request: Mapping[str, Any] | None = None
    seed: int | None = None
    returned_seed: Any = None  # what fal answered, verbatim
    request_id: str | None = None
    cost_usd: float | None = None
    # sha256 of the endpoint's request schema the request was checked against
    # (runner.ltx.schema.schema_digest); None in locks written before it was recorded.
    schema_sha256: str | None = None

    def as_json(self) -> dict[str, Any]:
        output = self.output
        entry: dict[str, Any] = {
            "kind": self.kind,
            "key": self.key,
            "deps": list(self.deps),
            "inputs": [item.as_json() for item in self.inputs],
            "output": {
                "sha256": output.sha256,
                "size": output.size,
                "content_type": output.content_type,
            },
        }
        if output.audio is not None:
            entry["output"]["audio"] = dict(output.audio)
        if self.endpoint is not None:
            entry.update(
                endpoint=self.endpoint,
                request=self.request,
                seed=self.seed,
                returned_seed=self.returned_seed,
                request_id=self.request_id,
                cost_usd=self.cost_usd,
            )
            if self.schema_sha256 is not None:
                entry["schema_sha256"] = self.schema_sha256
        if self.at is not None:
            entry["at"] = self.at
        return entry


@dataclass(frozen=True)
class Lock:
    """A lockfile: its pipeline, the backend it rendered with, where the outputs went
    (relative to the lockfile's directory) and every node."""

    pipeline: str
    file: str
    backend: str
    outputs: Mapping[str, str] = field(default_factory=dict)
    nodes: Mapping[str, LockEntry] = field(default_factory=dict)

    def render(self) -> str:
        """Sorted JSON with each node's entry on one line (the "nodes" mapping last)."""
        head = {
            "lock_version": LOCK_VERSION,
            "pipeline": self.pipeline,
            "file": self.file,
            "backend": self.backend,
            "outputs": dict(self.outputs),
        }
        lines = ["{", *(f"  {_compact(key)}: {_compact(head[key])}," for key in sorted(head))]
        nodes = sorted(self.nodes.items())
        lines.append('  "nodes": {')
        for i, (name, entry) in enumerate(nodes):
            if i:
                lines.append("    ,")  # see the module docstring
            lines.append(f"    {_compact(name)}: {_compact(entry.as_json())}")
        lines += ["  }", "}"]
        return "\n".join(lines) + "\n"


# One encoder for every entry: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def _compact(value: Any) -> str:
    return _ENCODER.encode(value)


def lock_path(pipeline_path: Path) -> Path:
    """The lockfile of a pipeline: beside it, ``demo.yaml`` -> ``demo.lock.json``."""
    return pipeline_path.with_name(f"{pipeline_path.stem}{LOCK_SUFFIX}")


def project_lock_path(compiled: Compiled) -> Path:
    """The lockfile beside a pipeline, which obeys the confinement rule like every path of
    the pipeline: a lockfile committed as a symlink to a file elsewhere is refused."""
    pipeline = compiled.pipeline
    path = lock_path(pipeline.path)
    try:
        confine(pipeline.project, path.name, pipeline.base_dir)
    except Refused as refused:
        raise ShotgraphError(f"the lockfile {refused.message}", hint=refused.hint) from None
    return path


# -- writing ---------------------------------------------------------------------------


def build_lock(
    compiled: Compiled,
    records: Mapping[str, ResultRecord],
    outputs: Mapping[str, Path],
    previous: Lock | None = None,
) -> Lock:
    """The lock of a rendered pipeline. A node without a record (held behind an approval
    gate) keeps its ``previous`` entry if that has its very key, else is left out."""
    pipeline = compiled.pipeline
    # Input and output paths are real paths (runner/pipeline/confine.py): relative to the real
    # directory of the pipeline, they read the same on every machine.
    base = Path(os.path.realpath(pipeline.base_dir))
    old = previous.nodes if previous is not None else {}
    kept = {n: e for n, e in old.items() if n in compiled.steps and e.key == compiled.steps[n].key}
    return Lock(
        pipeline=pipeline.name,
        file=pipeline.path.name,
        backend=compiled.backend,
        outputs={name: os.path.relpath(path, base) for name, path in outputs.items()},
        nodes={
            name: _entry(step, records, base) if name in records else kept[name]
            for name, step in compiled.steps.items()
            if name in records or name in kept
        },
    )


def _entry(step: Step, records: Mapping[str, ResultRecord], base: Path) -> LockEntry:
    record = records[step.name]
    inputs = []
    for slot in step.slots:
        source, where = slot.source, slot.pointer
        if isinstance(source, LocalFile):
            relative = os.path.relpath(source.path, base)
            inputs.append(LockedInput(where, source.sha256, source.size, file=relative))
        elif isinstance(source, Upstream):
            made = records[source.node].output
            inputs.append(LockedInput(where, made.sha256, made.size, node=source.node))
        else:
            assert isinstance(source, Remote)
            inputs.append(LockedInput(where, url=source.url))
    sound = record.extra.get("audio")
    audio = sound if isinstance(sound, Mapping) else None
    output = LockedOutput(record.output.sha256, record.output.size, record.content_type, audio)
    frame = str(step.at) if step.at is not None else None
    entry = LockEntry(step.kind, step.key, step.deps, tuple(inputs), output, at=frame)
    if step.endpoint is None or step.body is None:
        return entry
    hashed = {item.at: f"sha256:{item.sha256}" for item in inputs if item.sha256 is not None}
    request = fill_slots(step.body, hashed)
    return replace(
        entry,
        endpoint=step.endpoint.id,
        request=request,
        seed=step.seed,
        returned_seed=record.extra.get("returned_seed"),
        request_id=record.request_id,
        cost_usd=record.cost_usd,
        schema_sha256=schema_digest(step.endpoint.id),
    )


def write_lock(path: Path, lock: Lock) -> bool:
    """Write atomically; False (and nothing touched) when the content is the same, once
    what the lock already says about unchanged outputs is kept (:func:`keep_rendered`)."""
    text, changed = lock_text(path, lock)
    if changed:
        atomic.write_text(path, text)
    return changed


def lock_text(path: Path, lock: Lock) -> tuple[str, bool]:
    """The text ``path`` is to hold for ``lock`` (:func:`keep_rendered` applied to what it
    holds now), and whether that differs from what it holds."""
    text = lock.render()
    if path.is_file():
        existing = path.read_text(encoding="utf-8")
        if existing == text:
            return text, False
        with contextlib.suppress(ShotgraphError):  # a damaged lockfile is simply replaced
            text = keep_rendered(lock, parse_lock(existing, path)).render()
        if existing == text:
            return text, False
    return text, True


def keep_rendered(lock: Lock, previous: Lock) -> Lock:
    """``lock``, keeping ``previous``'s request id and returned seed for every node whose key
    and output are the same in both. A lock records what was rendered: the same request
    that produced the very same bytes is the same render, whichever store served it or
    whoever rendered it again, so a run that renders nothing new never churns the file."""
    nodes = dict(lock.nodes)
    for name, entry in lock.nodes.items():
        was = previous.nodes.get(name)
        if was and (was.key, was.output, was.endpoint) == (entry.key, entry.output, entry.endpoint):
            nodes[name] = replace(entry, request_id=was.request_id, returned_seed=was.returned_seed)
    return replace(lock, nodes=nodes)


# -- reading ---------------------------------------------------------------------------


def read_lock(path: Path) -> Lock:
    """The lock at ``path``, every field checked: a damaged one is a user error that says
    which entry and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ShotgraphError(
            f"no lockfile at {path}", hint="run the pipeline once to write it, then commit it"
        ) from None
    except (OSError, ValueError) as exc:
        raise ShotgraphError(f"cannot read the lockfile {path}: {exc}", hint=RESTORE_HINT) from None
    return parse_lock(text, path)


def parse_lock(text: str, path: Path) -> Lock:
    """A lock from its text (a file's, or a git revision's: ``path`` names it in messages)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        if path.suffix in (".yaml", ".yml"):
            raise ShotgraphError(
                f"{path} is a pipeline, not a lockfile",
                hint=f"replay takes the lockfile a run writes: {lock_path(path)}",
            ) from None
        raise ShotgraphError(
            f"cannot read the lockfile {path}: {exc}",
            hint="restore it from git (git checkout -- FILE)",
        ) from None
    if not isinstance(document, dict) or document.get("lock_version") != LOCK_VERSION:
        raise ShotgraphError(
            f"{path} is not a version {LOCK_VERSION} shotgraph lockfile",
            hint="a lockfile is the PIPELINE.lock.json a run writes",
        )
    where = f"the lockfile {path}"
    try:
        outputs = _get(document, "outputs", dict)
        lock = Lock(
            pipeline=_get(document, "pipeline", str),
            file=_get(document, "file", str),
            backend=_get(document, "backend", str),
            outputs={name: _typed(rel, str, f"outputs.{name}") for name, rel in outputs.items()},
        )
        entries = {}
        for name, entry in _get(document, "nodes", dict).items():
            where = f"the lockfile's entry for '{name}'"
            entries[name] = _read_entry(_typed(entry, dict, "the entry"))
    except _Malformed as exc:
        raise ShotgraphError(f"{where} is malformed ({exc})", hint=RESTORE_HINT) from None
    return replace(lock, nodes=entries)


class _Malformed(ValueError):
    """A field of a lockfile that is missing or of the wrong type."""


_MISSING: Any = object()


def _typed(value: Any, kind: type[Any] | tuple[type[Any], ...], name: str) -> Any:
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise _Malformed(f"{name} is {value!r}")
    return value


def _get(data: Mapping[str, Any], name: str, kind: Any, default: Any = _MISSING) -> Any:
    if name not in data:
        if default is _MISSING:
            raise _Malformed(f"no '{name}'")
        return default
    return _typed(data[name], kind, name)


def _read_entry(data: Mapping[str, Any]) -> LockEntry:
    output = _get(data, "output", dict)
    endpoint = _get(data, "endpoint", (str, type(None)), None)
    entry = LockEntry(
        kind=_get(data, "kind", str),
        key=_get(data, "key", str),
        deps=tuple(_typed(d, str, "a dep") for d in _get(data, "deps", list, [])),
        inputs=tuple(_read_input(_typed(i, dict, "an input")) for i in _get(data, "inputs", list)),
        output=LockedOutput(
            _get(output, "sha256", str),
            _get(output, "size", int),
            _get(output, "content_type", str),
            _get(output, "audio", dict, None),
        ),
        at=_get(data, "at", str, None),
    )
    if endpoint is None:
        return entry
    cost = _get(data, "cost_usd", (int, float, type(None)), None)
    return replace(
        entry,
        endpoint=endpoint,
        request=_get(data, "request", dict),
        seed=_get(data, "seed", (int, type(None)), None),
        returned_seed=data.get("returned_seed"),
        request_id=_get(data, "request_id", (str, type(None)), None),
        cost_usd=None if cost is None else float(cost),
        schema_sha256=_get(data, "schema_sha256", str, None),
    )


def _read_input(data: Mapping[str, Any]) -> LockedInput:
    at = tuple(_typed(part, (str, int), "a part of 'at'") for part in _get(data, "at", list))
    if "url" in data:
        return LockedInput(at, url=_get(data, "url", str))
    return LockedInput(
        at,
        sha256=_get(data, "sha256", str),
        size=_get(data, "size", int),
        file=_get(data, "file", str, None),
        node=_get(data, "node", str, None),
    )
