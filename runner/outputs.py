"""The ``outputs:`` of a pipeline: which node goes to which file, kept inside the project,
and delivering a stored result there."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from runner.compiler import Compiled
from runner.errors import Diagnostics
from runner.model import a

# The mode a file gets when a program simply creates it: 0666 less the umask (read once,
# at import, while nothing else can be creating files).
_UMASK = os.umask(0)
os.umask(_UMASK)
PUBLIC_MODE = 0o666 & ~_UMASK

if TYPE_CHECKING:
    from runner.store import Store

SUFFIXES = {"image": (".png",), "video": (".mp4",)}


def resolve_outputs(compiled: Compiled, diags: Diagnostics) -> dict[str, Path]:
    """Output paths by node name; unknown nodes, wrong suffixes and escapes are errors."""
    pipeline = compiled.pipeline
    root = pipeline.project_root.resolve()
    resolved: dict[str, Path] = {}
    for name, written in pipeline.outputs.items():
        where = pipeline.source.locate(("outputs", name), key=True)
        node = pipeline.nodes.get(name)
        if node is None:
            if ("nodes", name) not in pipeline.broken:
                diags.error(
                    "output-unknown-node",
                    f"no node named '{name}' to output",
                    where,
                    f"known nodes: {', '.join(sorted(pipeline.nodes)[:15])}",
                )
            continue
        path = (pipeline.base_dir / written).resolve()
        if not path.is_relative_to(root):
            diags.error(
                "output-outside-project",
                f"output '{written}' is outside the project directory {root}",
                pipeline.source.locate(("outputs", name)),
                "write outputs below the project, e.g. renders/cut.mp4",
            )
            continue
        produced = "image" if node.kind == "frame" else "video"
        if path.suffix.lower() not in SUFFIXES[produced]:
            diags.error(
                "output-suffix",
                f"'{name}' makes {a(produced)}; '{written}' should end in "
                f"{' or '.join(SUFFIXES[produced])}",
                pipeline.source.locate(("outputs", name)),
            )
            continue
        resolved[name] = path
    return resolved


def deliver(store: Store, sha256: str, path: Path) -> bool:
    """Copy a stored file to an output path, atomically; False when it is already there.

    A copy, not a link: editing a delivered video must not change the store."""
    if path.is_file() and store.hash_file(path).sha256 == sha256:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.chmod(temp, PUBLIC_MODE)  # mkstemp makes it private; an output is not
        with os.fdopen(fd, "wb") as out, store.file_path(sha256).open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return True
