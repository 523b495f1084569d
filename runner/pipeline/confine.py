"""The confinement rule: every path a pipeline names stays inside its project.

A pipeline file from a pull request is untrusted, and CI runs it with ``FAL_KEY`` in the
environment. So every path it names — template directories and files, includes, imports,
keyframes, motion clips, ``{file:}`` inputs, outputs, the lockfile and the store — obeys one
rule, checked here and only here:

1. the **real** path (every symlink followed) lies inside the project directory (or inside
   one of the few directories shotgraph itself allows, such as its own templates);
2. nothing under ``/proc``, ``/sys`` or ``/dev`` and nothing but a regular file or a directory
   (no FIFO, socket or device) is read or written;
3. a file read into memory has a size limit, checked before reading and while reading.

The project is the directory of the pipeline file *as given* (symlinks not followed), or the
nearest git work tree above it: a pipeline that is a symlink to ``/tmp/evil.yaml`` does not
make ``/tmp`` the project. This module depends on nothing else in shotgraph.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# Pseudo file systems: their "files" are the process's memory, environment and devices.
# (/dev/shm is an ordinary tmpfs; the project rule still applies there.)
SPECIAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
ORDINARY_UNDER_SPECIAL = (Path("/dev/shm"),)

Expect = Literal["file", "dir"]

# Lists that :func:`watching` hands out: every (path as written, real path) confined while
# one is open, which is every file a pipeline makes shotgraph read (compile/memo.py).
_watchers: list[list[tuple[Path, Path]]] = []


@contextmanager
def watching() -> Iterator[list[tuple[Path, Path]]]:
    """Collect every path confined inside the ``with`` block (this thread's work only is
    expected: the compiler runs in one)."""
    seen: list[tuple[Path, Path]] = []
    _watchers.append(seen)
    try:
        yield seen
    finally:
        _watchers.remove(seen)


def looked_for(path: Path) -> None:
    """Tell the watchers that ``path`` was looked for and is not there: a file that
    appears there later changes what the pipeline means."""
    for seen in _watchers:
        seen.append((path, Path(os.path.realpath(path))))


class Refused(Exception):
    """A path breaks the rule: a diagnostic code, what is wrong, and how to fix it."""

    def __init__(self, code: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Project:
    """The directory a pipeline may read and write: ``root`` as given, ``real`` resolved."""

    root: Path
    real: Path

    @classmethod
    def at(cls, root: Path) -> Project:
        root = Path(os.path.abspath(root))
        return cls(root, Path(os.path.realpath(root)))

    @classmethod
    def of_pipeline(cls, pipeline: Path) -> Project:
        """The project of a pipeline file, from its path as given."""
        return cls.at(find_project_root(Path(os.path.abspath(pipeline)).parent))


def find_project_root(start: Path) -> Path:
    """The nearest directory above ``start`` that is a git work tree, else ``start`` itself.

    The walk is lexical: it goes up the path as written, not up a symlink's target."""
    start = Path(os.path.abspath(start))
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


def confine(
    project: Project,
    written: str | Path,
    base: Path,
    *,
    expect: Expect = "file",
    max_bytes: int | None = None,
    also: Iterable[Path] = (),
) -> Path:
    """The real path of ``written`` (relative to ``base``) if it obeys the rule, else
    :class:`Refused`. A path that does not exist yet is allowed (its caller says "missing"
    or creates it); ``also`` are further directories (real paths) it may lie in."""
    if "\x00" in str(written):
        raise Refused(
            "path-invalid",
            f"{str(written)!r} contains a NUL character",
            "no file name contains one; remove it",
        )
    candidate = Path(os.path.abspath(base / written))
    real = Path(os.path.realpath(candidate))
    for seen in _watchers:
        seen.append((candidate, real))
    via = "" if real == candidate else f" (it leads to {real})"
    if _special(real):
        raise Refused(
            "path-special",
            f"'{written}' is a special file{via}, not a project file",
            "pipelines read and write only regular files inside their project",
        )
    roots = (project.real, *also)
    if not any(real.is_relative_to(root) for root in roots):
        link = " through a symlink" if _inside_lexically(candidate, project) else ""
        raise Refused(
            "path-outside-project",
            f"'{written}' is outside the project directory {project.root}{link}{via}",
            "copy the file into the project; a pipeline may only use files of its project",
        )
    try:
        info = os.stat(real)
    except FileNotFoundError:
        return real
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused(
                "path-loop", f"'{written}' is a loop of symlinks", "remove the loop"
            ) from None
        raise Refused(
            "path-unreadable", f"cannot read '{written}': {exc.strerror}", "check the path"
        ) from None
    _check_type(written, info, expect)
    if max_bytes is not None and expect == "file" and info.st_size > max_bytes:
        raise Refused(
            "path-too-large",
            f"'{written}' is {info.st_size:,} bytes; at most {max_bytes:,} are read",
            "is this the file you meant? split it into smaller files",
        )
    return real


def read_confined(real: Path, written: str | Path, max_bytes: int) -> bytes:
    """The bytes of a file :func:`confine` accepted, refusing more than ``max_bytes``.

    Opened without following a symlink swapped in since the check and without blocking on a
    FIFO; the limit holds even when the file grows or lies about its size."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise Refused(
            "path-unreadable", f"cannot read '{written}': {exc.strerror}", "check the path"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        _check_type(written, os.fstat(fd), "file")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Refused(
            "path-too-large",
            f"'{written}' is larger than {max_bytes:,} bytes",
            "is this the file you meant? split it into smaller files",
        )
    return data


def _check_type(written: str | Path, info: os.stat_result, expect: Expect) -> None:
    mode = info.st_mode
    if expect == "file" and stat.S_ISREG(mode):
        return
    if expect == "dir" and stat.S_ISDIR(mode):
        return
    what = _kind(mode)
    raise Refused(
        "path-special" if what != "a directory" and what != "a regular file" else "path-type",
        f"'{written}' is {what}, not a {'regular file' if expect == 'file' else 'directory'}",
        "name a regular file of the project"
        if expect == "file"
        else "name a directory of the project",
    )


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _special(real: Path) -> bool:
    if any(real.is_relative_to(root) for root in ORDINARY_UNDER_SPECIAL):
        return False
    return any(real.is_relative_to(root) for root in SPECIAL_ROOTS)


def _inside_lexically(candidate: Path, project: Project) -> bool:
    return candidate.is_relative_to(project.root)
