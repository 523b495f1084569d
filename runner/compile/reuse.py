"""Reuse below the compile memo: when the memo misses because the pipeline's own text
changed, the nodes that did not change take their steps from it instead of compiling again,
as a build system reuses its unchanged targets.

A node's print is a digest of everything compiling it reads: the pipeline's context (the
backend, its path, project, name, model, vars, defaults, presets, characters, motions,
templates folder, review file, broken entries), the node's own record (told by its name
and its mapping in the document, which the record is built from alone), and the prints of
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
from typing import Any

from runner.compile.steps import Step
from runner.pipeline.presets import Setting
from runner.pipeline.records import Node, NodeRef, Pipeline
from runner.pipeline.schema_check import PassedNodes
from runner.pipeline.yaml_splice import DocumentMemo

# Lint's findings of one node's step: (code, message, hint) each.
NodeWarnings = tuple[tuple[str, str, str], ...]


@dataclass
class Reuse:
    """The steps of an earlier compile with their prints; gathers this compile's prints."""

    earlier: Mapping[str, tuple[bytes, Step]]
    passed: PassedNodes = field(default_factory=lambda: PassedNodes(frozenset()))
    # Lint's findings of each node's own step in the earlier compile (what ``_node_warnings``
    # said, before the once-per-pipeline ones are sifted), made under the earlier prints.
    warned_before: Mapping[str, Any] = field(default_factory=dict)
    prints: dict[str, bytes] = field(default_factory=dict)
    # The nodes whose step this compile took from the earlier one, and lint's findings of
    # this compile's steps (kept in the memo beside the prints).
    taken: set[str] = field(default_factory=set)
    warned: dict[str, NodeWarnings] = field(default_factory=dict)
    # The pipeline file as read last time, and this read's when it should be kept.
    document: DocumentMemo = field(default_factory=DocumentMemo)
    _context: bytes = b""
    _specs: Mapping[str, Any] = field(default_factory=dict)

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
        root = pipeline.source.root
        nodes = root.get("nodes") if isinstance(root, dict) else None
        self._specs = nodes if isinstance(nodes, dict) else {}

    def step(self, node: Node) -> Step | None:
        """The earlier step of ``node`` if nothing it depends on changed; its print is kept
        either way (None when it has none: takes, or an input without one)."""
        if node.takes:
            return None
        digest = hashlib.sha256(self._context)
        # A node's record is built from its name and its mapping in the document alone
        # (``runner.pipeline.build``), which the compile reads right after: the repr of
        # plain values costs a third of the record's (dataclasses' reprs are Python code).
        spec = self._specs.get(node.name)
        digest.update(repr((node.name, spec) if spec is not None else node).encode())
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

    def warnings(self, name: str) -> NodeWarnings | None:
        """Lint's findings of the step of ``name`` in the earlier compile, when this compile
        took that step from it: the same node (its print) and the same step say the same.
        None otherwise, or when what the memo holds is not findings."""
        if name not in self.taken:
            return None
        found = self.warned_before.get(name)
        if not isinstance(found, tuple):
            return None
        for item in found:
            if not (isinstance(item, tuple) and len(item) == 3):
                return None
            if not all(isinstance(text, str) for text in item):
                return None
        return found


def with_settings(step: Step, settings: Mapping[str, Setting]) -> Step:
    """``replace(step, settings=settings)`` at a fraction of its price (it runs ``__init__``
    with every field; a reused pipeline has thousands): the same fields, one changed."""
    copy = object.__new__(Step)
    copy.__dict__.update(step.__dict__, settings=settings)
    return copy
