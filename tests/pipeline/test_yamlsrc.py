"""YAML the way a pipeline author means it, with lines for every key."""

from __future__ import annotations

from pathlib import Path

from runner.errors import Diagnostics
from runner.pipeline.yamlsrc import load_yaml


def load(text: str) -> tuple[object, Diagnostics, object]:
    diags = Diagnostics()
    value, source = load_yaml(text, Path("p.yaml"), diags)
    return value, diags, source


def test_yaml_1_2_scalars() -> None:
    value, diags, _ = load(
        "ratio: 16:9\nanswer: yes\nswitch: on\nday: 2024-05-01\nt: true\nn: ~\nhex: 0x1F\n"
        "f: 1.5\nneg: -3\nquoted: '12'\nblock: |\n  two\n  lines\n"
    )
    assert not diags.items
    assert value == {
        "ratio": "16:9",
        "answer": "yes",
        "switch": "on",
        "day": "2024-05-01",
        "t": True,
        "n": None,
        "hex": 31,
        "f": 1.5,
        "neg": -3,
        "quoted": "12",
        "block": "two\nlines\n",
    }


def test_explicit_core_tags() -> None:
    value, diags, _ = load("a: !!str 12\nb: !!int '7'\nc: !!float 2\n")
    assert not diags.items
    assert value == {"a": "12", "b": 7, "c": 2.0}


def test_duplicate_keys_are_errors_with_both_lines() -> None:
    _, diags, _ = load("a: 1\nb: 2\na: 3\n")
    [error] = diags.items
    assert error.location.line == 3
    assert "duplicate key 'a' (first defined on line 1)" in error.message


def test_merge_keys_fill_in_without_overriding() -> None:
    value, diags, _ = load("base: &b {x: 1, y: 2}\nnode:\n  <<: *b\n  y: 3\n")
    assert not diags.items
    assert value == {"base": {"x": 1, "y": 2}, "node": {"x": 1, "y": 3}}


def test_unsafe_tags_are_refused() -> None:
    _value, diags, _ = load("a: !!python/object/apply:os.system [echo hi]\n")
    assert [d.code for d in diags.items] == ["yaml-tag"]


def test_recursive_alias_is_an_error_not_a_hang() -> None:
    _, diags, _ = load("a: &x [*x]\n")
    assert [d.code for d in diags.items] == ["yaml-alias"]


def test_syntax_error_has_a_line() -> None:
    _, diags, _ = load("a: 1\nb: [2\nc: 3\n")
    [error] = diags.items
    assert error.code == "yaml-syntax" and error.location.line is not None


def test_one_document_only() -> None:
    _, diags, _ = load("a: 1\n---\nb: 2\n")
    assert [d.code for d in diags.items] == ["yaml-multiple-documents"]


def test_locate_keys_values_and_items() -> None:
    _, _, source = load("nodes:\n  a:\n    kind: t2v\n    clips:\n      - x\n      - y\n")
    assert source.locate(("nodes", "a", "kind")).line == 3  # type: ignore[attr-defined]
    assert source.locate(("nodes", "a", "clips", 1)).line == 6  # type: ignore[attr-defined]
    assert source.locate(("nodes", "a"), key=True).line == 2  # type: ignore[attr-defined]
    missing = source.locate(("nodes", "a", "nope"))  # type: ignore[attr-defined]
    assert missing.line == 3 and missing.key_path == ("nodes", "a", "nope")
