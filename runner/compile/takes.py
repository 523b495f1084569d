"""Takes: one generation node rendered several ways, each take its own job and cache entry.

A node with ``takes`` compiles to one step per take, named ``NODE#N`` (a ``#`` is never in a
node's name), and to the node's own step, which is the picked take's step under the node's
name: the same request and so the same cache key, so it costs nothing of its own (the run
shares the take's job, or finds it in the store). Dependents read the node's step: picking
another take changes its key and so reruns exactly what depends on it; picking the same take
again changes nothing.

Take 1 is the node as written (the same seed, the same request), so adding ``takes: 3`` to a
rendered node keeps its key and its dependents' keys: only takes 2 and 3 render.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from runner.compile.keys import SEED_RANGE, derived_seed
from runner.errors import KeyPath
from runner.pipeline.records import Node

TAKE_MARK = "#"


def take_name(node: str, take: int) -> str:
    """The step name of a take: ``intro#2``."""
    return f"{node}{TAKE_MARK}{take}"


@dataclass(frozen=True)
class Variant:
    """A generation node as one of its takes renders it: ``node`` has the take's prompt,
    negative prompt and parameters in place of the node's; ``paths`` says where each of
    those parameters was written, for messages."""

    node: Node
    step_name: str
    take: int
    seed: int
    paths: Mapping[str, KeyPath]


def base_seed(node: Node) -> int:
    """The node's own seed: pinned in the pipeline, else derived from its name."""
    return node.seed if node.seed is not None else derived_seed(node.name)


def variants(node: Node) -> list[Variant]:
    """Every take of ``node``, in order (take 1 first)."""
    found = []
    for number, take in enumerate(node.takes, start=1):
        seed = take.seed if take.seed is not None else (base_seed(node) + number - 1) % SEED_RANGE
        params = {**node.params, **take.params}
        paths = {key: (*node.key_path, key) for key in node.params}
        paths |= {key: (*take.key_path, key) for key in take.params}
        varied = replace(
            node,
            prompt=take.prompt or node.prompt,
            negative_prompt=take.negative_prompt or node.negative_prompt,
            params=params,
        )
        found.append(Variant(varied, take_name(node.name, number), number, seed, paths))
    return found


def take_checks(node: Node) -> list[Node]:
    """What to check of a node with takes, once each: the node's own parameters, and each
    take's parameters where the take wrote them (so an error points at the take)."""
    own = [replace(node, takes=())]
    for take in node.takes:
        if take.params:
            own.append(replace(node, params=take.params, key_path=take.key_path, inputs=()))
    return own
