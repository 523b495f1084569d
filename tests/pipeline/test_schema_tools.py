"""The published schema works in standard tools: `check-jsonschema` (what a studio's CI or
pre-commit runs) passes every example and fails exactly the broken fixtures whose problem is
a schema error (shotgraph's own validator, on the same file, is the judge); no fractional
`multipleOf` trips binary floating point; and a node's keys follow its model family."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from check_jsonschema import main as check_jsonschema_command  # type: ignore[import-untyped]
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from runner.errors import Diagnostics
from runner.pipeline.schema_check import pipeline_schema
from runner.pipeline.schema_validator import Check, SchemaError, compile_schema
from runner.pipeline.yamlsrc import read_yaml_file

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "pipeline.schema.json"


def run_check_jsonschema(*args: str) -> tuple[int, str]:
    """The `check-jsonschema` command line, run in this process (its verdict is the point,
    not its process): the exit code and what it printed."""
    done = CliRunner().invoke(check_jsonschema_command, args)
    return done.exit_code, done.stdout + done.stderr


def check_jsonschema(*files: Path) -> dict[str, list[str]]:
    """check-jsonschema's errors per file (every file named, errors or not)."""
    _, printed = run_check_jsonschema("--schemafile", str(SCHEMA), "-o", "json", *map(str, files))
    report = json.loads(printed)
    assert not report.get("parse_errors"), report["parse_errors"]
    found: dict[str, list[str]] = {str(f): [] for f in files}
    for error in report["errors"]:
        found[error["filename"]].append(f"{error['path']}: {error['message']}")
    return found


@cache
def _validator() -> Check:
    """Compiled once, as the product does: it keeps nothing of the documents it checks."""
    return compile_schema(pipeline_schema())


def schema_errors(document: Any) -> list[SchemaError]:
    errors: list[SchemaError] = []
    _validator()(document, (), errors)
    return errors


def readable(path: Path) -> Any | None:
    """The document, when it is YAML that any tool can read (not a hostile file, which
    shotgraph's reader refuses before any schema)."""
    diags = Diagnostics()
    document, _ = read_yaml_file(path, diags)
    return None if diags.has_errors else document


EXAMPLES = sorted((ROOT / "pipelines").glob("*.yaml"))
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "invalid").glob("*.yaml"))
# 0.3, 0.35, 0.6, 0.7, 0.85 and 0.95 are "not multiples of 0.05" in binary floating point.
ADAIN = {
    f"adain-{step}.yaml": "version: 1\nname: adain\nmodel: ltx-0.9.8-distilled\n"
    f"nodes:\n  a: {{kind: t2v, prompt: x, temporal_adain_factor: {round(step * 0.05, 2)}}}\n"
    for step in range(21)
}
# A node's keys by its model family: (the pipeline's model line, the node's keys, valid).
FAMILIES = {
    "old-family.yaml": ("model: ltx-video\n", "guidance_scale: 3", True),
    "default.yaml": ("", "guidance_scale: 3", False),
    "node-override.yaml": ("", "model: ltx-video, guidance_scale: 3", True),
    "node-back.yaml": (
        "model: ltx-video\n",
        "model: ltx-0.9.7-distilled, guidance_scale: 3",
        False,
    ),
}


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    """(the directory of the written files, check-jsonschema's errors per file) for every
    example, every readable fixture and the files of :data:`ADAIN` and :data:`FAMILIES`: one
    run of the command for them all (each run first checks the schema against its
    metaschema, the most of its time). Read only."""
    written = tmp_path_factory.mktemp("schema-tools")
    for name, text in ADAIN.items():
        (written / name).write_text(text)
    for name, (model, extra, _) in FAMILIES.items():
        (written / name).write_text(
            f"version: 1\nname: t\n{model}nodes:\n  a: {{kind: t2v, prompt: x, {extra}}}\n"
        )
    fixtures = [path for path in FIXTURES if readable(path) is not None]
    files = [*EXAMPLES, *fixtures, *(written / name for name in [*ADAIN, *FAMILIES])]
    return written, check_jsonschema(*files)


def test_check_jsonschema_agrees_on_every_example_and_fixture(
    verdicts: tuple[Path, dict[str, list[str]]],
) -> None:
    fixtures = [path for path in FIXTURES if readable(path) is not None]
    _, found = verdicts
    assert {str(p): found[str(p)] for p in EXAMPLES} == {str(p): [] for p in EXAMPLES}
    schema_broken = {p for p in fixtures if schema_errors(readable(p))}
    assert len(schema_broken) >= 20  # the fixtures that are schema errors, and the rest pass
    assert {p for p in fixtures if found[str(p)]} == schema_broken


def test_no_fractional_step_fails_a_valid_value(
    verdicts: tuple[Path, dict[str, list[str]]],
) -> None:
    written, found = verdicts
    files = [written / name for name in ADAIN]
    assert len(files) == 21 and all(not found[str(path)] for path in files)
    validator = Draft202012Validator(pipeline_schema())
    for path in files:
        assert not list(validator.iter_errors(readable(path)))
        assert not schema_errors(readable(path))

    def steps(node: Any) -> list[Any]:
        if isinstance(node, dict):
            here = [node["multipleOf"]] if "multipleOf" in node else []
            return here + [s for value in node.values() for s in steps(value)]
        return [s for value in node for s in steps(value)] if isinstance(node, list) else []

    assert all(float(step).is_integer() for step in steps(pipeline_schema()))


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = pipeline_schema()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def offered(family: str, kind: str) -> set[str]:
    """The keys an editor offers on a node of ``kind`` in a pipeline on ``family``: the
    branch of the schema the node's `if`/`then` on `model` and `kind` leads to."""
    top = next(
        branch["then"]
        for branch in pipeline_schema()["allOf"]
        if branch["if"]["properties"]["model"].get("const") == family
    )
    node_in = _resolve(top["properties"]["nodes"]["additionalProperties"]["$ref"])
    default = next(b["else"]["$ref"] for b in node_in["allOf"] if "else" in b)
    kind_def = next(
        b["then"]["$ref"]
        for b in _resolve(default)["allOf"]
        if b["if"]["properties"]["kind"]["const"] == kind
    )
    return set(_resolve(kind_def)["properties"])


def test_a_nodes_keys_follow_its_model_family(
    verdicts: tuple[Path, dict[str, list[str]]],
) -> None:
    assert {"guidance_scale", "num_inference_steps"} <= offered("ltx-video", "t2v")
    assert not {"guidance_scale", "num_inference_steps"} & offered("ltx-0.9.7-distilled", "t2v")
    assert "first_pass_skip_final_steps" in offered("ltx-0.9.7-distilled", "t2v")
    assert "first_pass_skip_final_steps" not in offered("ltx-0.9.8-distilled", "t2v")
    assert "temporal_adain_factor" in offered("ltx-0.9.8-distilled", "t2v")
    assert "loras" not in offered("ltx-video", "i2v") and "image" in offered("ltx-video", "i2v")
    written, found = verdicts
    files = {name: written / name for name in FAMILIES}
    for name, (_, _, valid) in FAMILIES.items():
        assert (not found[str(files[name])]) is valid, (name, found[str(files[name])])
        assert (not schema_errors(readable(files[name]))) is valid, name


@pytest.mark.parametrize("schema", ["pipeline.schema.json", "presets.schema.json"])
def test_the_schemas_are_valid_for_standard_tools(schema: str) -> None:
    code, printed = run_check_jsonschema("--check-metaschema", str(ROOT / "schemas" / schema))
    assert code == 0, printed
