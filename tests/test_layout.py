"""The shape of the package (docs/architecture.md): what importing a layer loads, unique
module names, small modules. The import direction itself is checked by `lint-imports`
(pyproject.toml), which `make test` runs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import runner

PACKAGE = Path(runner.__file__).parent
# A subpackage may have its own errors.py or config.py; every other name means one thing.
SHARED_NAMES = {"__init__.py", "__main__.py", "errors.py", "config.py"}


def loaded_after(*modules: str) -> set[str]:
    """The modules a fresh interpreter has loaded after importing ``modules``."""
    code = "import json, sys\n" + "".join(f"import {m}\n" for m in modules)
    code += "print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


RUN_MODULES = sorted(
    f"runner.run.{path.stem}" for path in (PACKAGE / "run").glob("*.py") if path.stem != "__init__"
)


def test_the_executor_loads_neither_the_compiler_nor_jinja() -> None:
    loaded = loaded_after(*RUN_MODULES)
    assert "runner.run.executor" in loaded
    assert not {"jinja2", "runner.compile.compiler", "runner.pipeline.templates"} & loaded


def test_checking_a_pipeline_loads_no_store_network_or_video_library() -> None:
    # The checker loads the loader and the compiler when it checks (not on import).
    checker = ("runner.compile.check", "runner.compile.compiler", "runner.pipeline.load")
    loaded = loaded_after(*checker, "runner.compile.lint", "runner.commands.validate_cmd")
    assert "jinja2" in loaded
    assert not {"diskcache", "httpx", "av", "PIL", "runner.store", "runner.fal"} & loaded


def test_planning_from_the_local_store_loads_no_asyncio() -> None:
    # The shared store's modules (and asyncio, ~17 ms) load only when a shared store is used.
    loaded = loaded_after("runner.store", "runner.plan", "runner.commands.plan_cmd")
    assert "runner.store.store" in loaded
    assert not {"asyncio", "runner.store.remote", "runner.store.tiered"} & loaded
    # Nor what only a settings file (tomllib) or a did-you-mean hint (difflib) needs.
    assert not {"tomllib", "difflib"} & loaded


def test_a_render_worker_loads_no_server() -> None:
    # What a spawned render worker imports: the pool's initializer, then the renderer.
    loaded = loaded_after("runner.emulator.pool", "runner.emulator.animatic")
    assert "av" in loaded
    assert not {"uvicorn", "starlette", "runner.emulator.server", "runner.emulator.app"} & loaded


def test_no_two_modules_share_a_name() -> None:
    names = Counter(path.name for path in PACKAGE.rglob("*.py") if "_bundled" not in path.parts)
    assert [name for name, count in names.items() if count > 1 and name not in SHARED_NAMES] == []


def test_few_modules_at_the_top_none_large() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= 10
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines > 400} == {}


@pytest.mark.parametrize(
    "package",
    sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py") if p.parent.name[0] != "_"),
)
def test_every_package_says_what_it_holds(package: str) -> None:
    doc = importlib.import_module(f"runner.{package}").__doc__
    assert doc is not None and len(doc.split()) >= 8


def test_every_benchmark_prints_the_reference_its_figures_are_read_against() -> None:
    """benchmarks/reference.py: on a shared machine a figure alone says little."""
    scripts = [
        path
        for path in sorted((PACKAGE.parent / "benchmarks").glob("[a-z]*.py"))
        if '__name__ == "__main__"' in path.read_text(encoding="utf-8")
    ]
    silent = [p.name for p in scripts if "print_reference(" not in p.read_text(encoding="utf-8")]
    assert len(scripts) > 10 and silent == []
