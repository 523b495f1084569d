"""The pipeline schema: current, valid, within the validator's subset, and that validator
agrees with jsonschema on every example and broken fixture (and on random mutations)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from runner.errors import Diagnostics
from runner.pipeline.schema_check import pipeline_schema
from runner.pipeline.schema_validator import (
    ANNOTATIONS,
    KEYWORDS,
    Check,
    SchemaError,
    compile_schema,
)
from runner.pipeline.yamlsrc import read_yaml_file
from tests.helpers import key_paths

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted((ROOT / "pipelines").glob("*.yaml")) + sorted(
    (ROOT / "tests/fixtures/invalid").glob("*.yaml")
)


def test_committed_schema_is_current() -> None:
    build = subprocess.run(
        [sys.executable, "scripts/build_pipeline_schema.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr


def test_schema_is_valid_2020_12_with_descriptions_and_examples() -> None:
    schema = pipeline_schema()
    Draft202012Validator.check_schema(schema)

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        for name, prop in node.get("properties", {}).items():
            assert "description" in prop or "$ref" in prop, f"{path}.{name} has no description"
            assert "examples" in prop or "$ref" in prop, f"{path}.{name} has no example"
            walk(prop, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            walk(node.get(key), f"{path}.{key}")
        for name, definition in node.get("$defs", {}).items():
            walk(definition, name)

    walk(schema, "")


def test_schema_uses_only_supported_keywords() -> None:
    def walk(node: Any, in_properties: bool = False) -> None:
        if isinstance(node, dict):
            if not in_properties:
                assert set(node) <= KEYWORDS | ANNOTATIONS, set(node) - KEYWORDS - ANNOTATIONS
            for key, value in node.items():
                if key in ("enum", "const", "examples", "default", "required"):
                    continue
                walk(value, in_properties=key in ("properties", "patternProperties", "$defs"))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(pipeline_schema())


@cache
def _our_validator() -> Check:
    """Compiled once for every document, as the product does (schema_check): a compiled
    schema keeps nothing of the documents it checks, only its references, compiled on
    first use (compiling it for each of the hundreds of documents here cost seconds)."""
    return compile_schema(pipeline_schema())


@cache
def _their_validator() -> Draft202012Validator:
    return Draft202012Validator(pipeline_schema())


def _ours(document: Any) -> set[tuple[tuple[Any, ...], str]]:
    errors: list[SchemaError] = []
    _our_validator()(document, (), errors)
    return {(tuple(e.path), e.keyword) for e in errors}


def _theirs(document: Any) -> set[tuple[tuple[Any, ...], str]]:
    errors = _their_validator().iter_errors(document)
    return {(tuple(e.absolute_path), str(e.validator)) for e in errors}


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.stem for p in DOCUMENTS])
def test_validator_agrees_with_jsonschema(path: Path) -> None:
    document, _ = read_yaml_file(path, Diagnostics())
    if document is None:
        pytest.skip("not a YAML document")
    assert _ours(document) == _theirs(document)


EXAMPLE = read_yaml_file(ROOT / "pipelines/demo.yaml", Diagnostics())[0]
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2000),
    st.floats(allow_nan=False, width=32),
    st.text(max_size=8),
    st.sampled_from(["t2v", "i2v", "720p", "16:9", "last", "2s"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validator_agrees_on_mutations(data: st.DataObject) -> None:
    document = json.loads(json.dumps(EXAMPLE))
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(key_paths(document)[1:]))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(LEAVES)
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["bogus", "strength", "num_frames", "kind"]))] = (
                data.draw(LEAVES)
            )
    # jsonschema's multipleOf is float division (0.15 is "not" a multiple of 0.05); ours is
    # exact. The documents here have no multipleOf values, so the two must agree.
    assert _ours(document) == _theirs(document)
