"""The plan as GitHub-flavoured markdown, for a pull request's review comment: what renders
and why, what each node costs, and the total."""

from __future__ import annotations

from runner.compile.steps import Compiled
from runner.errors import display_path
from runner.plan import Plan, PlanRow


def cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def money(usd: float | None, *, confirmed: bool = True) -> str:
    if usd is None:
        return "unpriced"
    return f"{'' if confirmed else '~'}${usd:.2f}"


def _length(row: PlanRow) -> str:
    timing = row.step.timing
    if timing is None or not timing.num_frames:
        return "-"
    approx = "~" if timing.assumed else ""
    seconds = f" ({approx}{timing.seconds:.2f} s)" if timing.seconds else ""
    return f"{approx}{timing.num_frames} @ {timing.frame_rate:g} fps{seconds}"


def _status(row: PlanRow) -> str:
    if row.status == "cached":
        return "cached"
    verb = "**render**" if row.status == "render" else "attach"
    return f"{verb}: {row.reason}" if row.reason else verb


def _cost(row: PlanRow) -> str:
    estimate = row.step.estimate
    if estimate is None:
        return "local"
    shown = money(estimate.usd, confirmed=estimate.confirmed)
    # In brackets: what the node would cost, not what this run adds (cached, shared, paid).
    return shown if row.status == "render" and not row.shared else f"({shown})"


def format_plan_markdown(plan: Plan, compiled: Compiled) -> str:
    """The plan as a markdown section: a heading, the total, a table, notes."""
    pipeline = compiled.pipeline
    counts = plan.counts()
    attach = f" (+{counts['attach']} already submitted)" if counts["attach"] else ""
    approx = "~" if plan.unconfirmed else ""
    lines = [
        f"### Plan: {cell(pipeline.name)} (`{display_path(pipeline.path)}`)",
        "",
        f"**{counts['render']} of {len(plan.rows)} nodes to render{attach} · estimated "
        f"{approx}${plan.total_usd:.2f}** · model `{pipeline.model}` · backend "
        f"`{compiled.backend}`",
        "",
        "| node | kind | endpoint | frames | est. cost | status |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for row in plan.rows:
        step = row.step
        endpoint = f"`{step.endpoint.id}`" if step.endpoint else "(local)"
        lines.append(
            f"| {cell(step.name)} | {step.kind} | {endpoint} | {_length(row)} | "
            f"{_cost(row)} | {cell(_status(row))} |"
        )
    notes = []
    if plan.unconfirmed:
        notes.append(
            "~ price not confirmed by fal for: "
            + ", ".join(plan.unconfirmed)
            + " (see Model families in docs/pipeline-format.md)"
        )
    if plan.unpriced:
        notes.append("unpriced (fal publishes no price): " + ", ".join(plan.unpriced))
    if any(r.step.timing and r.step.timing.assumed for r in plan.rows):
        notes.append("~ frames assumed: the endpoint takes no num_frames/frame_rate")
    if notes:
        lines += ["", *(f"- {cell(note)}" for note in notes)]
    return "\n".join(lines) + "\n"
