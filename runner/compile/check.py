"""The front half in one call: load, compile, check outputs, lint. No network, no store.

The loader, the compiler (and Jinja) load only when a pipeline is checked: a
:class:`CheckResult` read back from the compile memo needs none of them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runner.compile.steps import Compiled
from runner.errors import Diagnostic, Diagnostics, PipelineInvalid, sorted_diagnostics
from runner.hashing import Hasher, sha256_file

if TYPE_CHECKING:
    from runner.compile.reuse import Reuse


@dataclass(frozen=True)
class CheckResult:
    """A checked pipeline: the compiled steps (when there were no errors) and every finding."""

    compiled: Compiled | None
    outputs: dict[str, Path]
    diagnostics: tuple[Diagnostic, ...]
    shown: bool = False  # the diagnostics are already printed
    # What the compile memo holds it under (runner.compile.memo): set when it was read from
    # or written to one, so what follows from it alone can be remembered beside it.
    memo_id: str | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def require(self) -> Compiled:
        """The compiled pipeline, or :class:`PipelineInvalid` listing every problem."""
        if self.errors or self.compiled is None:
            raise PipelineInvalid(self.diagnostics, shown=self.shown)
        return self.compiled


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: for building a pipeline's hundreds of thousands
    of values and records, none of them garbage, which the collector would otherwise walk
    again and again as they grow. Objects are still freed when their last reference goes;
    only reference cycles wait for the next collection after."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@contextmanager
def collector_passes_over_live() -> Iterator[None]:
    """Inside, the cyclic collector no longer walks what is alive on entry (a compiled
    pipeline: steps, records, hundreds of thousands of objects, kept to the end), but still
    collects what is made and dropped inside, such as the cycles a run of hours leaves
    (retries, timeouts, cancellations). On exit those objects are walked again as usual."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@collector_paused()  # a pipeline's values and records: no garbage to look for
def check_pipeline(
    path: Path, *, backend: str = "fal", hash_file: Hasher = sha256_file, reuse: Reuse | None = None
) -> CheckResult:
    """Check ``path`` completely; errors never stop the checks of unrelated nodes. The nodes
    that did not change since an earlier compile take their steps from ``reuse``."""
    from runner.compile.compiler import compile_pipeline
    from runner.compile.lint import lint
    from runner.pipeline.load import load_pipeline
    from runner.pipeline.outputs import resolve_outputs

    diags = Diagnostics()
    if reuse is None:
        pipeline = load_pipeline(path, diags)
    else:
        pipeline = load_pipeline(path, diags, reuse.passed, reuse.document)
    if pipeline is None:
        return CheckResult(None, {}, tuple(sorted_diagnostics(diags.items)))
    compiled = compile_pipeline(pipeline, diags, backend, hash_file, reuse)
    outputs = resolve_outputs(pipeline, diags)
    lint(compiled, diags, reuse)
    return CheckResult(compiled, outputs, tuple(sorted_diagnostics(diags.items)))
