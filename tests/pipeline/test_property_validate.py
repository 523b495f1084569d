"""Mutated pipeline files never make `validate` (or `plan`) crash: exit 0 or 1, no traceback;
and a file that is not valid text is an error with a line."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from runner import cli
from tests.helpers import key_paths

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "pipelines").glob("*.yaml"))
TOKENS = [
    "",
    " ",
    ":",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "'",
    '"',
    "&a",
    "*a",
    "!!str",
    "<<:",
    "\t",
    "\n",
    "#",
    "null",
    "16:9",
    "0x",
    "-1",
    "1e400",
    "{{",
    "}}",
    "{%",
    "%}",
    "from:",
    "keyframe: x.y",
    "kind: stitch",
    "__class__",
    "\\u0000",
    "é",
    "🎬",
]
VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    1.5,
    10**20,
    "",
    "x",
    "last",
    "2s",
    "../../etc/passwd",
    "/proc/self/environ",
    "/dev/zero",
    "a\x00b",
    10**120,
    "{{ nope }}",
    "{{ ''.__class__ }}",
    "{{ lipsum() }}",
    "{{ ('a' * 10**10)|length }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    {"template": "../../../etc/passwd"},
    {"inline": "{% include '/proc/self/environ' %}"},
    {"file": "/proc/self/environ"},
    [],
    {},
    [1, "a"],
    {"from": "x"},
    {"keyframe": "mara.front_closeup"},
    {"template": "shot.j2"},
]


# Bytes that make a file something other than UTF-8 text without control characters.
BAD_BYTES = [
    b"\x00",
    b"\x01",
    b"\x07",
    b"\x0b",
    b"\x0c",
    b"\x1b[31m",
    b"\x7f",
    b"\xc2\x80",  # a C1 control, valid UTF-8
    b"\xff",
    b"\xfe\xff",
    b"\xc0\x80",  # an overlong NUL
    b"\xed\xa0\x80",  # a lone surrogate
    b"\xe2\x82",  # a truncated sequence
    b"\xef\xbf\xbe",  # U+FFFE
]


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this project's pipeline inputs (templates, assets, presets) in a temporary
    git work tree, so a mutated file is read as in the clone without writing into it."""
    root = tmp_path_factory.mktemp("studio")
    (root / ".git").mkdir()  # the project root is the nearest git work tree
    shutil.copytree(ROOT / "templates", root / "templates")
    for name in ("assets", "presets"):
        shutil.copytree(ROOT / "pipelines" / name, root / "pipelines" / name)
    return root


