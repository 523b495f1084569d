"""``shotgraph cache``: inspect, verify and prune the local store (``.shotgraph/``), and the
team's shared store when the project has one (``--store``, ``$SHOTGRAPH_STORE`` or
``shotgraph.toml``): each command then reports on both."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from runner.commands.common import shared_store, store_url_option
from runner.commands.lockfiles import git_keys, lock_keys, working_tree_keys
from runner.errors import ShotgraphError
from runner.pipeline.load import find_project_root
from runner.report.media import prune_posters
from runner.run.backends import clear_local_state, local_state_bytes
from runner.store import GC_GRACE, Store, gc_store, resolve_store_root, store_info, verify_store
from runner.ui.reporters import RunLog

F = TypeVar("F", bound=Callable[..., Any])
MB = 1024 * 1024


def store_options(func: F) -> F:
    """``--cache-dir``, ``--store``, ``--project`` and ``--json``, shared by every cache
    command."""
    func = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)
    func = store_url_option(func)
    func = click.option(
        "--project",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        help="Project root (default: the nearest directory above here with .git).",
    )(func)
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="The store (default: $SHOTGRAPH_CACHE_DIR, else <project>/.shotgraph).",
    )(func)


def locate(cache_dir: Path | None, project: Path | None) -> tuple[Path, Path]:
    """(project root, store root) from the options, the environment and the working directory."""
    root = (project or find_project_root(Path.cwd())).resolve()
    return root, resolve_store_root(root, cache_dir)


def emit(as_json: bool, data: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        for line in lines:
            click.echo(line)


def mb(size: int) -> str:
    return f"{size / MB:,.1f} MB"


def no_store(store_root: Path, as_json: bool) -> int:
    emit(as_json, {"store": str(store_root), "exists": False}, [f"no store at {store_root}"])
    return 0


@click.group()
def cache() -> None:
    """Inspect and maintain the store of cached results, media and in-flight jobs."""


@cache.command()
@store_options
def info(cache_dir: Path | None, store_url: str | None, project: Path | None, as_json: bool) -> int:
    """What the store holds and how much space it takes."""
    project_root, store_root = locate(cache_dir, project)
    remote = shared_store(project_root, store_url)
    if remote is not None:
        from runner.store.remote_maintenance import remote_info

        shared = asyncio.run(remote_info(remote))
        emit(
            as_json,
            {"shared": shared.as_dict()},
            [
                f"shared     {shared.url}",
                f"files      {shared.files:,} ({mb(shared.file_bytes)})",
                f"results    {shared.results:,}",
                f"uploads    {shared.uploads:,}",
                f"in flight  {shared.journal:,} ({shared.released:,} released)",
                f"runs       {shared.runs:,} with a lease",
                "",
            ],
        )
    if not store_root.exists():
        return no_store(store_root, as_json)
    with Store.open(store_root, read_only=True) as store:
        found = store_info(store)
    emulator_bytes, log_bytes = local_state_bytes(store_root), RunLog.disk_bytes(store_root)
    emit(
        as_json,
        {
            "store": str(store_root),
            "exists": True,
            **found.as_dict(),
            "emulator_bytes": emulator_bytes,
            "log_bytes": log_bytes,
        },
        [
            f"store      {store_root}",
            f"files      {found.files:,} ({mb(found.file_bytes)})",
            f"results    {found.results:,}",
            f"uploads    {found.uploads:,}",
            f"in flight  {found.journal:,} ({found.submitted:,} submitted)",
            f"inputs     {found.hashes:,} hashed",
            f"temporary  {found.tmp_files:,} files",
            f"emulator   {mb(emulator_bytes)} (the local backend's jobs and files)",
            f"logs       {mb(log_bytes)}",
            f"on disk    {mb(found.disk_bytes)}",
        ],
    )
    return 0


@cache.command()
@store_options
@click.option(
    "--repair", is_flag=True, help="Delete corrupt files and the results that point to them."
)
def verify(
    cache_dir: Path | None,
    store_url: str | None,
    project: Path | None,
    as_json: bool,
    repair: bool,
) -> int:
    """Rehash every stored file; exit 1 if something is corrupt or missing (and not repaired)."""
    project_root, store_root = locate(cache_dir, project)
    remote = shared_store(project_root, store_url)
    shared_ok = True
    if remote is not None:
        from runner.store.remote_maintenance import verify_remote

        with Store.open(store_root) as scratch:
            shared = asyncio.run(verify_remote(remote, scratch.tmp_dir(), repair=repair))
        shared_ok = shared.ok
        lines = [f"shared store {remote.url}"]
        lines += _verify_lines(shared.files_checked, shared.bytes_checked, shared, repair)
        emit(as_json, {"shared": shared.as_dict()}, [*lines, ""])
    if not store_root.exists():
        no_store(store_root, as_json)
        return 0 if shared_ok else 1
    # Read-only unless repairing: verifying must work on a disk too full to write a byte.
    with Store.open(store_root, read_only=not repair) as store:
        report = verify_store(store, repair=repair)
    lines = _verify_lines(report.files_checked, report.bytes_checked, report, repair)
    emit(as_json, {"store": str(store_root), **report.as_dict()}, lines)
    return 0 if report.ok and shared_ok else 1


def _verify_lines(files: int, size: int, report: Any, repair: bool) -> list[str]:
    lines = [f"checked {files:,} files ({mb(size)})"]
    lines += [f"corrupt file   {sha}" for sha in report.corrupt]
    lines += [f"missing output for result {key}" for key in report.missing]
    lines += [f"unreadable result record {key}" for key in report.unreadable]
    if report.clean:
        lines.append("ok")
    elif repair:
        lines.append(
            f"repaired: removed {report.files_removed} file(s) and "
            f"{report.records_removed} result record(s); the next run renders them again"
        )
    else:
        lines.append("problems found; run `shotgraph cache verify --repair` to remove them")
    return lines


@cache.command()
@store_options
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option(
    "--all",
    "keep_none",
    is_flag=True,
    help="Keep no result, even when no lockfile is found.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=GC_GRACE,
    show_default=True,
    metavar="SECONDS",
    help="Spare anything newer than this (a run may be in progress).",
)
@click.argument("lockfiles", nargs=-1, type=click.Path(dir_okay=False, exists=True, path_type=Path))
def gc(
    cache_dir: Path | None,
    store_url: str | None,
    project: Path | None,
    as_json: bool,
    dry_run: bool,
    keep_none: bool,
    grace: float,
    lockfiles: tuple[Path, ...],
) -> int:
    """Remove results no lockfile references, the files only they used, and expired uploads.

    Keeps the cache keys of the given LOCKFILEs, or of every *.lock.json under the project
    (for a shared store, also those of every git branch and tag). Never removes a submitted
    job or a claim whose run may still be alive.
    """
    project_root, store_root = locate(cache_dir, project)
    remote = shared_store(project_root, store_url)
    if remote is None and not store_root.exists():
        return no_store(store_root, as_json)
    if keep_none:
        if lockfiles:
            raise click.UsageError("--all keeps no result; do not also name lockfiles")
        sources: list[Path] = []
        keep: set[str] = set()
    elif lockfiles:
        sources = list(lockfiles)
        keep = set()
        for path in sources:
            keep |= lock_keys(path)
    else:
        sources, keep = working_tree_keys(project_root, store_root)
        if not sources:
            raise ShotgraphError(
                f"no *.lock.json under {project_root}: gc would remove every cached result",
                hint="name the lockfiles to keep, or pass --all to keep nothing",
            )
    if remote is not None:
        from runner.store.remote_maintenance import gc_remote

        branches, branch_keys = (0, set()) if keep_none or lockfiles else git_keys(project_root)
        shared = asyncio.run(gc_remote(remote, keep | branch_keys, dry_run=dry_run, grace=grace))
        emit(
            as_json,
            {"shared": {"url": remote.url, "git_lockfiles": branches, **shared.as_dict()}},
            [
                f"shared store {remote.url}: kept {shared.results_kept:,} result(s) "
                f"(lockfiles here and {branches} in git's branches and tags)",
                f"{'would remove' if dry_run else 'removed'} {shared.results_removed:,} "
                f"result(s), {shared.files_removed:,} file(s) ({mb(shared.bytes_freed)}), "
                f"{shared.uploads_removed:,} expired upload(s), {shared.journal_removed:,} "
                f"journal entr{'y' if shared.journal_removed == 1 else 'ies'}, "
                f"{shared.runs_removed:,} old heartbeat(s); kept {shared.journal_kept:,} "
                "journal entries (jobs in flight)",
                "",
            ],
        )
    if not store_root.exists():
        return no_store(store_root, as_json)
    with Store.open(store_root) as store:
        report = gc_store(store, keep, dry_run=dry_run, grace=grace)
        logs_removed = RunLog.prune(store_root, dry_run=dry_run)
        posters_removed = prune_posters(store, dry_run=dry_run)
        # The local backend's jobs and files go only when no job may still need them.
        freed = 0 if report.journal_kept else clear_local_state(store, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    emit(
        as_json,
        {
            "store": str(store_root),
            "lockfiles": [str(p) for p in sources],
            "kept_keys": len(keep),
            **report.as_dict(),
            "logs_removed": logs_removed,
            "posters_removed": posters_removed,
            "emulator_bytes_freed": freed,
        },
        [
            f"kept {report.results_kept:,} result(s) "
            f"({len(keep):,} key(s) from {len(sources)} lockfile(s))",
            f"{verb} {report.results_removed:,} result(s), {report.files_removed:,} file(s) "
            f"({mb(report.bytes_freed)}), {report.uploads_removed:,} expired upload(s), "
            f"{report.journal_removed:,} abandoned claim(s), {logs_removed:,} old run "
            f"log(s), {posters_removed:,} report poster(s), {mb(freed)} of emulator state, "
            f"{report.tmp_removed:,} temporary "
            f"file(s) and {report.staging_removed:,} staging director"
            f"{'y' if report.staging_removed == 1 else 'ies'} of runs that died",
            f"kept {report.journal_kept:,} journal entr{'y' if report.journal_kept == 1 else 'ies'}"
            " (jobs in flight)",
            *_grace_line(
                report.results_in_grace,
                report.files_in_grace,
                report.bytes_in_grace,
                grace,
                dry_run,
            ),
        ],
    )
    return 0


def _grace_line(results: int, files: int, size: int, grace: float, dry_run: bool) -> list[str]:
    """What only the grace period kept: a gc that removes nothing says why."""
    if not results and not files:
        return []
    spared = "would spare" if dry_run else "spared"
    return [
        f"{spared} {results:,} result(s) and {files:,} file(s) ({mb(size)}) that no lockfile "
        f"names, being younger than the grace period ({_duration(grace)}: a run may still "
        "need them); `--grace 0` removes them when no run is going on"
    ]


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
