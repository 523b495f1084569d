"""The project's error types and the diagnostics a pipeline check produces.

Every error a user can cause derives from :class:`ShotgraphError`; the CLI maps it to exit
code 1 and prints it without a traceback. Anything else is a bug (exit 3).

A full disk (or an exhausted quota) is told apart from every other I/O failure here
(:class:`DiskFull`, :func:`disk_full`): it is not a bug and not a broken pipeline, the user
frees space and runs again. It must never show a traceback, and a run must stop on it before
paying for more (see ``docs/running.md``). Every layer that writes (the store's SQLite
tables, its files, the outputs, the lockfile) turns such a failure into :class:`DiskFull`,
naming the path it was writing and the mount that is full.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import ClassVar, Literal

KeyPath = tuple[str | int, ...]
Severity = Literal["error", "warning"]


def format_key_path(path: KeyPath) -> str:
    """``("nodes", "intro", "clips", 2)`` -> ``nodes.intro.clips[2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True, slots=True)
class Location:
    """Where something is: a file, a 1-based line, and a key path inside the document."""

    file: Path | None = None
    line: int | None = None
    key_path: KeyPath = ()

    def __str__(self) -> str:
        where = display_path(self.file) if self.file is not None else "<pipeline>"
        if self.line is not None:
            where += f":{self.line}"
        keys = format_key_path(self.key_path)
        return f"{where} {keys}" if keys else where


def display_path(path: Path) -> str:
    """A path relative to the working directory when it is below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding of a check: an error (the pipeline cannot run) or a lint warning."""

    severity: Severity
    code: str
    message: str
    location: Location = field(default_factory=Location)
    hint: str | None = None

    def render(self) -> str:
        text = f"{self.location}: {self.severity}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": str(self.location.file) if self.location.file else None,
            "line": self.location.line,
            "key_path": format_key_path(self.location.key_path),
            "hint": self.hint,
        }


class ExitCode(IntEnum):
    """What a shotgraph command's exit status means; the one table of them (docs/running.md
    and ``--help`` print :data:`EXIT_CODE_TABLE`). When several apply, the first of: a signal,
    1, 5, 4."""

    OK = 0
    USER = 1  # the pipeline, its lock, a preset or the settings are wrong; or a full disk
    USAGE = 2  # the command line is wrong
    BUG = 3  # a bug in shotgraph (the traceback is saved to a file)
    RENDER_FAILED = 4  # a node failed (fal's error, the network): running again may help
    OVER_BUDGET = 5  # the estimate exceeds --budget: nothing (more) was submitted
    INTERRUPTED = 130  # SIGINT (Ctrl-C, a CI cancel): queued jobs cancelled, running ones kept
    TERMINATED = 143  # SIGTERM: the same, or at once when it follows another signal


EXIT_CODE_TABLE: tuple[tuple[ExitCode, str], ...] = (
    (ExitCode.OK, "done: every node rendered or cached, the lockfile written"),
    (
        ExitCode.USER,
        "fix the input: the pipeline, its lockfile (--frozen), a preset, FAL_KEY or a "
        "setting is wrong (or the disk is full)",
    ),
    (ExitCode.USAGE, "the command line is wrong"),
    (ExitCode.BUG, "a bug in shotgraph: the message says where the traceback was saved"),
    (
        ExitCode.RENDER_FAILED,
        "a render failed (fal's error, the network): the rest is stored; running again may help",
    ),
    (ExitCode.OVER_BUDGET, "over --budget: nothing (more) was submitted"),
    (
        ExitCode.INTERRUPTED,
        "SIGINT: queued jobs cancelled, running ones journaled for the next run",
    ),
    (ExitCode.TERMINATED, "SIGTERM: the same (at once if it follows another signal)"),
)


def exit_code_help() -> str:
    """The exit codes as ``--help`` shows them (one line each)."""
    return "\n".join(f"{int(code):>5}  {meaning}" for code, meaning in EXIT_CODE_TABLE)


# For a command's --help: click rewraps paragraphs unless they start with \b.
EXIT_CODES_EPILOG = "\b\nExit codes:\n" + exit_code_help()


def signal_exit(signum: int) -> int:
    """The exit status of a command stopped by signal ``signum`` (128 + its number)."""
    return 128 + signum


