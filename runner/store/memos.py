"""Compile memos: what compiling a pipeline produced, one file per pipeline and backend.

``memos/<slot>`` under the store root holds the latest memo of one (pipeline path, backend):
a header (JSON: the key it was made under and the stat or hash of every file it read) and
the payload (see ``runner.compile.memo``, which decides what is in it and whether it still
holds). A memo is only a shortcut: a missing, damaged or unwritable one costs a recompile,
never a wrong answer, so every failure here is swallowed.

Every memo and note is signed with a key of this user on this machine (``memo.key`` in
shotgraph's folder of the user cache, 32 random bytes made on first use, readable by its
owner only), and one that does not carry this machine's signature is not read. The store
may sit in the project, and a pull request could commit a crafted memo into it: a memo is
trusted in place of a compile (and so of the confinement rule), so only memos this machine
made may be.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import os
import secrets
import stat
import struct
from pathlib import Path
from typing import Any

from runner import atomic

MEMO_DIR = "memos"
_HEADER = struct.Struct(">Q")  # the length of the JSON header
# Far above a 5,000-node pipeline's memo (about 3 MB); a bigger file is not ours.
MAX_MEMO_BYTES = 256 * 1024 * 1024
MAX_NOTE_BYTES = 64 * 1024
KEY_FILE = "memo.key"
_KEY_BYTES = 32
_SIGNATURE = "sig"


def memo_slot(pipeline: Path, backend: str) -> str:
    """The file name of the memo of ``pipeline`` (absolute) for ``backend``."""
    return hashlib.sha256(f"{pipeline}\0{backend}".encode()).hexdigest()[:32]


def read_memo(root: Path, slot: str) -> tuple[dict[str, Any], bytes] | None:
    """The header and payload of a memo; None when absent, not one, or not signed by this
    machine."""
    key = machine_key()
    if key is None:
        return None
    try:
        # Unbuffered: a buffered read of the rest would join what it buffered to the rest,
        # a copy of megabytes.
        with open(root / MEMO_DIR / slot, "rb", buffering=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_MEMO_BYTES or size < _HEADER.size + _KEY_BYTES:
                return None
            (length,) = _HEADER.unpack(handle.read(_HEADER.size))
            if length > size:
                return None
            signature = handle.read(_KEY_BYTES)
            text = handle.read(length)
            payload = handle.readall()  # read apart: slicing one read would copy megabytes
    except (OSError, struct.error):
        return None
    if not hmac.compare_digest(signature, _sign(key, text, payload)):
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
    key = machine_key()
    if key is None:
        return
    text = json.dumps(header, separators=(",", ":")).encode()
    with contextlib.suppress(OSError):
        (root / MEMO_DIR).mkdir(exist_ok=True)
        with (
            atomic.replacing(root / MEMO_DIR / slot, durable=False) as temp,
            open(temp, "wb") as out,
        ):
            out.write(_HEADER.pack(len(text)) + _sign(key, text, payload) + text)
            out.write(payload)  # apart: joined, the megabytes would be copied


def read_note(root: Path, name: str) -> dict[str, Any] | None:
    """A small JSON note kept beside the memos (see ``runner.compile.lock_memo``); None
    when absent, damaged or not signed by this machine."""
    key = machine_key()
    if key is None:
        return None
    try:
        with open(root / MEMO_DIR / name, "rb") as handle:
            data = handle.read(_KEY_BYTES + MAX_NOTE_BYTES + 1)
    except OSError:
        return None
    signature, text = data[:_KEY_BYTES], data[_KEY_BYTES:]
    if len(text) > MAX_NOTE_BYTES or not hmac.compare_digest(signature, _sign(key, text)):
        return None
    try:
        note = json.loads(text)
    except ValueError:
        return None
    return note if isinstance(note, dict) else None


def write_note(root: Path, name: str, note: dict[str, Any]) -> None:
    key = machine_key()
    if key is None:
        return
    text = json.dumps(note, separators=(",", ":")).encode()
    with contextlib.suppress(OSError):
        (root / MEMO_DIR).mkdir(exist_ok=True)
        with atomic.replacing(root / MEMO_DIR / name, durable=False) as temp:
            temp.write_bytes(_sign(key, text) + text)


def _sign(key: bytes, text: bytes, payload: bytes = b"") -> bytes:
    """The signature of a header (or note) and its payload, by this machine's key."""
    mac = hmac.new(key, _HEADER.pack(len(text)), "sha256")
    mac.update(text)
    mac.update(payload)
    return mac.digest()


def machine_key() -> bytes | None:
    """This user's key on this machine, made on first use (the module docstring); None
    (no memo is read or written) when it cannot be had or is not private to its owner."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    try:
        base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    except RuntimeError:  # no home directory to be found
        return None
    return _key_at(base / "shotgraph" / KEY_FILE)


@functools.cache
def _key_at(path: Path) -> bytes | None:
    try:
        if not os.path.lexists(path):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _make_key(path)
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            key = handle.read(_KEY_BYTES + 1)
    except OSError:
        return None
    private = stat.S_ISREG(info.st_mode) and not info.st_mode & 0o077
    if not private or info.st_uid != os.getuid() or len(key) != _KEY_BYTES:
        return None
    return key


def _make_key(path: Path) -> None:
    """Write a new key at ``path`` unless another process has just written one: written
    whole under a temporary name, then linked into place, which fails if one is there."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(_KEY_BYTES))
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink()


def forget_memo(root: Path, slot: str) -> None:
    with contextlib.suppress(OSError):
        (root / MEMO_DIR / slot).unlink()
