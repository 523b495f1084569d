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

The payload is pickles (``runner.compile.memo_payload``), read back by an unpickler that
builds only shotgraph's own record types (dataclasses and enums), paths and plain values.
The store may sit in the project, so a pull request could commit one: besides the type
allowlist, a memo must carry the signature of this user on this machine
(``runner.store.memos``), which nobody elsewhere can make.

When only the pipeline's own text changed (every other file it read still holds, so the
memo is as trustworthy as on a hit), the recompile takes the steps of the nodes that did not
change from the memo (``runner.compile.reuse``), with their settings laid again from this
compile's records, so the result is the full compile's. The new memo's reads are the old
ones and the new compile's (a reused node read its files through the old compile). Beside
the memo, the pipeline file as read (its text, values and line maps) is kept apart, read
only on such a miss: the YAML of the node blocks an edit did not touch is taken from it
(``runner.pipeline.yaml_splice``).

The memo drops the pipeline's records and line maps (half its size): a memo's ``Compiled``
has a pipeline with its name, path, model and project only, and steps without their
settings (where each parameter came from). Whoever needs the rest (a 422's key path,
``plan --verbose``'s sources) compiles again. The findings and the number of
steps come first, pickled apart: ``validate`` reads them without the steps.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.compile.check import CheckResult, check_pipeline
from runner.compile.memo_payload import FINDINGS, PRINTS, RESULT, pack, part, unpickle
from runner.compile.steps import Step
from runner.errors import Diagnostic
from runner.hashing import Hasher, sha256_file
from runner.pipeline.confine import Project, watching
from runner.store.hashcache import RACY_WINDOW, fingerprint
from runner.store.memos import memo_slot, read_memo, write_memo

if TYPE_CHECKING:  # a memo that answers needs neither (nor the schema's validator)
    from runner.pipeline.schema_check import PassedNodes
    from runner.pipeline.yaml_splice import Document

MEMO_VERSION = 4
HASHED_BYTES = 1 << 20


@dataclass(frozen=True)
class Findings:
    """What ``validate`` says of a pipeline: its findings, and how many steps it has."""

    diagnostics: tuple[Diagnostic, ...]
    steps: int


@dataclass(frozen=True)
class Memo:
    """The memo of a pipeline as read from the store, made under this code's key; whether
    the files it read still hold is not checked yet."""

    key: str
    header: dict[str, Any]
    payload: bytes


def read(path: Path, backend: str, store: Path) -> Memo | None:
    """The memo of ``path`` in ``store``, if there is one made under this code's key."""
    path = Path(os.path.abspath(path))
    found = read_memo(store, memo_slot(path, backend))
    if found is None:
        return None
    key = memo_key(path, backend)
    return Memo(key, *found) if found[0].get("key") == key else None


def recall(path: Path, backend: str, store: Path, memo: Memo | None = None) -> CheckResult | None:
    """The checked pipeline as the memo in ``store`` (or ``memo``, read from it already)
    has it, if nothing it read changed."""
    memo = memo or read(path, backend, store)
    if memo is None or not _reads_hold(memo.header.get("reads")):
        return None
    loaded = part(memo.payload, RESULT)
    if not isinstance(loaded, CheckResult):
        return None
    return replace(loaded, memo_id=_memo_id(memo.key, memo.payload))


def recall_findings(path: Path, backend: str, store: Path) -> Findings | None:
    """The findings the memo in ``store`` has of the pipeline, if nothing it read changed
    (read without the steps)."""
    memo = read(path, backend, store)
    if memo is None or not _reads_hold(memo.header.get("reads")):
        return None
    loaded = part(memo.payload, FINDINGS)
    if not (isinstance(loaded, tuple) and len(loaded) == 2):
        return None
    diagnostics, steps = loaded
    if not isinstance(steps, int) or not isinstance(diagnostics, tuple):
        return None
    if not all(isinstance(item, Diagnostic) for item in diagnostics):
        return None
    return Findings(diagnostics, steps)


_UNREAD: Any = object()


def check_and_remember(
    path: Path,
    backend: str,
    store: Path | None,
    *,
    hash_file: Hasher = sha256_file,
    memo: Memo | None = _UNREAD,
) -> CheckResult:
    """``check_pipeline(path)``; a clean result is remembered in ``store`` (when given),
    and the nodes that did not change since the memo there take their steps from it
    (``memo``: that memo, when the caller has read it already)."""
    path = Path(os.path.abspath(path))
    if store is None:
        return check_pipeline(path, backend=backend, hash_file=hash_file)
    started = time.time()
    key = memo_key(path, backend)
    earlier = _earlier(path, read(path, backend, store) if memo is _UNREAD else memo)
    from runner.compile.reuse import Reuse
    from runner.pipeline.yaml_splice import DocumentMemo

    reuse = Reuse(*earlier[:3]) if earlier is not None else Reuse({})  # its prints are kept
    reuse.document = DocumentMemo(_kept_document(path, backend, store, key))
    with watching() as seen:
        result = check_pipeline(path, backend=backend, hash_file=hash_file, reuse=reuse)
    if result.errors or result.compiled is None:
        return result
    reads = _describe(seen, started)
    if reads is None:
        return result
    if earlier is not None:  # what the reused nodes read, through the earlier compile
        described = {item[0] for item in reads}
        reads += [item for item in earlier[3] if item[0] not in described]
    header: dict[str, Any] = {"key": key, "reads": reads}
    real = Path(os.path.realpath(path))
    if sum(1 for _, read in seen if read == real) > 1:
        # The pipeline file was read as more than itself (a template, an input): a node
        # whose record did not change may still read new text, so nothing is reused.
        header["whole"] = True
    payload = pack(result, reuse.prints, reuse.passed.now, reuse.warned)
    write_memo(store, memo_slot(path, backend), header, payload)
    if reuse.document.kept is not None:
        write_memo(store, _document_slot(path, backend), {"key": key}, reuse.document.kept)
    return replace(result, memo_id=_memo_id(key, payload))


def _document_slot(path: Path, backend: str) -> str:
    """Where the pipeline file as last read whole is kept, beside its memo."""
    return memo_slot(path, f"{backend}\0document")


def _kept_document(path: Path, backend: str, store: Path, key: str) -> Document | None:
    """The pipeline file as read by an earlier compile under ``key``, if one was kept (its
    text is in it: whatever changed since, ``runner.pipeline.yaml_splice`` finds)."""
    from runner.pipeline.yaml_splice import Document

    found = read_memo(store, _document_slot(path, backend))
    if found is None or found[0].get("key") != key:
        return None
    return Document.from_state(unpickle(found[1]))


def _earlier(
    path: Path, memo: Memo | None
) -> tuple[dict[str, tuple[bytes, Step]], PassedNodes, dict[Any, Any], list[list[Any]]] | None:
    """The steps (by node, with their prints), the nodes that passed the schema, lint's
    findings of each node's step (checked as used) and the reads of ``memo`` (of
    ``path``), when nothing it read but the pipeline file itself changed (and nothing but
    the loader read that one)."""
    if memo is None:
        return None
    header, payload = memo.header, memo.payload
    reads = header.get("reads")
    if not isinstance(reads, list) or header.get("whole"):
        return None
    mine = [item for item in reads if isinstance(item, list) and item[:1] == [str(path)]]
    others = [item for item in reads if item not in mine]
    if len(mine) != 1 or len(mine[0]) != 3 or mine[0][1] != os.path.realpath(path):
        return None
    if not _reads_hold(others):
        return None
    kept = part(payload, PRINTS)
    loaded = part(payload, RESULT)
    if not (isinstance(kept, tuple) and len(kept) == 3 and isinstance(loaded, CheckResult)):
        return None
    prints, passed, warned = kept
    if not (isinstance(prints, dict) and isinstance(passed, list) and loaded.compiled):
        return None
    if not isinstance(warned, dict):
        return None
    steps = loaded.compiled.steps
    earlier = {}
    for name, node_print in prints.items():
        step = steps.get(name)
        if isinstance(name, str) and isinstance(node_print, bytes) and isinstance(step, Step):
            earlier[name] = (node_print, step)
    from runner.pipeline.schema_check import PassedNodes

    schema = PassedNodes(frozenset(item for item in passed if isinstance(item, bytes)))
    return earlier, schema, warned, others


def memo_key(path: Path, backend: str) -> str:
    """What a memo is valid for, besides the files it read."""
    project = Project.of_pipeline(path)
    parts = [MEMO_VERSION, sys.version, code_signature(), str(path)]
    parts += [str(project.root), str(project.real), backend]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _memo_id(key: str, payload: bytes) -> str:
    """What a memo stands for: the key it was made under and what it holds."""
    digest = hashlib.sha256(key.encode() + b"\0")
    digest.update(payload)  # not concatenated: that would copy the megabytes
    return digest.hexdigest()


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
    by its stat yet (written moments ago) or changed while the compile read it."""
    reads: dict[str, list[Any]] = {}
    for written, real in seen:
        if str(written) in reads:
            continue
        what = _state(real)
        if what is None:
            return None
        if what[0] == "stat" and what[2] > (started - RACY_WINDOW) * 1e9:
            return None
        if what[0] == "hash" and _changed_since(real, started):
            return None  # written while compiling: the hash may not be what it read
        reads[str(written)] = [str(written), str(real), what]
    return list(reads.values())


def _changed_since(real: Path, started: float) -> bool:
    """Whether the file at ``real`` changed (or appeared) after ``started``."""
    try:
        return os.stat(real).st_ctime_ns > started * 1e9
    except OSError:
        return True


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
