"""Compile memos: what compiling a pipeline produced, one file per pipeline and backend.

``memos/<slot>`` under the store root holds the latest memo of one (pipeline path, backend):
a header (JSON: the key it was made under and the stat or hash of every file it read) and
the payload (see ``runner.compile.memo``, which decides what is in it and whether it still
holds). A memo is only a shortcut: a missing, damaged or unwritable one costs a recompile,
never a wrong answer, so every failure here is swallowed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from runner import atomic

MEMO_DIR = "memos"
_HEADER = struct.Struct(">Q")  # the length of the JSON header
# Far above a 5,000-node pipeline's memo (about 3 MB); a bigger file is not ours.
MAX_MEMO_BYTES = 256 * 1024 * 1024
MAX_NOTE_BYTES = 64 * 1024


def memo_slot(pipeline: Path, backend: str) -> str:
    """The file name of the memo of ``pipeline`` (absolute) for ``backend``."""
    return hashlib.sha256(f"{pipeline}\0{backend}".encode()).hexdigest()[:32]


def read_memo(root: Path, slot: str) -> tuple[dict[str, Any], bytes] | None:
    """The header and payload of a memo; None when absent or not one."""
    try:
        # Unbuffered: a buffered read of the rest would join what it buffered to the rest,
        # a copy of megabytes.
        with open(root / MEMO_DIR / slot, "rb", buffering=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_MEMO_BYTES or size < _HEADER.size:
                return None
            (length,) = _HEADER.unpack(handle.read(_HEADER.size))
            if length > size:
                return None
            text = handle.read(length)
            payload = handle.readall()  # read apart: slicing one read would copy megabytes
    except (OSError, struct.error):
        return None
    try:
        header = json.loads(text)
    except ValueError:
        return None
    if not isinstance(header, dict):
        return None
    return header, payload


def write_memo(root: Path, slot: str, header: dict[str, Any], payload: bytes) -> None:
    """Replace the memo in ``slot`` (atomically; not fsynced: it can always be rebuilt)."""
    text = json.dumps(header, separators=(",", ":")).encode()
    with contextlib.suppress(OSError):
        (root / MEMO_DIR).mkdir(exist_ok=True)
        with atomic.replacing(root / MEMO_DIR / slot, durable=False) as temp:
            temp.write_bytes(_HEADER.pack(len(text)) + text + payload)


def read_note(root: Path, name: str) -> dict[str, Any] | None:
    """A small JSON note kept beside the memos (see ``runner.compile.lock_memo``)."""
    try:
        with open(root / MEMO_DIR / name, "rb") as handle:
            data = handle.read(MAX_NOTE_BYTES + 1)
        note = json.loads(data) if len(data) <= MAX_NOTE_BYTES else None
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def write_note(root: Path, name: str, note: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        (root / MEMO_DIR).mkdir(exist_ok=True)
        with atomic.replacing(root / MEMO_DIR / name, durable=False) as temp:
            temp.write_text(json.dumps(note, separators=(",", ":")))


def forget_memo(root: Path, slot: str) -> None:
    with contextlib.suppress(OSError):
        (root / MEMO_DIR / slot).unlink()
