"""The ``outputs:`` of a pipeline: which node goes to which file, kept inside the project.
(Copying a result there is the executor's: runner/run/delivery.py.)"""

from __future__ import annotations

from pathlib import Path

from runner.errors import Diagnostics
from runner.pipeline.confine import Refused, confine
from runner.pipeline.records import Pipeline, a

SUFFIXES = {"image": (".png",), "video": (".mp4",)}


def resolve_outputs(pipeline: Pipeline, diags: Diagnostics) -> dict[str, Path]:
    """Output paths by node name; unknown nodes, wrong suffixes and escapes are errors."""
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
