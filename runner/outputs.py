"""The ``outputs:`` of a pipeline: which node goes to which file, kept inside the project,
and delivering a stored result there."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from runner import atomic
from runner.compiler import Compiled
from runner.confine import Refused, confine
from runner.errors import Diagnostics
from runner.model import a

if TYPE_CHECKING:
    from runner.store import Store

SUFFIXES = {"image": (".png",), "video": (".mp4",)}


def resolve_outputs(compiled: Compiled, diags: Diagnostics) -> dict[str, Path]:
    """Output paths by node name; unknown nodes, wrong suffixes and escapes are errors."""
    pipeline = compiled.pipeline
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
        try:
            path = confine(pipeline.project, written, pipeline.base_dir)
        except Refused as refused:
            diags.error(
                refused.code,
                f"output {refused.message}",
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
    with atomic.replacing(path) as temp:
        shutil.copyfile(store.file_path(sha256), temp)
    return True