def _exit_cleanly(text: str | bytes, capsys: pytest.CaptureFixture[str], studio: Path) -> str:
    """Validate and plan ``text`` in ``studio``; the findings of validate."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", errors="surrogatepass")
    findings = ""
    with tempfile.TemporaryDirectory(dir=studio / "pipelines") as tmp:
        path = Path(tmp) / "mutated.yaml"
        path.write_bytes(data)
        for command in (["validate", str(path)], ["plan", str(path), "--json"]):
            code = cli.run(command)
            _, err = capsys.readouterr()
            assert code in (0, 1), f"exit {code} for {command[0]}:\n{err}\n---\n{text!r}"
            assert "Traceback" not in err and "internal error" not in err, err
            findings = findings or err
    return findings


MUTATIONS = settings(
    max_examples=120,
    # The same examples on every run: a crash is found by a hunt with more examples and
    # random seeds (set derandomize=False), then pinned as a fixture, not by CI by luck.
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@MUTATIONS
@given(data=st.data())
def test_text_mutations_never_crash(
    data: st.DataObject, capsys: pytest.CaptureFixture[str], studio: Path
) -> None:
    lines = data.draw(st.sampled_from(EXAMPLES)).read_text().splitlines()
    for _ in range(data.draw(st.integers(1, 5))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "insert", "indent", "cut"]))
        if action == "delete" and len(lines) > 1:
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "insert":
            at = data.draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + data.draw(st.sampled_from(TOKENS)) + lines[i][at:]
        elif action == "indent":
            lines[i] = " " * data.draw(st.integers(0, 5)) + lines[i].lstrip()
        else:
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
    _exit_cleanly("\n".join(lines) + "\n", capsys, studio)


@functools.cache
def _parsed(example: Path) -> Any:
    """An example's document, parsed once: pure-Python YAML was half of this test's time."""
    return yaml.safe_load(example.read_text())


# The seed derandomize drew from this test's source before the examples were parsed once
# (above): the same 120 mutations as before.
@seed(
    0x50CBC0B685DDCBE93F803516112BFFB8A9CEDDBE088E64F0A9D29CCB41176718E89106868B710531E99AD05D68469A50
)
@MUTATIONS
@given(data=st.data())
def test_structural_mutations_never_crash(
    data: st.DataObject, capsys: pytest.CaptureFixture[str], studio: Path
) -> None:
    source = data.draw(st.sampled_from(EXAMPLES))
    document = copy.deepcopy(_parsed(source))  # a copy: the mutations change it
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(key_paths(document)[1:]))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        choice = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if choice == "delete":
            del parent[path[-1]]
        elif choice == "add" and isinstance(parent, dict):
            parent[
                data.draw(
                    st.sampled_from(
                        [
                            "bogus",
                            "kind",
                            "seed",
                            "video",
                            "image",
                            "at",
                            "preset",
                            "extends",
                            "clips",
                        ]
                    )
                )
            ] = json.loads(
                json.dumps(data.draw(st.sampled_from(VALUES)))
            )  # a copy: VALUES is shared
        else:
            parent[path[-1]] = json.loads(json.dumps(data.draw(st.sampled_from(VALUES))))
    # keep relative asset paths working from the temporary directory
    text = (
        yaml.safe_dump(document, sort_keys=False)
        .replace("assets/", "../assets/")
        .replace("presets/", "../presets/")
    )
    _exit_cleanly(text, capsys, studio)


def test_nothing_is_written_into_the_clone(studio: Path) -> None:
    assert not studio.is_relative_to(ROOT)
    assert not [p for p in (ROOT / "pipelines").iterdir() if p.name.startswith("tmp")]


@MUTATIONS
@given(data=st.data())
def test_invalid_text_is_an_error_with_a_line(
    data: st.DataObject, capsys: pytest.CaptureFixture[str], studio: Path
) -> None:
    """Invalid UTF-8 or UTF-16, NUL and other control characters anywhere: exit 1, and every
    error says its line (the mutation's own line, for the first bad byte)."""
    source = data.draw(st.sampled_from(EXAMPLES)).read_bytes()
    at = data.draw(st.integers(0, len(source)))
    while at < len(source) and (source[at] & 0xC0) == 0x80:
        at += 1  # between characters, so the insert is the first bad byte
    bad = data.draw(st.sampled_from(BAD_BYTES))
    mutated = source[:at] + bad + source[at:]
    truncated = False
    if data.draw(st.booleans()):
        # The same, as UTF-16 with its byte order mark; a bad byte then breaks the UTF-16.
        text = mutated.decode("utf-8", errors="surrogateescape")
        mutated = b"\xff\xfe" + text.encode("utf-16-le", errors="surrogatepass")
        if data.draw(st.booleans()):
            mutated, truncated = mutated[:-1], True  # an odd number of bytes
    findings = _exit_cleanly(mutated, capsys, studio)
    errors = [line for line in findings.splitlines() if " error: " in line]
    assert errors, f"validated:\n{mutated!r}"
    assert all(re.match(r"\S*mutated\.yaml:\d+[: ]", e) for e in errors), findings
    if not truncated:
        line = source[:at].count(b"\n") + 1
        assert re.match(rf"\S*mutated\.yaml:{line}[: ]", errors[0]), (line, findings)
