"""The lockfile: what a pipeline rendered, exactly, so anyone can replay it.

Written beside the pipeline (``demo.yaml`` -> ``demo.lock.json``) after a run in which every
node has a result, and meant to be committed. One entry per node, on one line of its own,
keys sorted, no timestamps: a rerun with nothing new leaves it byte-identical, and two
branches that render different nodes change different lines, so git merges them cleanly.
Per node: the cache key, the endpoint, the full request with media as content hashes
(``sha256:...``; another node's output is that output's hash), the seed sent and the one fal
returned, fal's request id, the output's hash and size, and the estimated cost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import atomic
from runner.compiler import Compiled
from runner.confine import Refused, confine
from runner.errors import ShotgraphError
from runner.inputs import LocalFile, Remote, Upstream
from runner.steps import Step, copy_along, set_pointer
from runner.store import ResultRecord

LOCK_VERSION = 1


def lock_path(pipeline_path: Path) -> Path:
    return pipeline_path.with_name(f"{pipeline_path.stem}.lock.json")


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


def build_lock(
    compiled: Compiled, records: Mapping[str, ResultRecord], outputs: Mapping[str, Path]
) -> dict[str, Any]:
    """The lock document of a fully rendered pipeline."""
    pipeline = compiled.pipeline
    # Input and output paths are real paths (runner/confine.py): relative to the real
    # directory of the pipeline, they read the same on every machine.
    base = Path(os.path.realpath(pipeline.base_dir))
    nodes = {}
    for name, step in sorted(compiled.steps.items()):
        nodes[name] = _entry(step, records, base)
    return {
        "lock_version": LOCK_VERSION,
        "pipeline": pipeline.name,
        "file": pipeline.path.name,
        "backend": compiled.backend,
        "outputs": {name: os.path.relpath(path, base) for name, path in sorted(outputs.items())},
        "nodes": nodes,
    }


def _entry(step: Step, records: Mapping[str, ResultRecord], base: Path) -> dict[str, Any]:
    record = records[step.name]
    inputs = []
    for slot in step.slots:
        source = slot.source
        item: dict[str, Any] = {"at": list(slot.pointer)}
        if isinstance(source, LocalFile):
            item.update(
                sha256=source.sha256, size=source.size, file=os.path.relpath(source.path, base)
            )
        elif isinstance(source, Upstream):
            output = records[source.node].output
            item.update(sha256=output.sha256, size=output.size, node=source.node)
        else:
            assert isinstance(source, Remote)
            item.update(url=source.url)
        inputs.append(item)
    entry: dict[str, Any] = {
        "kind": step.kind,
        "key": step.key,
        "deps": list(step.deps),
        "inputs": inputs,
        "output": {
            "sha256": record.output.sha256,
            "size": record.output.size,
            "content_type": record.content_type,
        },
    }
    if step.endpoint is not None and step.body is not None:
        request = dict(step.body)
        for slot, item in zip(step.slots, inputs, strict=True):
            if "sha256" in item:
                copy_along(request, slot.pointer)
                set_pointer(request, slot.pointer, f"sha256:{item['sha256']}")
        entry.update(
            endpoint=step.endpoint.id,
            request=request,
            seed=step.seed,
            returned_seed=record.extra.get("returned_seed"),
            request_id=record.request_id,
            cost_usd=record.cost_usd,
        )
    if step.at is not None:
        entry["at"] = str(step.at)
    return entry


def render_lock(document: Mapping[str, Any]) -> str:
    """Sorted JSON with each node's entry on one line (the "nodes" mapping last)."""
    lines = ["{"]
    for key in sorted(k for k in document if k != "nodes"):
        lines.append(f"  {_compact(key)}: {_compact(document[key])},")
    nodes = sorted(document.get("nodes", {}).items())
    lines.append('  "nodes": {')
    for i, (name, entry) in enumerate(nodes):
        comma = "," if i < len(nodes) - 1 else ""
        lines.append(f"    {_compact(name)}: {_compact(entry)}{comma}")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def write_lock(path: Path, document: Mapping[str, Any]) -> bool:
    """Write atomically; False (and nothing touched) when the content is the same."""
    text = render_lock(document)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    atomic.write_text(path, text)
    return True


def read_lock(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShotgraphError(
            f"no lockfile at {path}", hint="run the pipeline once to write it, then commit it"
        ) from None
    except (OSError, ValueError) as exc:
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
    return document


@dataclass(frozen=True)
class LockDrift:
    """How a compiled pipeline differs from its lock."""

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


def drift(compiled: Compiled, lock: Mapping[str, Any]) -> LockDrift:
    locked = {name: entry.get("key") for name, entry in lock.get("nodes", {}).items()}
    current = {name: step.key for name, step in compiled.steps.items()}
    return LockDrift(
        added=sorted(set(current) - set(locked)),
        removed=sorted(set(locked) - set(current)),
        changed=sorted(n for n in set(current) & set(locked) if current[n] != locked[n]),
    )
