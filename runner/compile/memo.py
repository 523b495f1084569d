"""The compile memo: a pipeline checked once is not parsed, validated and compiled again
while nothing it read has changed (ninja's build log, for the front half).

What compiling produced (the steps with their requests and keys, the outputs, the warnings)
is kept in the store under the pipeline's own inputs: this code's version and files, the
pipeline's path and project, the backend. Beside it, every file the compile read, which is
every path that went through the confinement rule (``confine.watching``): the pipeline, its
imports, templates (and the places a template was looked for and was not), keyframes, clips.
A file up to ``HASHED_BYTES`` is compared by content; a bigger one by its stat, as the
store's hash cache trusts a file (``runner.store.hashcache``: size, mtime, ctime, inode,
device, and nothing written in the last ``RACY_WINDOW`` seconds, git's "racily clean").
Any doubt, a recompile: a memo is only ever a shortcut.

The payload is a pickle, read back by an unpickler that builds only shotgraph's own record
types (dataclasses and enums), paths and plain values. The store may sit in the project, so
a pull request could commit one: besides the type allowlist, its header must match the
inode and ctime of every file read on this machine, which nobody can write in advance.

The memo drops the pipeline's records and line maps (half its size): a memo's ``Compiled``
has a pipeline with its name, path, model and project only, and steps without their
settings (where each parameter came from). Whoever needs the rest (a 422's key path,
``plan --verbose``'s sources) compiles again. The findings and the number of
steps come first, pickled apart: ``validate`` reads them without the steps.
"""

from __future__ import annotations

import copyreg
import dataclasses
import enum
import gc
import hashlib
import importlib
import io
import json
import os
import pickle
import stat
import struct
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from runner.compile.check import CheckResult, check_pipeline
from runner.errors import Diagnostic
from runner.hashing import Hasher, sha256_file
from runner.pipeline.confine import Project, watching
from runner.pipeline.records import Defaults
from runner.pipeline.sourcemap import SourceMap
from runner.store.hashcache import RACY_WINDOW, fingerprint
from runner.store.memos import memo_slot, read_memo, write_memo

MEMO_VERSION = 3
HASHED_BYTES = 1 << 20
_SAFE_BUILTINS = frozenset({"frozenset", "set", "slice", "complex", "bytearray"})
# The payload: the length of the findings' pickle, that pickle, the whole result's pickle.
_PART = struct.Struct(">Q")


@dataclass(frozen=True)
class Findings:
    """What ``validate`` says of a pipeline: its findings, and how many steps it has."""

    diagnostics: tuple[Diagnostic, ...]
    steps: int


def recall(path: Path, backend: str, store: Path) -> CheckResult | None:
    """The checked pipeline as the memo in ``store`` has it, if nothing it read changed."""
    found = _still_holds(path, backend, store)
    if found is None:
        return None
    key, payload = found
    (length,) = _PART.unpack_from(payload)
    loaded = _unpickle(payload[_PART.size + length :])
    if not isinstance(loaded, CheckResult):
        return None
    return replace(loaded, memo_id=_memo_id(key, payload))


def recall_findings(path: Path, backend: str, store: Path) -> Findings | None:
    """The findings the memo in ``store`` has of the pipeline, if nothing it read changed
    (read without the steps)."""
    found = _still_holds(path, backend, store)
    if found is None:
        return None
    _, payload = found
    (length,) = _PART.unpack_from(payload)
    loaded = _unpickle(payload[_PART.size : _PART.size + length])
    if not (isinstance(loaded, tuple) and len(loaded) == 2):
        return None
    diagnostics, steps = loaded
    if not isinstance(steps, int) or not isinstance(diagnostics, tuple):
        return None
    if not all(isinstance(item, Diagnostic) for item in diagnostics):
        return None
    return Findings(diagnostics, steps)


def _still_holds(path: Path, backend: str, store: Path) -> tuple[str, bytes] | None:
    """The key and payload of the memo of ``path``, if nothing it read changed."""
    path = Path(os.path.abspath(path))
    found = read_memo(store, memo_slot(path, backend))
    if found is None:
        return None
    header, payload = found
    key = memo_key(path, backend)
    if header.get("key") != key or len(payload) < _PART.size:
        return None
    if not _reads_hold(header.get("reads")):
        return None
    return key, payload


def check_and_remember(
    path: Path, backend: str, store: Path | None, *, hash_file: Hasher = sha256_file
) -> CheckResult:
    """``check_pipeline(path)``; a clean result is remembered in ``store`` (when given)."""
    path = Path(os.path.abspath(path))
    if store is None:
        return check_pipeline(path, backend=backend, hash_file=hash_file)
    started = time.time()
    with watching() as seen:
        result = check_pipeline(path, backend=backend, hash_file=hash_file)
    if result.errors or result.compiled is None:
        return result
    reads = _describe(seen, started)
    if reads is None:
        return result
    key = memo_key(path, backend)
    payload = _pickle(result)
    write_memo(store, memo_slot(path, backend), {"key": key, "reads": reads}, payload)
    return replace(result, memo_id=_memo_id(key, payload))


