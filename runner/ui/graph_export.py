"""The graph as Mermaid or Graphviz DOT text, for review in pull requests and docs."""

from __future__ import annotations

import re

from runner.compile.steps import Compiled
from runner.pipeline.records import FileRef, KeyframeRef, MotionRef, NodeRef, UrlRef

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


class _Ids:
    """Identifiers that Mermaid and DOT accept, one per distinct thing: readable, and kept
    apart by a number (``a-b`` and ``a_b`` would otherwise both be ``a_b``)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}

    def __call__(self, prefix: str, name: str) -> str:
        found = self._ids.get((prefix, name))
        if found is None:
            found = self._ids[(prefix, name)] = f"{prefix}{len(self._ids)}_{_UNSAFE.sub('_', name)}"
        return found


def _edges(compiled: Compiled) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str]]]:
    """Vertices (id -> (label, shape)) and edges (from, to) including asset inputs."""
    ids = _Ids()
    vertices: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str]] = []
    pipeline = compiled.pipeline
    for name in compiled.graph.order:
        node = pipeline.nodes[name]
        step = compiled.steps.get(name)
        kind = f"{node.kind} · {step.endpoint.id}" if step and step.endpoint else node.kind
        vertices[ids("n", name)] = (f"{name}\\n{kind}", node.kind)
        for conditioning in node.inputs:
            ref = conditioning.ref
            if isinstance(ref, NodeRef):
                source = ids("n", ref.node)
            elif isinstance(ref, KeyframeRef):
                source = ids("k", f"{ref.character}.{ref.pose}")
                vertices.setdefault(source, (f"{ref.character}.{ref.pose}", "keyframe"))
            elif isinstance(ref, MotionRef):
                source = ids("m", ref.name)
                vertices.setdefault(source, (f"motion {ref.name}", "motion"))
            elif isinstance(ref, FileRef):
                source = ids("f", ref.path)
                vertices.setdefault(source, (ref.path, "file"))
            else:
                assert isinstance(ref, UrlRef)
                source = ids("u", ref.url)
                vertices.setdefault(source, (ref.url, "file"))
            edges.append((source, ids("n", name)))
    for name, path in pipeline.outputs.items():
        if name in pipeline.nodes:
            out = ids("o", name)
            vertices[out] = (path, "output")
            edges.append((ids("n", name), out))
    return vertices, edges


_MERMAID_SHAPES = {
    "keyframe": ('[/"', '"/]'),
    "motion": ('[/"', '"/]'),
    "file": ('[/"', '"/]'),
    "output": ('[("', '")]'),
    "frame": ('{{"', '"}}'),
    "stitch": ('[["', '"]]'),
}


def to_mermaid(compiled: Compiled) -> str:
    vertices, edges = _edges(compiled)
    lines = ["flowchart LR"]
    for vid, (label, shape) in vertices.items():
        left, right = _MERMAID_SHAPES.get(shape, ('["', '"]'))
        text = label.replace('"', "'").replace("\\n", "<br/>")
        lines.append(f"  {vid}{left}{text}{right}")
    lines += [f"  {a} --> {b}" for a, b in edges]
    return "\n".join(lines) + "\n"


_DOT_SHAPES = {
    "keyframe": "note",
    "motion": "note",
    "file": "note",
    "output": "cylinder",
    "frame": "hexagon",
    "stitch": "box3d",
}


def to_dot(compiled: Compiled) -> str:
    vertices, edges = _edges(compiled)
    name = compiled.pipeline.name.replace('"', "'")
    lines = [f'digraph "{name}" {{', "  rankdir=LR;", "  node [fontname=Helvetica];"]
    for vid, (label, shape) in vertices.items():
        text = label.replace('"', "'")
        lines.append(f'  {vid} [label="{text}", shape={_DOT_SHAPES.get(shape, "box")}];')
    lines += [f"  {a} -> {b};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"
