"""The content hash of a file: SHA-256 and size, streamed (inputs can be large videos)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

# What hashes a project file for the compiler: this, or the store's remembering version.
Hasher = Callable[[Path], tuple[str, int]]


def sha256_file(path: Path) -> tuple[str, int]:
    """The SHA-256 (hex) and size of ``path``; OSError when it cannot be read."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return digest.hexdigest(), handle.tell()
