"""What several commands share: the pipeline argument, printing findings, the checked pipeline
(hashing its files through the store when there is one)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runner.compile.check import CheckResult, check_pipeline
from runner.compile.keys import BACKENDS, FAL
from runner.errors import Diagnostic, DiskFull, ShotgraphError
from runner.hashing import Hasher, sha256_file
from runner.pipeline.confine import Project, Refused, confine

if TYPE_CHECKING:
    from runner.store import RemoteStore, Store

F = TypeVar("F", bound=Callable[..., Any])


def pipeline_argument(func: F) -> F:
    return click.argument(
        "pipeline", type=click.Path(dir_okay=False, path_type=Path), metavar="PIPELINE.yaml"
    )(func)


def backend_option(func: F) -> F:
    return click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default=FAL,
        show_default=True,
        help="fal.ai, or the local emulator (offline, free). Part of every cache key.",
    )(func)


def echo_diagnostics(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
    """Findings go to stderr, errors first, each with file:line, key path and hint."""
    for item in diagnostics:
        color = "red" if item.severity == "error" else "yellow"
        head, _, rest = item.render().partition(f"{item.severity}:")
        styled = head + click.style(f"{item.severity}:", fg=color, bold=True) + rest
        click.echo(styled, err=True, color=None if sys.stderr.isatty() else False)


def checked(
    path: Path, backend: str, *, show: str = "all", hash_file: Hasher = sha256_file
) -> CheckResult:
    """Check a pipeline and print its findings to stderr: ``all`` (errors, then warnings),
    ``errors`` only, or ``none`` (for --json, where they go into the JSON)."""
    return _shown(check_pipeline(path, backend=backend, hash_file=hash_file), show)


def _shown(result: CheckResult, show: str) -> CheckResult:
    if show == "all":
        echo_diagnostics(result.errors + result.warnings)
    elif show == "errors":
        echo_diagnostics(result.errors)
    # Printed once: the error that stops the command then only says how many there were.
    return replace(result, shown=show != "none")


def checked_remembered(
    path: Path,
    backend: str,
    cache_dir: Path | None,
    *,
    show: str = "all",
    memo: bool = True,
    store: Store | None = None,
) -> CheckResult:
    """:func:`checked`, hashing through the store (``store``, when the caller has it open)
    and starting from its compile memo when nothing the pipeline read has changed
    (``memo=False`` always compiles)."""
    from runner.compile.memo import check_and_remember, read, recall
    from runner.store import is_store

    root = store_root(Project.of_pipeline(path), cache_dir)
    where = root if memo and is_store(root) else None
    kept = read(path, backend, where) if where is not None else None  # read once, for both
    result = recall(path, backend, where, kept) if kept is not None and where else None
    if result is None:
        with remembered_hashes(path, cache_dir, store) as hash_file:
            result = check_and_remember(path, backend, where, hash_file=hash_file, memo=kept)
    return _shown(result, show)


def store_root(project: Project, cache_dir: Path | None) -> Path:
    """The store a command uses: ``--cache-dir``, else ``$SHOTGRAPH_CACHE_DIR`` (both chosen by
    whoever runs shotgraph), else ``.shotgraph`` in the project, which a pull request could
    have committed as a symlink, so it obeys the confinement rule."""
    from runner.store import resolve_store_root  # not for validate: it never opens a store
    from runner.store.location import ENV_VAR

    root = resolve_store_root(project.root, cache_dir, os.environ)
    if cache_dir is None and not os.environ.get(ENV_VAR):
        try:
            confine(project, root, project.root, expect="dir")
        except Refused as refused:
            raise ShotgraphError(
                f"the store {refused.message}",
                hint="remove it, or choose a store with --cache-dir or $SHOTGRAPH_CACHE_DIR",
            ) from None
    return root


@contextmanager
def remembered_hashes(
    pipeline: Path, cache_dir: Path | None, opened: Store | None = None
) -> Iterator[Hasher]:
    """Hash the pipeline's files through its store (``opened``, else opened here), which
    remembers the hashes of unchanged files between runs (big motion clips are not read
    again); plain hashing while there is no store yet (none is created here). From a
    read-only ``opened`` (a plan), the store is opened for writing only when a file's hash
    is not remembered yet (its opening waits on the disk: most plans need none)."""
    # Imported here: `validate` and `graph` never open a store, and need not load it.
    from runner.store import Store, StoreError, is_store

    root = store_root(Project.of_pipeline(pipeline), cache_dir)
    if opened is None and not is_store(root):
        yield sha256_file
        return
    with contextlib.ExitStack() as stack:
        looking = opened if opened is not None and opened.read_only else None
        writing = None if looking is not None else opened or stack.enter_context(Store.open(root))
        settled = looking is None  # whether ``writing`` is what there is to write to

        def hash_file(path: Path) -> tuple[str, int]:
            nonlocal writing, settled
            try:
                known = looking.known_hash(path) if looking is not None else None
                if known is None and not settled:
                    settled = True
                    # A full or read-only disk: not remembered (a plan works on one; a store
                    # it cannot read stops it where it opens).
                    with contextlib.suppress(StoreError, DiskFull):
                        writing = stack.enter_context(Store.open(root))
                if known is None and writing is not None:
                    known = writing.hash_file(path)
            except StoreError as exc:  # unreadable: the compiler reports the file missing
                raise OSError(str(exc)) from exc
            return (known.sha256, known.size) if known is not None else sha256_file(path)

        yield hash_file


STORE_ENV = "SHOTGRAPH_STORE"
LEASE_ENV = "SHOTGRAPH_STORE_LEASE"
TIMEOUT_ENV = "SHOTGRAPH_STORE_TIMEOUT"
NO_REMOTE = ("local", "none")


def store_url_option(func: F) -> F:
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        help="The team's shared store, s3://BUCKET/PREFIX (default: $SHOTGRAPH_STORE, else "
        "[store] url in shotgraph.toml); 'local' for none. The local store becomes its "
        "near cache.",
    )(func)


def shared_store(project_root: Path, store_url: str | None) -> RemoteStore | None:
    """The shared store a command uses: ``--store``, else ``$SHOTGRAPH_STORE`` (both chosen
    by whoever runs shotgraph, as in a CI workflow), else the project's ``shotgraph.toml``;
    None for a local store only. Endpoint and credentials come the AWS ways."""
    from runner.pipeline.settings import read_settings

    settings = read_settings(project_root)
    url = store_url or os.environ.get(STORE_ENV) or settings.store_url
    if not url or url in NO_REMOTE:
        return None
    from runner.store import StoreDefaults, open_remote  # asyncio: only for a shared store

    lease = _seconds(LEASE_ENV, settings.store_lease)
    timeout = _seconds(TIMEOUT_ENV, settings.store_timeout)
    defaults = StoreDefaults(region=settings.store_region)
    return open_remote(url, os.environ, defaults, lease=lease, timeout=timeout)


def _seconds(variable: str, otherwise: float | None) -> float | None:
    text = os.environ.get(variable)
    if not text:
        return otherwise
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.1 <= value <= 86400:
        raise ShotgraphError(f"${variable} must be a number of seconds, 0.1 to 86400")
    return value
