"""Dependencies, order, cycles, and the Mermaid / DOT exports."""

from __future__ import annotations

from pathlib import Path

from runner.ui.graph_export import to_dot, to_mermaid
from tests.helpers import check, compiled

CHAIN = """nodes:
  cut: {kind: stitch, clips: [a, c]}
  c: {kind: extend, video: {from: b}, prompt: x}
  b: {kind: extend, video: {from: a}, prompt: x}
  a: {kind: i2v, image: {keyframe: mara.front}, prompt: x}
  street: {kind: t2v, prompt: x}
"""


def test_order_puts_dependencies_first_and_keeps_file_order_otherwise(tmp_path: Path) -> None:
    c = compiled(tmp_path, CHAIN)
    assert c.graph.order == ("a", "b", "c", "cut", "street")
    assert c.graph.descendants(["b"]) == {"c", "cut"}


def test_cycle_is_reported_as_a_chain(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        """nodes:
  a: {kind: extend, video: {from: b}, prompt: x}
  b: {kind: extend, video: {from: a}, prompt: x}
  c: {kind: extend, video: {from: a}, prompt: x}
  free: {kind: t2v, prompt: x}
""",
    )
    messages = [e.message for e in result.errors]
    assert messages == ["the nodes depend on each other in a cycle: a -> b -> a"]


def test_mermaid_and_dot(tmp_path: Path) -> None:
    c = compiled(tmp_path, CHAIN)
    mermaid = to_mermaid(c)
    assert mermaid.startswith("flowchart LR")
    assert "k1_mara_front --> n0_a" in mermaid and "n0_a --> n2_b" in mermaid
    dot = to_dot(c)
    assert dot.startswith('digraph "test"') and "n2_b -> n3_c;" in dot
    assert dot.rstrip().endswith("}")


def test_names_that_sanitise_alike_stay_apart(tmp_path: Path) -> None:
    c = compiled(
        tmp_path,
        """nodes:
  a-b: {kind: t2v, prompt: x}
  a_b: {kind: t2v, prompt: y}
  c: {kind: extend, video: {from: a-b}, prompt: z}
""",
    )
    mermaid = to_mermaid(c)
    assert "n0_a_b[" in mermaid and "n1_a_b[" in mermaid and "n0_a_b --> n2_c" in mermaid
