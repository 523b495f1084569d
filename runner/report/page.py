"""Writes the report folder: gathers the shots, their media and the comparison, and renders
the page with Jinja (the app's own templates, autoescaped: prompts are untrusted text)."""

from __future__ import annotations

import shutil
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import jinja2

from runner import atomic
from runner.compile.steps import Compiled
from runner.lock import Lock
from runner.report.compare import Comparison, compare
from runner.report.media import gather_media
from runner.report.shots import WAITING, Shot, collect_shots
from runner.store import Store, is_store
from runner.ui.reporters import RunLog

PAGE = Path(__file__).parent / "page"


@dataclass(frozen=True)
class ReportResult:
    """What was written: the page, how many shots, posters made now (not from the store)."""

    index: Path
    shots: int
    posters_made: int
    changed: int | None


def write_report(
    compiled: Compiled,
    store_root: Path,
    folder: Path,
    *,
    lock: Lock | None,
    against: tuple[str, Lock] | None = None,
) -> ReportResult:
    """Write the report of ``compiled`` into ``folder`` (created; files already there with
    the same content are kept). A store that does not exist is not created: the report
    then shows what is planned."""
    with ExitStack() as stack:
        store = (
            stack.enter_context(Store.open(store_root, read_only=True))
            if is_store(store_root)
            else None
        )
        events = RunLog.last_events(store_root, compiled.pipeline.name)
        shots = collect_shots(compiled, store, lock, events)
        comparison = compare(shots, against[1], against[0]) if against else None
        made = 0
        if store is not None:
            every = [s for shot in shots for s in (shot, *shot.takes)]
            outputs = [s.output for s in every if s.output is not None]
            outputs += comparison.outputs() if comparison else []
            placed, made = gather_media(outputs, store, folder)
            for shot in every:
                if shot.output is not None:
                    shot.output = placed.get(shot.output.sha256, shot.output)
            if comparison:
                comparison.place(placed)
    index = folder / "index.html"
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_text(index, render_page(compiled, shots, comparison), durable=False)
    (folder / "assets").mkdir(exist_ok=True)
    shutil.copyfile(PAGE / "report.css", folder / "assets" / "report.css")
    changed = len(comparison.shots) if comparison else None
    return ReportResult(index, len(shots), made, changed)


def render_page(compiled: Compiled, shots: list[Shot], comparison: Comparison | None) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PAGE),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    statuses = Counter(shot.status for shot in shots)
    summary = {
        "shots": len(shots),
        "statuses": sorted(statuses.items()),
        "estimated": round(sum(s.usd for s in compiled.steps.values() if not s.takes), 6),
        "waiting_usd": round(sum(s.step.usd for s in shots if s.status == WAITING), 6),
    }
    return env.get_template("report.html.j2").render(
        pipeline=compiled.pipeline,
        pipeline_file=compiled.pipeline.path.name,
        backend=compiled.backend,
        shots=shots,
        cuts=[shot for shot in shots if shot.is_cut],
        comparison=comparison,
        summary=summary,
    )