class ShotgraphError(Exception):
    """A problem the user can fix. The message says what and, with ``hint``, how.
    ``exit_code`` is the command's exit status when it ends on this error."""

    exit_code: ClassVar[int] = ExitCode.USER

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class MediaError(ShotgraphError):
    """A media file cannot be read or written, or an operation on it is impossible
    (a frame index past the end, a clip without video)."""


class StepFailed(ShotgraphError):
    """A node of a run failed (fal's error, a lost connection, a file that cannot be read);
    its descendants are skipped and the rest of the run goes on."""

    exit_code: ClassVar[int] = ExitCode.RENDER_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)


class OverBudget(ShotgraphError):
    """The estimate of what would be submitted exceeds ``--budget``: nothing is started."""

    exit_code: ClassVar[int] = ExitCode.OVER_BUDGET


class BudgetRefused(StepFailed):
    """A node not submitted because it would take the run over ``--budget``."""

    exit_code: ClassVar[int] = ExitCode.OVER_BUDGET


class RunStopping(ShotgraphError):
    """The run is stopping (its disk is full): a step not yet begun is not begun."""


class PipelineInvalid(ShotgraphError):
    """A pipeline (or a file it imports) has errors; ``diagnostics`` lists all of them.

    ``shown``: they are already on the screen, so rendering the error says only how many."""

    def __init__(self, diagnostics: Sequence[Diagnostic], *, shown: bool = False) -> None:
        self.diagnostics = tuple(diagnostics)
        self.shown = shown
        errors = [d for d in self.diagnostics if d.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in the pipeline")

    def render(self) -> str:
        if self.shown:
            return f"error: {self.message}"
        return "\n".join(d.render() for d in self.diagnostics)


class Diagnostics:
    """An accumulator: checks add findings and carry on, so a user sees every error at once."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, code: str, message: str, location: Location, hint: str | None = None) -> None:
        self.items.append(Diagnostic("error", code, message, location, hint))

    def warning(self, code: str, message: str, location: Location, hint: str | None = None) -> None:
        self.items.append(Diagnostic("warning", code, message, location, hint))

    def extend(self, items: Iterable[Diagnostic]) -> None:
        self.items.extend(items)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise PipelineInvalid(sorted_diagnostics(self.items))


def sorted_diagnostics(items: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Errors first, then by file and line, keeping the order of equal positions."""

    def order(d: Diagnostic) -> tuple[int, str, int]:
        loc = d.location
        return (0 if d.severity == "error" else 1, str(loc.file or ""), loc.line or 0)

    return sorted(items, key=order)


# -- a full disk ----------------------------------------------------------------------------

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"


class DiskFull(ShotgraphError):
    """Writing ``path`` failed because its disk (or the user's quota there) is full."""

    def __init__(self, path: Path | str | None, why: str = "No space left on device") -> None:
        where = Path(path) if path else None
        self.path = where
        self.why = why
        if where is None:
            message = f"a disk is full ({why})"
        else:
            mount = mount_point(where)
            free = free_bytes(mount)
            left = f", {free / 1e6:.1f} MB free" if free is not None else ""
            message = (
                f"the disk mounted at {mount} is full ({why}{left}) while writing "
                f"{display_path(where)}"
            )
        super().__init__(
            message,
            hint="free space on that disk (`shotgraph cache gc` removes what no lockfile "
            "needs) and run again; jobs already submitted are journaled and collected by the "
            "next run, not paid for again",
        )


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` itself says the disk is full (ENOSPC, EDQUOT or SQLite's FULL)."""
    if isinstance(exc, DiskFull):
        return True
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == _SQLITE_FULL


def find_full(exc: BaseException | None) -> BaseException | None:
    """The first exception in ``exc``'s chain (causes and contexts) that is a full disk."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if is_full(exc):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def disk_full(exc: BaseException | None, path: Path | str | None = None) -> DiskFull | None:
    """A :class:`DiskFull` for ``exc`` when its chain holds a full disk, else None. The path
    is the one the failing call names, else ``path``."""
    found = find_full(exc)
    if found is None:
        return None
    if isinstance(found, DiskFull):
        return found
    named = getattr(found, "filename", None) if isinstance(found, OSError) else None
    why = found.strerror if isinstance(found, OSError) and found.strerror else str(found)
    return DiskFull(named or path, why or "No space left on device")


def mount_point(path: Path) -> Path:
    """The mount point holding ``path`` (which may not exist yet)."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use under ``path``; None if unknown."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize
