"""The 422s of runner/ltx/schema.py (the emulator's and the compiler's) against pydantic's.

fal's apps validate requests with pydantic v2 models. Here the models are generated at test
time, from the very schemas the emulator uses, by datamodel-code-generator (pinned in the
``test`` extra), the way one would by hand::

    datamodel-codegen --input schemas/endpoints --input-file-type jsonschema \\
        --output-model-type pydantic_v2.BaseModel --strict-nullable --output OUT

(``--strict-nullable``: a field is nullable only where the schema says so, as in fal's
apps.) Then 1,000 random invalid bodies, drawn from valid ones by putting awkward values
(numbers as strings, ``2`` for a boolean, ``null``, an enum's neighbour, out-of-range
numbers, wrong shapes) at random places, must get the same errors: the same ``type`` at the
same ``loc`` (after ``"body"``). Bodies pydantic accepts must be accepted too.
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pydantic
import pytest

from runner.emulator import EmulatorServer
from runner.ltx.schema import Field, ObjectSchema, input_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas" / "endpoints"
INVALID_BODIES = 1000

Model = type[pydantic.BaseModel]


def endpoint_ids() -> list[str]:
    return sorted(
        str(path.relative_to(SCHEMAS)).removesuffix(".input.json")
        for path in SCHEMAS.rglob("*.input.json")
    )


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Model]:
    # Per session, not per module: tests/conftest.py runs the thousand bodies first and the
    # others later, and a module's fixture would be generated again for them. No test
    # changes a model (pydantic classes, read only).
    out = tmp_path_factory.mktemp("models")
    command = [
        str(Path(sys.executable).with_name("datamodel-codegen")),
        *("--input", str(SCHEMAS), "--input-file-type", "jsonschema"),
        *("--output-model-type", "pydantic_v2.BaseModel", "--strict-nullable"),
        *("--disable-timestamp", "--formatters", "ruff-format", "--output", str(out)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found: dict[str, Model] = {}
    for endpoint in endpoint_ids():
        title = json.loads((SCHEMAS / f"{endpoint}.input.json").read_text())["title"]
        relative = endpoint.replace("-", "_").replace(".", "_") + "_input.py"
        module = _load(out / relative, f"parity_{len(found)}")
        model: Model = getattr(module, title)
        model.model_rebuild(_types_namespace=vars(module))
        found[endpoint] = model
    return found


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- bodies ----------------------------------------------------------------------------

AWKWARD: list[Any] = [
    None, True, False, 0, 1, 2, -1, 7, 1.5, 2.0, 0.5, 1e30, 10**20, -(10**20),
    "", "x", "12", "12.0", "12.5", " 7 ", "1e2", "1_000", "nan", "inf", "true", "yes",
    "on ", "TRUE", "0x10", "480p", "720p ", "16:9", "auto", [], [1], ["x"], {}, {"a": 1},
]  # fmt: skip


def valid(schema: ObjectSchema) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for f in schema.fields:
        if f.name in schema.required:
            body[f.name] = (f.model and valid(f.model)) or "https://example.com/in.png"
    return schema.with_defaults(body)


def awkward(f: Field, rng: random.Random) -> Any:
    """A value for ``f`` that is likely, not certain, to be refused."""
    roll = rng.random()
    if f.enum and roll < 0.25:
        option = rng.choice(f.enum)
        return rng.choice(
            [
                str(option),
                f" {option}",
                option * 2 if isinstance(option, str) else option + 1,
                float(option) if isinstance(option, int) else None,
            ]
        )
    bounds = [b for b in (f.ge, f.le, f.gt, f.lt) if b is not None]
    if bounds and roll < 0.5:
        edge = rng.choice(bounds)
        return rng.choice([edge - 1, edge + 1, edge - 0.5, edge, str(edge + 1), edge * 2])
    if f.model is not None and roll < 0.6:
        inner = valid(f.model)
        if f.model.fields:
            pick = rng.choice(f.model.fields)
            inner[pick.name] = awkward(pick, rng)
        return inner
    if f.items is not None and roll < 0.7:
        item = valid(f.items)
        if f.items.fields and rng.random() < 0.7:
            pick = rng.choice(f.items.fields)
            item[pick.name] = awkward(pick, rng)
        return rng.choice([[item], [item, "x"], item, [valid(f.items), item]])
    return rng.choice(AWKWARD)


def mutated(schema: ObjectSchema, rng: random.Random) -> dict[str, Any]:
    body = valid(schema)
    for _ in range(rng.choice((1, 1, 2, 3))):
        f = rng.choice(schema.fields)
        if f.name in schema.required and rng.random() < 0.1:
            body.pop(f.name, None)
        else:
            body[f.name] = awkward(f, rng)
    return body


def pydantic_errors(model: Model, body: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    try:
        model.model_validate(body)
    except pydantic.ValidationError as exc:
        return sorted((e["type"], tuple(e["loc"])) for e in exc.errors())
    return []


def our_errors(endpoint: str, body: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    found = input_schema(endpoint).check(body)
    assert all(e["loc"][0] == "body" for e in found)
    return sorted((e["type"], tuple(e["loc"][1:])) for e in found)


def test_a_thousand_invalid_bodies_get_pydantics_errors(models: dict[str, Model]) -> None:
    rng = random.Random(12)
    endpoints = sorted(models)
    invalid = accepted = 0
    mismatches: list[str] = []
    while invalid < INVALID_BODIES:
        endpoint = rng.choice(endpoints)
        body = mutated(input_schema(endpoint), rng)
        want, got = pydantic_errors(models[endpoint], body), our_errors(endpoint, body)
        if want:
            invalid += 1
        else:
            accepted += 1
        if want != got and len(mismatches) < 10:
            mismatches.append(
                f"{endpoint} {json.dumps(body)[:300]}\n  pydantic {want}\n  ours     {got}"
            )
    assert not mismatches, "\n".join(mismatches)
    assert accepted > 50  # the mix also holds bodies both accept


def test_the_three_known_divergences(models: dict[str, Model]) -> None:
    endpoint = "fal-ai/ltx-video-13b-distilled"
    base = valid(input_schema(endpoint))
    for change, kind in (
        ({"resolution": 5}, "enum"),  # a non-string enum value
        ({"expand_prompt": 2}, "bool_parsing"),  # bool 2
        ({"seed": None}, None),  # no default: None is its default, so null is fine
        ({"num_frames": None}, "int_type"),  # a default that is not null: null is refused
        ({"num_frames": "121.0"}, None),  # lax: a whole decimal string is an int
    ):
        body = {**base, **change}
        expected = [(kind, (next(iter(change)),))] if kind else []
        assert our_errors(endpoint, body) == pydantic_errors(models[endpoint], body) == expected


def test_a_nullable_field_takes_null_and_a_union_names_its_branches() -> None:
    schema = ObjectSchema(
        "Input",
        (
            Field("seed", "integer", nullable=True),
            Field(
                "video_size",
                None,
                branches=(
                    Field("ImageSize", "object", model=ObjectSchema("ImageSize", (
                        Field("width", "integer", gt=0),))),
                    Field("enum[VideoSize]", "string", enum=("square", "landscape_16_9")),
                ),
            ),
        ),
    )  # fmt: skip
    assert schema.check({"seed": None, "video_size": "square"}) == []
    assert schema.check({"video_size": {"width": 5}}) == []
    found = [(e["type"], e["loc"]) for e in schema.check({"seed": "x", "video_size": {"width": 0}})]
    assert found == [
        ("int_parsing", ["body", "seed"]),
        ("greater_than", ["body", "video_size", "ImageSize", "width"]),
        ("enum", ["body", "video_size", "enum[VideoSize]"]),
    ]


def test_the_emulator_answers_with_the_same_422(
    models: dict[str, Model], start_emulator: Callable[..., EmulatorServer]
) -> None:
    server = start_emulator(validate_on_submit=True)
    rng = random.Random(5)
    checked = 0
    with httpx.Client(headers={"Authorization": "Key id:secret"}) as client:
        while checked < 25:
            endpoint = rng.choice(sorted(models))
            body = mutated(input_schema(endpoint), rng)
            want = pydantic_errors(models[endpoint], body)
            if not want:
                continue
            answer = client.post(f"{server.url}/{endpoint}", json=body)
            assert answer.status_code == 422
            got = sorted((e["type"], tuple(e["loc"][1:])) for e in answer.json()["detail"])
            assert got == want, (endpoint, body)
            checked += 1
