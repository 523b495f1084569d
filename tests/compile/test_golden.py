"""Golden requests: the exact body, endpoint, seed and cache key of every node of every
example pipeline. A change here changes what users are billed for or invalidates their
caches, so it must be deliberate: regenerate with

    SHOTGRAPH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/compile/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from runner.compile.check import check_pipeline
from runner.plan import make_plan
from runner.ui.plan_table import plan_json

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "pipelines").glob("*.yaml"))
GOLDEN = Path(__file__).parent / "golden"


def snapshot(path: Path) -> dict[str, Any]:
    result = check_pipeline(path)
    compiled = result.require()
    nodes = {}
    for name, step in compiled.steps.items():
        nodes[name] = {
            "kind": step.kind,
            "endpoint": step.endpoint.id if step.endpoint else None,
            "seed": step.seed,
            "key": step.key,
            "deps": list(step.deps),
            "request": step.body,
        }
    total = plan_json(make_plan(compiled), compiled)["total"]
    return {
        "nodes": nodes,
        "estimated_usd": total["estimated_usd"],
        "warnings": [w.code for w in result.warnings],
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_compiles_to_its_golden_requests(path: Path) -> None:
    golden = GOLDEN / f"{path.stem}.json"
    actual = snapshot(path)
    if os.environ.get("SHOTGRAPH_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
        pytest.skip(f"wrote {golden.name}: review the diff, then run without the variable")
    assert golden.exists(), f"no golden file; run with SHOTGRAPH_UPDATE_GOLDEN=1 to create {golden}"
    assert actual == json.loads(golden.read_text())


def test_every_example_is_covered() -> None:
    assert {p.stem for p in EXAMPLES} == {p.stem for p in GOLDEN.glob("*.json")}
