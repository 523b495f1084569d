"""``shotgraph replay``: re-execute a lockfile's requests exactly, and check the outputs."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from runner.commands.common import echo_diagnostics
from runner.commands.running import execute, open_store, run_options
from runner.compile.keys import generation_key, keyed_body, media_key
from runner.compile.sources import LocalFile, MediaSource, Remote, Upstream
from runner.compile.steps import Slot, Step
from runner.errors import Diagnostic, Location, ShotgraphError, display_path
from runner.frame_at import parse_frame_at
from runner.lock import RESTORE_HINT, Lock, LockedInput, LockEntry, read_lock
from runner.ltx.pricing import Estimate
from runner.ltx.registry import registry
from runner.ltx.schema import schema_digest
from runner.pipeline.confine import Project, Refused, confine
from runner.run.backends import BACKENDS
from runner.store import Store
from runner.ui.summary import print_summary


@click.command()
@click.argument(
    "lockfile", type=click.Path(dir_okay=False, path_type=Path), metavar="PIPELINE.lock.json"
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    help="Default: the backend the lockfile was rendered with.",
)
@click.option(
    "--accept-drift",
    is_flag=True,
    help="Keep outputs that differ from the locked hashes (fal's renders are not "
    "bit-exact) instead of failing.",
)
@run_options
def replay(lockfile: Path, backend: str | None, accept_drift: bool, **options: Any) -> int:
    """Replay the locked requests: cached results are checked, missing ones re-rendered."""
    lock = read_lock(lockfile)
    echo_diagnostics(_drift_warnings(lockfile, lock))
    backend = backend or lock.backend
    # The lockfile is as untrusted as a pipeline: its paths obey the same rule.
    project = Project.of_pipeline(lockfile)
    base = Path(os.path.abspath(lockfile)).parent
    outputs = {name: _confined(project, rel, base, "writes") for name, rel in lock.outputs.items()}
    with open_store(project, options["cache_dir"], options["store_url"]) as store:
        steps = steps_from_lock(lock, base, store.local, backend, project)
        outcome = execute(
            steps,
            store,
            backend=backend,
            options=options,
            outputs=outputs,
            pipeline_name=lock.pipeline,
        )
    notes = []
    drifted = _drifted(lock, outcome.records)
    for name, (want, got) in sorted(drifted.items()):
        notes.append(f"{name}: output {got[:12]} differs from the locked {want[:12]}")
    if drifted and not accept_drift:
        print_summary(outcome, outputs, notes, backend=backend)
        click.echo(
            f"{len(drifted)} output(s) differ from {display_path(lockfile)}; fal's "
            "renders are not bit-exact: pass --accept-drift to keep them",
            err=True,
        )
        return outcome.exit_code or 1
    notes = notes or [f"every output matches {display_path(lockfile)}"]
    print_summary(outcome, outputs, notes, backend=backend)
    return outcome.exit_code


def _drift_warnings(lockfile: Path, lock: Lock) -> list[Diagnostic]:
    """A warning per node whose endpoint's committed schema is not the one its request was
    checked against (fal changed the endpoint's OpenAPI and the copy here was refreshed):
    the replay may not send what fal now expects, or may not mean what it meant."""
    lines = lockfile.read_text(encoding="utf-8").splitlines()
    warnings = []
    for name, entry in sorted(lock.nodes.items()):
        if entry.endpoint is None or entry.schema_sha256 is None:
            continue
        try:
            now = schema_digest(entry.endpoint)
        except OSError:
            continue  # an endpoint this shotgraph does not know: the replay says so itself
        if now == entry.schema_sha256:
            continue
        opening = f"{json.dumps(name, ensure_ascii=False)}:"
        line = next((i for i, t in enumerate(lines, 1) if t.lstrip().startswith(opening)), None)
        warnings.append(
            Diagnostic(
                "warning",
                "schema-drift",
                f"fal's schema of {entry.endpoint} changed since this lock was written "
                f"(checked against {entry.schema_sha256[:12]}, now {now[:12]}); the "
                "replayed request may be rejected or mean something else",
                Location(lockfile, line, ("nodes", name, "schema_sha256")),
                hint="compare schemas/endpoints/ in git with the commit of the lockfile; "
                "render again and commit the new lock once the change is understood",
            )
        )
    return warnings


def _drifted(lock: Lock, records: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    out = {}
    for name, entry in lock.nodes.items():
        record = records.get(name)
        want = entry.output.sha256
        if record is not None and record.output.sha256 != want:
            out[name] = (want, record.output.sha256)
    return out


def _confined(project: Project, written: str, base: Path, verb: str) -> Path:
    try:
        return confine(project, written, base)
    except Refused as refused:
        raise ShotgraphError(f"the lockfile {verb} {refused.message}", hint=RESTORE_HINT) from None


def steps_from_lock(
    lock: Lock, base: Path, store: Store, backend: str, project: Project
) -> dict[str, Step]:
    """The lock's entries as steps, in dependency order, inputs found by content hash, each
    keyed again from its own request (so a hand-edited entry cannot reuse another's cache)."""
    entries = lock.nodes
    steps: dict[str, Step] = {}
    visiting: set[str] = set()

    def add(name: str) -> None:
        if name in steps:
            return
        if name in visiting or name not in entries:
            raise ShotgraphError(
                f"the lockfile's node '{name}' is missing or circular", hint=RESTORE_HINT
            )
        visiting.add(name)
        entry = entries[name]
        try:
            for dep in entry.deps:
                add(dep)
            step = _step(name, entry, base, store, backend, steps, project)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ShotgraphError(
                f"the lockfile's entry for '{name}' is malformed ({exc!r})", hint=RESTORE_HINT
            ) from None
        if backend == lock.backend and step.key != entry.key:
            raise ShotgraphError(
                f"the lockfile's entry for '{name}' does not match its own request "
                "(was it edited by hand?)",
                hint=RESTORE_HINT,
            )
        steps[name] = step

    for name in entries:
        add(name)
    return steps


def _step(
    name: str,
    entry: LockEntry,
    base: Path,
    store: Store,
    backend: str,
    done: Mapping[str, Step],
    project: Project,
) -> Step:
    slots = tuple(Slot(item.at, _source(item, base, store, project)) for item in entry.inputs)
    deps = entry.deps
    upstream_keys = {dep: done[dep].key for dep in deps}
    at = parse_frame_at(entry.at) if entry.at is not None else None
    if not entry.endpoint or entry.request is None:
        sources = [slot.source for slot in slots]
        key = media_key(entry.kind, at, sources, upstream_keys)
        return Step(name=name, kind=entry.kind, deps=deps, key=key, slots=slots, at=at)
    endpoint = registry().endpoint_by_id(entry.endpoint)
    if endpoint is None:
        raise ShotgraphError(
            f"the lockfile's node '{name}' uses {entry.endpoint}, "
            "which this shotgraph does not know"
        )
    body = dict(entry.request)
    key = generation_key(endpoint.id, keyed_body(body, slots, upstream_keys), backend)
    return Step(
        name=name,
        kind=entry.kind,
        deps=deps,
        key=key,
        slots=slots,
        endpoint=endpoint,
        body=body,
        seed=entry.seed,
        estimate=Estimate(entry.cost_usd, True, "locked"),
    )


def _source(item: LockedInput, base: Path, store: Store, project: Project) -> MediaSource:
    if item.node is not None:
        return Upstream(item.node)
    if item.url is not None:
        return Remote(item.url)
    sha, size = item.sha256, item.size
    assert sha is not None and size is not None  # the reader requires them here
    if store.has_file(sha, size):
        return LocalFile(store.file_path(sha), sha, size)
    if item.file is not None:
        candidate = _confined(project, item.file, base, "reads")
        if candidate.is_file() and store.hash_file(candidate).sha256 == sha:
            return LocalFile(candidate, sha, size)
    raise ShotgraphError(
        f"the locked input {item.file or ''} (sha256 {sha[:12]}) is neither in the store "
        "nor in the project with that content",
        hint="check out the commit the lockfile was written at, or copy the file back",
    )
