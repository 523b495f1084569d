"""The graph as Mermaid or Graphviz DOT text, for review in pull requests and docs."""

from __future__ import annotations

import re

from runner.compiler import Compiled
from runner.model import FileRef, KeyframeRef, MotionRef, NodeRef, UrlRef

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _id(prefix: str, name: str) -> str:
    return f"{prefix}_{_UNSAFE.sub('_', name)}"


def _edges(compiled: Compiled) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str]]]:
    """Vertices (id -> (label, shape)) and edges (from, to) including asset inputs."""
    vertices: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str]] = []
    pipeline = compiled.pipeline
    for name in compiled.graph.order:
        node = pipeline.nodes[name]
        step = compiled.steps.get(name)
        detail = step.endpoint.id if step and step.endpoint else node.kind
        vertices[_id("n", name)] = (f"{name}\\n{node.kind} · {detail}", node.kind)
        for conditioning in node.inputs:
            ref = conditioning.ref
            if isinstance(ref, NodeRef):
                source = _id("n", ref.node)
            elif isinstance(ref, KeyframeRef):
                source = _id("k", f"{ref.character}_{ref.pose}")
                vertices.setdefault(source, (f"{ref.character}.{ref.pose}", "keyframe"))
            elif isinstance(ref, MotionRef):
                source = _id("m", ref.name)
                vertices.setdefault(source, (f"motion {ref.name}", "motion"))
            elif isinstance(ref, FileRef):
                source = _id("f", ref.path)
                vertices.setdefault(source, (ref.path, "file"))
            else:
                assert isinstance(ref, UrlRef)
                source = _id("u", ref.url[-40:])
                vertices.setdefault(source, (ref.url, "file"))
            edges.append((source, _id("n", name)))
    for name, path in pipeline.outputs.items():
        if name in pipeline.nodes:
            out = _id("o", name)
            vertices[out] = (path, "output")
            edges.append((_id("n", name), out))
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
