"""Files that appear whole or not at all.

Everything shotgraph writes for someone else to read (outputs, lockfiles, store markers,
rendered media, the emulator's journal) is written to a temporary file beside its
destination and renamed over it: a reader sees the old file or the complete new one, never
a partial one, and a failure (Ctrl-C included) leaves no temporary file behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(
    dest: str | os.PathLike[str], suffix: str = "", *, durable: bool = True
) -> Iterator[Path]:
    """Yield a fresh, empty temporary path beside ``dest``; on success move it over ``dest``.

    ``suffix`` keeps an extension for libraries that sniff it. ``durable`` fsyncs the file
    before the rename, so a crash cannot leave ``dest`` renamed but empty.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.part{suffix}"
    # O_EXCL never clobbers another writer's file; 0o666 lets the umask decide the mode, as
    # for any file a program creates (mkstemp's 0o600 would leave private outputs behind).
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield temp
        if durable:
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_text(dest: Path, text: str, *, durable: bool = True) -> None:
    """Replace ``dest`` with ``text`` (UTF-8), all at once."""
    with replacing(dest, durable=durable) as temp:
        temp.write_text(text, encoding="utf-8")
