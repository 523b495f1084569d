#!/usr/bin/env python3
"""validate + plan of generated pipelines of 1,000 and 5,000 nodes.

Each pipeline is chains of one image-to-video shot and three extends, with templates,
characters and a preset, as a real episode file would have. Every measurement runs in a fresh
process (cold: nothing cached), three times; the median wall time and the peak RSS are printed.
Target: 5,000 nodes in under 1 s on the 2-core machine.

    .venv/bin/python benchmarks/plan_scale.py [--sizes 1000 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.reference import PEAK_RSS, print_figure, print_reference  # noqa: E402

MEASURE = (
    PEAK_RSS
    + """
import json, sys, time
from pathlib import Path
start = time.perf_counter()
from runner.compile.check import check_pipeline
from runner.plan import make_plan
imported = time.perf_counter()
result = check_pipeline(Path(sys.argv[1]))
plan = make_plan(result.require())
done = time.perf_counter()
print(json.dumps({
    "wall": done - start, "import": imported - start, "check_plan": done - imported,
    "nodes": len(plan.rows), "usd": plan.total_usd,
    "peak_rss_mb": peak_rss_mb(),
}))
"""
)


def write_pipeline(directory: Path, nodes: int) -> Path:
    """A pipeline of ``nodes`` nodes: chains of i2v + 3 extends."""
    from PIL import Image

    (directory / ".git").mkdir(exist_ok=True)  # the project root
    assets = directory / "assets"
    assets.mkdir(exist_ok=True)
    for name in ("mara", "jun"):
        Image.new("RGB", (64, 36), (180, 90, 40)).save(assets / f"{name}.png")
    lines = [
        "version: 1",
        f"name: scale-{nodes}",
        "defaults: {preset: cinematic-5s, negative_prompt: {template: negative/continuity.j2}}",
        "characters:",
        "  mara: {description: a woman in a yellow raincoat, keyframes: {front: assets/mara.png}}",
        "  jun: {description: a man with round glasses, keyframes: {front: assets/jun.png}}",
        "nodes:",
    ]
    for chain in range(nodes // 4):
        who = "mara" if chain % 2 else "jun"
        lines += [
            f"  shot{chain}:",
            "    kind: i2v",
            f"    image: {{keyframe: {who}.front}}",
            "    prompt:",
            "      template: shot.j2",
            f"      vars: {{shot: Close-up, action: beat number {chain}, setting: room {chain}}}",
        ]
        previous = f"shot{chain}"
        for hop in range(3):
            name = f"shot{chain}_more{hop}"
            lines += [
                f"  {name}:",
                "    kind: extend",
                f"    video: {{from: {previous}}}",
                f"    prompt: {{template: continue.j2, vars: {{action: hop {hop}}}}}",
            ]
            previous = name
    path = directory / f"scale-{nodes}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'nodes':>6}  {'wall s (median)':>15}  {'of which import':>15}  {'peak RSS MB':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = write_pipeline(Path(tmp), size)
            print_reference(path)
            runs = [measure(path) for _ in range(args.repeat)]
            wall = statistics.median(r["wall"] for r in runs)
            imported = statistics.median(r["import"] for r in runs)
            rss = max(r["peak_rss_mb"] for r in runs)
            print(f"{size:>6}  {wall:>15.3f}  {imported:>15.3f}  {rss:>11.1f}")
            print_figure(f"plan_scale_{size}", wall=round(wall, 3), rss=round(rss))
    return 0


if __name__ == "__main__":
    sys.exit(main())