def memo_key(path: Path, backend: str) -> str:
    """What a memo is valid for, besides the files it read."""
    project = Project.of_pipeline(path)
    parts = [MEMO_VERSION, sys.version, code_signature(), str(path)]
    parts += [str(project.root), str(project.real), backend]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _memo_id(key: str, payload: bytes) -> str:
    """What a memo stands for: the key it was made under and what it holds."""
    return hashlib.sha256(key.encode() + b"\0" + payload).hexdigest()


@cache
def code_signature() -> str:
    """The stat of every file of shotgraph itself (code, schemas, data, templates): a
    checkout that changed any of them does not use an older memo."""
    from runner.resources import schemas_dir, templates_dir

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for top in (package, schemas_dir(), templates_dir()):
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                with_stat = os.stat(os.path.join(folder, name))
                line = f"{folder}/{name}\0{with_stat.st_size}\0{with_stat.st_mtime_ns}\n"
                digest.update(line.encode())
    return digest.hexdigest()


# -- the files read --------------------------------------------------------------------


def _describe(seen: Iterable[tuple[Path, Path]], started: float) -> list[list[Any]] | None:
    """``[written, real, what]`` for every path confined; None when one cannot be trusted
    by its stat yet (written moments ago)."""
    reads: dict[str, list[Any]] = {}
    for written, real in seen:
        if str(written) in reads:
            continue
        what = _state(real)
        if what is None:
            return None
        if what[0] == "stat" and what[2] > (started - RACY_WINDOW) * 1e9:
            return None
        reads[str(written)] = [str(written), str(real), what]
    return list(reads.values())


def _state(real: Path) -> list[Any] | None:
    """What a path is now: absent, a directory, a small file's hash or a big file's stat."""
    try:
        info = os.stat(real)
    except FileNotFoundError:
        return ["absent"]
    except OSError:
        return None
    if stat.S_ISDIR(info.st_mode):
        return ["dir", info.st_ino, info.st_dev]
    if not stat.S_ISREG(info.st_mode):
        return None
    if info.st_size <= HASHED_BYTES:
        try:
            digest, size = sha256_file(real)
        except OSError:
            return None
        return ["hash", size, digest]
    return ["stat", *fingerprint(info)]


def _reads_hold(reads: Any) -> bool:
    """Whether every path still leads where it did and holds what it held."""
    if not isinstance(reads, list):
        return False
    for item in reads:
        if not (isinstance(item, list) and len(item) == 3):
            return False
        written, real, what = item
        if os.path.realpath(written) != real or _state(Path(real)) != what:
            return False
    return True


# -- the payload -----------------------------------------------------------------------


def _slim(result: CheckResult) -> CheckResult:
    """The result without the pipeline's records and line maps, or the steps' settings."""
    assert result.compiled is not None
    pipeline = result.compiled.pipeline
    bare = replace(
        pipeline,
        source=SourceMap(pipeline.path),
        vars={},
        defaults=Defaults(),
        presets={},
        characters={},
        motions={},
        nodes={},
        broken=frozenset(),
    )
    # Where each parameter came from: read with the records only (plan --verbose, a 422).
    steps = {name: replace(step, settings={}) for name, step in result.compiled.steps.items()}
    slim = replace(result.compiled, pipeline=bare, steps=steps)
    return replace(result, compiled=slim, shown=False, memo_id=None)


def _reduce_source(source: SourceMap) -> tuple[Any, tuple[str | None]]:
    # Line maps stay behind: only the file they map is kept. (A table entry, not a
    # ``persistent_id``: that one is a Python call for each of the payload's 700,000
    # objects, and tripled the time of a dump.)
    return SourceMap, (None if source.file is None else str(source.file),)


_DISPATCH = copyreg.dispatch_table | {SourceMap: _reduce_source}


def _bare_source(file: Any) -> SourceMap:
    """A line map without lines, of a file named by a string (or of none)."""
    if file is not None and not isinstance(file, str):
        raise pickle.UnpicklingError("not a memo")
    return SourceMap(None if file is None else Path(file))


class _Unpickler(pickle.Unpickler):
    """Builds shotgraph's records, paths and plain values; nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == (SourceMap.__module__, SourceMap.__name__):
            return _bare_source
        if module == "pathlib" and name in ("PosixPath", "PurePosixPath"):
            return super().find_class(module, name)
        if module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if module.startswith("runner."):
            found = getattr(importlib.import_module(module), name, None)
            if isinstance(found, type) and (
                dataclasses.is_dataclass(found) or issubclass(found, enum.Enum)
            ):
                return found
        raise pickle.UnpicklingError(f"a memo does not hold {module}.{name}")


def _pickle(result: CheckResult) -> bytes:
    """The findings (what validate needs), then the whole result."""
    assert result.compiled is not None
    parts = []
    for value in ((result.diagnostics, len(result.compiled.steps)), _slim(result)):
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = _DISPATCH
        pickler.dump(value)
        parts.append(buffer.getvalue())
    return _PART.pack(len(parts[0])) + parts[0] + parts[1]


def _unpickle(data: bytes) -> Any:
    # Tens of thousands of objects, none of them garbage: no collection while they are
    # built (it would walk them all, again and again).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Unpickler(io.BytesIO(data)).load()
    except Exception:  # a damaged or foreign memo, whatever it holds: compile instead
        return None
    finally:
        if collecting:
            gc.enable()
