"""The plan as a readable table (stdout) or JSON."""

from __future__ import annotations

import json
from typing import Any

from runner.compile.steps import Compiled, Step
from runner.errors import display_path
from runner.plan import Plan, PlanRow

COLUMNS = (
    "NODE",
    "KIND",
    "ENDPOINT",
    "FRAMES",
    "FPS",
    "SECONDS",
    "EST. COST",
    "PRICED AS",
    "STATUS",
)


def _cells(row: PlanRow) -> tuple[str, ...]:
    step = row.step
    timing = step.timing
    approx = "~" if timing is not None and timing.assumed else ""
    frames = f"{approx}{timing.num_frames}" if timing and timing.num_frames else "-"
    fps = f"{timing.frame_rate:g}" if timing and timing.frame_rate else "-"
    seconds = f"{approx}{timing.seconds:.2f}" if timing and timing.seconds else "-"
    cost = "local" if step.estimate is None else step.estimate.label
    if row.status == "cached" or row.wait is not None:
        cost = f"({cost})"
    # The formula and its inputs: "6 s x $0.06/s at 1080p", "112 MP (1280x720x121) x ...".
    priced = "-" if step.estimate is None else step.estimate.basis
    status = row.shown_status + (f": {row.shown_reason}" if row.shown_reason else "")
    endpoint = step.endpoint.id if step.endpoint else "(local)"
    return (step.name, step.kind, endpoint, frames, fps, seconds, cost, priced, status)


def format_plan(plan: Plan, compiled: Compiled, *, verbose: bool = False) -> str:
    pipeline = compiled.pipeline
    rows = [COLUMNS, *(_cells(r) for r in plan.rows)]
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    right = {3, 4, 5, 6}
    # One format for every row: a row is one call, not one per cell (5,000 rows).
    row_format = "  ".join(f"{{:{'>' if i in right else '<'}{w}}}" for i, w in enumerate(widths))
    lines = [
        f"{pipeline.name} ({display_path(pipeline.path)}) · model {pipeline.model} · "
        f"backend {compiled.backend}",
        "",
    ]
    lines += [row_format.format(*cells).rstrip() for cells in rows]
    counts = plan.counts()
    total = f"${plan.total_usd:.2f}"
    attach = f" (+{counts['attach']} already submitted)" if counts["attach"] else ""
    lines += [
        "",
        f"to render: {counts['render']} of {len(plan.rows)} nodes{attach} · "
        f"estimated cost {'~' if plan.unconfirmed else ''}{total}",
    ]
    for gate, held in plan.waiting.items():
        waiting = sum(row.cost for row in held)
        lines.append(
            f"waiting for approval of {gate}: {_names([r.step.name for r in held])} · "
            f"~${waiting:.2f} more once approved (not in the estimate)"
        )
    if plan.unconfirmed:
        lines.append(
            f"  ~ price not confirmed by fal for: {_names(plan.unconfirmed)} "
            "(see Model families in docs/pipeline-format.md)"
        )
    if plan.unpriced:
        lines.append(f"  unpriced (fal publishes no price): {_names(plan.unpriced)}")
    if any(r.step.timing and r.step.timing.assumed for r in plan.rows):
        lines.append(
            "  ~ frames, rate or size assumed: the request does not fix them, or they follow "
            "an input not known yet"
        )
    if verbose:
        for row in plan.rows:
            if row.step.body is not None:
                lines += [
                    "",
                    f"{row.step.name} -> {row.step.endpoint.id if row.step.endpoint else ''}",
                    json.dumps(row.step.body, indent=2, ensure_ascii=False),
                ]
    return "\n".join(lines) + "\n"


def _names(names: list[str]) -> str:
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def plan_json(plan: Plan, compiled: Compiled, *, verbose: bool = False) -> dict[str, Any]:
    return {
        "pipeline": compiled.pipeline.name,
        "file": str(compiled.pipeline.path),
        "model": compiled.pipeline.model,
        "backend": compiled.backend,
        "nodes": [_row(row, compiled, verbose) for row in plan.rows],
        "total": {
            "estimated_usd": plan.total_usd,
            "to_render": plan.counts()["render"],
            "to_attach": plan.counts()["attach"],
            "cached": plan.counts()["cached"],
            "unconfirmed_prices": plan.unconfirmed,
            "unpriced": plan.unpriced,
        }
        | _waiting(plan),
    }


def _waiting(plan: Plan) -> dict[str, Any]:
    """What waits behind approval gates (only when something does: plans stay as they were)."""
    if not plan.waiting:
        return {}
    return {
        "waiting": {gate: [row.step.name for row in rows] for gate, rows in plan.waiting.items()},
        "waiting_usd": plan.waiting_usd,
    }


def _row(row: PlanRow, compiled: Compiled, verbose: bool) -> dict[str, Any]:
    data = row.as_json(verbose=verbose)
    if verbose and row.step.body is not None:
        data["sources"] = sources(row.step, compiled)
    return data


def sources(step: Step, compiled: Compiled) -> dict[str, str]:
    """Where each field of a step's request came from: the node, a preset, the pipeline's
    defaults, the node's inputs, or fal's own default (written out explicitly)."""
    assert step.body is not None
    node = compiled.pipeline.nodes[step.node]
    defaults = compiled.pipeline.defaults
    inputs = {slot.pointer[0] for slot in step.slots}
    found: dict[str, str] = {}
    for key in step.body:
        if key in step.settings:
            found[key] = step.settings[key].layer
        elif key in inputs:
            found[key] = "input"
        elif key == "prompt":
            found[key] = "node"
        elif key == "negative_prompt":
            origin = (
                "node" if node.negative_prompt else "defaults" if defaults.negative_prompt else None
            )
            found[key] = origin or "fal default"
        elif key == "seed":
            found[key] = "node" if step.seed_pinned_by == "node" else "derived from the node name"
        elif key == "loras":
            found[key] = "defaults, character and node LoRAs" if step.body["loras"] else "none"
        else:
            found[key] = "fal default"
    return found
