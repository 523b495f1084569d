"""YAML the way a pipeline author means it, with lines for every key."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import Diagnostics
from runner.pipeline.yamlsrc import load_yaml, load_yaml_bytes


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


def test_an_alias_bomb_stops_at_the_alias_that_crosses_the_bound() -> None:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    value, diags, _ = load("\n".join(lines) + "\n")
    [error] = diags.items
    assert value is None
    assert error.code == "yaml-alias-bomb" and error.location.line == 6
    assert error.location.key_path == ("f", 0)


def test_aliases_that_repeat_a_value_in_every_node_are_fine() -> None:
    # A real episode: one look merged into each of 5,000 nodes, a list reused by all.
    text = "x-look: &look {resolution: 480p, num_frames: 81, frame_rate: 24, seed: 1}\n"
    text += "x-tags: &tags [a, b, c, d, e, f, g, h, i, j]\n"
    text += "nodes:\n" + "".join(
        f"  n{i}: {{<<: *look, kind: t2v, vars: {{tags: *tags}}}}\n" for i in range(5000)
    )
    value, diags, _ = load(text)
    assert not diags.items
    assert isinstance(value, dict) and len(value["nodes"]) == 5000


def test_long_strings_weigh_by_length() -> None:
    text = "s: &s '" + "x" * 10_000 + "'\nl: &l [" + ", ".join(["*s"] * 100) + "]\n"
    text += "m: [" + ", ".join(["*l"] * 20) + "]\n"
    _, diags, _ = load(text)
    assert [d.code for d in diags.items] == ["yaml-alias-bomb"]


def test_nesting_and_integers_are_bounded() -> None:
    _, diags, _ = load("a: " + "[" * 65 + "]" * 65 + "\n")
    assert [(d.code, d.location.line) for d in diags.items] == [("yaml-depth", 1)]
    value, diags, _ = load(
        "ok: " + "9" * 100 + "\nbad: " + "9" * 4301 + "\ntagged: !!int " + "1" * 101 + "\n"
    )
    assert isinstance(value, dict) and value["ok"] == int("9" * 100)
    assert [(d.code, d.location.line) for d in diags.items] == [
        ("yaml-integer", 2),
        ("yaml-integer", 3),
    ]
    assert "4,301 digits" in diags.items[0].message


def test_text_is_utf8_or_utf16_with_a_bom_and_errors_have_a_line() -> None:
    for data in (
        "a: café\n".encode(),
        "\ufeffa: café\n".encode(),
        "a: café\n".encode("utf-16"),
        "a: café\n".encode("utf-16-be").join([b"\xfe\xff", b""]),
    ):
        diags = Diagnostics()
        value, _ = load_yaml_bytes(data, Path("p.yaml"), diags)
        assert value == {"a": "café"} and not diags.items, data
    for data, line, fragment in (
        (b"a: 1\nb: caf\xe9\n", 2, "line 2, column 7: the file is not valid UTF-8"),
        (b"a: 1\n\nb: \x00\n", 3, "line 3, column 4: character U+0000 (NUL)"),
        (b"a: \x1b[1m\n", 1, "U+001B (ESCAPE)"),
        ("a: 1\nb: 2\n".encode("utf-16") + b"\x00\xd8", 3, "not valid UTF-16"),
    ):
        diags = Diagnostics()
        value, _ = load_yaml_bytes(data, Path("p.yaml"), diags)
        [error] = diags.items
        assert value is None and error.location.line == line and fragment in error.message


def test_a_document_holds_a_bounded_number_of_values() -> None:
    diags = Diagnostics()
    text = "a: [" + ", ".join(["1"] * 50) + "]\nb: [" + ", ".join(["2"] * 60) + "]\n"
    value, source = load_yaml(text, Path("p.yaml"), diags, max_values=100)
    [error] = diags.items
    assert value is None and error.code == "yaml-size" and error.location.line == 2
    value, source = load_yaml(text, Path("p.yaml"), Diagnostics())
    assert source.values > 110


def test_characters_yaml_refuses_in_ascii_and_in_other_text() -> None:
    from runner.pipeline.textfile import TextProblem, decode

    for text, line, column in (
        ("a: 1\nb: x\x1by\n", 2, 5),
        ("a: café\nb: x\x80y\n", 2, 5),  # a C1 control, beside other Unicode
        ("a: café\nb: x\x1by\n", 2, 5),
    ):
        with pytest.raises(TextProblem) as found:
            decode(text.encode())
        assert (found.value.line, found.value.column) == (line, column)
    assert decode("a: café \u0085 😀\n".encode()) == "a: café \u0085 😀\n"
