"""Reuse below the compile memo: when the memo misses because the pipeline's own text
changed, the nodes that did not change take their steps from it instead of compiling again,
as a build system reuses its unchanged targets.

A node's print is a digest of everything compiling it reads: the pipeline's context (the
backend, its path, project, name, model, vars, defaults, presets, characters, motions,
templates folder, review file, broken entries), the node's own record, and the prints of
the nodes it reads (so an edit upstream reaches every node downstream). Files are not in
it: the memo offers its steps only while every file it read but the pipeline itself still
holds (``runner.compile.memo``), and a node whose record is the same names the same files.
Compiling reports nothing but errors, and a memo is kept only of a pipeline without any, so
every step it holds compiled clean and a reused one has nothing to report.

The schema check is skipped the same way for nodes that passed it in the memo's pipeline
(``runner.pipeline.schema_check.PassedNodes``), and the YAML of the nodes whose lines did not
change is not read again (``runner.pipeline.yaml_splice``).

Nodes with takes (several steps to one node) always compile, and so do the nodes they feed.
A print that cannot be told (a record that reprs differently from run to run) only costs a
recompile: prints are compared, never trusted to mean more than equality.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from runner.compile.steps import Step
from runner.pipeline.presets import Setting
from runner.pipeline.records import Node, NodeRef, Pipeline
from runner.pipeline.schema_check import PassedNodes
from runner.pipeline.yaml_splice import DocumentMemo


@dataclass
class Reuse:
    """The steps of an earlier compile with their prints; gathers this compile's prints."""

    earlier: Mapping[str, tuple[bytes, Step]]
    passed: PassedNodes = field(default_factory=lambda: PassedNodes(frozenset()))
    prints: dict[str, bytes] = field(default_factory=dict)
    # The pipeline file as read last time, and this read's when it should be kept.
    document: DocumentMemo = field(default_factory=DocumentMemo)
    _context: bytes = b""

    def start(self, pipeline: Pipeline, backend: str) -> None:
        """Set the context every print of this compile includes."""
        presets = sorted(
            (name, repr(replace(preset, source=None))) for name, preset in pipeline.presets.items()
        )
        context = (
            backend,
            pipeline.path,
            pipeline.project,
            pipeline.name,
            pipeline.model,
            pipeline.description,
            pipeline.vars,
            pipeline.defaults,
            presets,
            pipeline.characters,
            pipeline.motions,
            pipeline.templates_dir,
            pipeline.review,
            sorted(pipeline.broken),
        )
        self._context = hashlib.sha256(repr(context).encode()).digest()

    def step(self, node: Node) -> Step | None:
        """The earlier step of ``node`` if nothing it depends on changed; its print is kept
        either way (None when it has none: takes, or an input without one)."""
        if node.takes:
            return None
        digest = hashlib.sha256(self._context)
        digest.update(repr(node).encode())
        for conditioning in node.inputs:
            if isinstance(conditioning.ref, NodeRef):
                upstream = self.prints.get(conditioning.ref.node)
                if upstream is None:
                    return None
                digest.update(upstream)
        mine = digest.digest()
        self.prints[node.name] = mine
        earlier = self.earlier.get(node.name)
        if earlier is None or earlier[0] != mine:
            return None
        return earlier[1]


def with_settings(step: Step, settings: Mapping[str, Setting]) -> Step:
    """``replace(step, settings=settings)`` at a fraction of its price (it runs ``__init__``
    with every field; a reused pipeline has thousands): the same fields, one changed."""
    copy = object.__new__(Step)
    copy.__dict__.update(step.__dict__, settings=settings)
    return copy
