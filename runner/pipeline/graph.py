"""References become edges: checks, topological order, cycles reported as chains."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runner.errors import Diagnostics
from runner.pipeline.records import NodeRef, Pipeline, a, output_type


@dataclass(frozen=True)
class Graph:
    """Dependencies between the nodes that could be built, and an order to run them in."""

    deps: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]  # every node after all of its dependencies; cyclic ones left out

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {name: [] for name in self.deps}
        for name, deps in self.deps.items():
            for dep in deps:
                out[dep].append(name)
        return out

    def descendants(self, roots: Iterable[str]) -> set[str]:
        children = self.dependents()
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen


def build_graph(pipeline: Pipeline, diags: Diagnostics) -> Graph:
    """Check every node reference and order the graph; problems go to ``diags``."""
    broken_nodes = {name for section, name in pipeline.broken if section == "nodes"}
    deps: dict[str, tuple[str, ...]] = {}
    for name, node in pipeline.nodes.items():
        found: list[str] = []
        for conditioning in node.inputs:
            ref = conditioning.ref
            if not isinstance(ref, NodeRef):
                continue
            where = (*conditioning.key_path, "from")
            if ref.node == name:
                diags.error(
                    "ref-self",
                    f"node '{name}' refers to itself",
                    pipeline.source.locate(where),
                    "a node can only use the outputs of other nodes",
                )
                continue
            target = pipeline.nodes.get(ref.node)
            if target is None:
                if ref.node not in broken_nodes:
                    diags.error(
                        "ref-unknown-node",
                        f"no node named '{ref.node}'",
                        pipeline.source.locate(where),
                        _did_you_mean(ref.node, pipeline.nodes),
                    )
                continue
            produced = output_type(target.kind)
            if produced != conditioning.expects:
                diags.error(
                    "ref-type",
                    f"'{ref.node}' is {a(target.kind)} node and gives {a(produced)}, "
                    f"but {a(conditioning.expects)} is needed here",
                    pipeline.source.locate(where),
                    _type_hint(conditioning.expects),
                )
                continue
            if ref.node not in found:
                found.append(ref.node)
        deps[name] = tuple(found)
    order = _topological(deps)
    if len(order) < len(deps):
        for cycle in _cycles(deps, set(deps) - set(order)):
            first = pipeline.nodes[cycle[0]]
            chain = " -> ".join((*cycle, cycle[0]))
            diags.error(
                "cycle",
                f"the nodes depend on each other in a cycle: {chain}",
                pipeline.source.locate(first.key_path, key=True),
                "a node cannot use its own output, directly or through others",
            )
    return Graph(deps, tuple(order))


def _did_you_mean(name: str, known: Mapping[str, object]) -> str:
    import difflib  # here: only a broken reference needs it, not every start

    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}?"
    return f"known nodes: {', '.join(sorted(known)[:15])}"


def _type_hint(expects: str) -> str:
    if expects == "image":
        return "to start from a video's frame, add a frame node (kind: frame, at: last) and use it"
    return "use a t2v, i2v, extend, multicondition or stitch node, or a motion clip"


def _topological(deps: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Kahn's algorithm; ties broken by the order the file declares nodes in, so plans read
    like the pipeline and are the same on every run."""
    position = {name: i for i, name in enumerate(deps)}
    waiting = {name: len(d) for name, d in deps.items()}
    children: dict[str, list[str]] = {name: [] for name in deps}
    for name, d in deps.items():
        for dep in d:
            children[dep].append(name)
    ready = [(position[name], name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (position[child], child))
    return order


def _cycles(deps: Mapping[str, tuple[str, ...]], stuck: set[str]) -> list[tuple[str, ...]]:
    """One chain per cycle among ``stuck`` nodes, each starting at its smallest name."""
    cycles: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for start in sorted(stuck):
        if start in seen:
            continue
        path: list[str] = []
        index: dict[str, int] = {}
        node = start
        while node not in index and node not in seen:
            index[node] = len(path)
            path.append(node)
            node = next(d for d in deps[node] if d in stuck)
        seen.update(path)
        if node in index:
            cycle = path[index[node] :]
            pivot = cycle.index(min(cycle))
            cycles.append(tuple(cycle[pivot:] + cycle[:pivot]))
    return cycles
