"""What several commands share: the pipeline argument, printing findings, the checked pipeline
(hashing its files through the store when there is one)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from runner.compile.check import CheckResult, check_pipeline
from runner.errors import Diagnostic
from runner.hashing import Hasher, sha256_file
from runner.pipeline.load import find_project_root
from runner.run.backends import BACKENDS, FAL

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
    result = check_pipeline(path, backend=backend, hash_file=hash_file)
    if show == "all":
        echo_diagnostics(result.errors + result.warnings)
    elif show == "errors":
        echo_diagnostics(result.errors)
    return result


@contextmanager
def remembered_hashes(pipeline: Path, cache_dir: Path | None) -> Iterator[Hasher]:
    """Hash the pipeline's files through its store, which remembers the hashes of unchanged
    files between runs (big motion clips are not read again); plain hashing while there is
    no store yet (none is created here)."""
    # Imported here: `validate` and `graph` never open a store, and need not load it.
    from runner.store import Store, StoreError, is_store, resolve_store_root

    project_root = find_project_root(pipeline.resolve().parent)
    root = resolve_store_root(project_root, cache_dir, os.environ)
    if not is_store(root):
        yield sha256_file
        return
    with Store.open(root) as store:

        def hash_file(path: Path) -> tuple[str, int]:
            try:
                stored = store.hash_file(path)
            except StoreError as exc:  # unreadable: the compiler reports the file missing
                raise OSError(str(exc)) from exc
            return stored.sha256, stored.size

        yield hash_file
