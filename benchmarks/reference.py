"""What every benchmark prints beside its figures, so a reader can judge them.

A figure alone says little on a shared 2-core machine: the same command takes twice as long
while another job compiles. So each benchmark prints, in the same run, the machine's load
average and a reference measured right then: the wall time of a cold ``python -c pass``
(the floor of any command) and, when there is a pipeline file, libyaml's C event parse of
it (the floor of reading it). A figure is then read against its references, not alone.

    from benchmarks.reference import print_reference
    print_reference(pipeline)  # or print_reference() when there is no pipeline file
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the number of CPUs."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def python_startup(repeat: int = 5) -> float:
    """Median wall seconds of a fresh ``python -c pass`` (this interpreter)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def libyaml_parse(path: Path, repeat: int = 3) -> float | None:
    """Median seconds of libyaml's C event parse of ``path`` (None without libyaml)."""
    try:
        from yaml._yaml import CParser as parser
    except ImportError:
        return None
    text = path.read_text(encoding="utf-8")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        events = parser(text)
        try:
            while events.check_event():
                events.get_event()
        finally:
            events.dispose()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def reference_line(pipeline: Path | None = None) -> str:
    """One line: the load average, and the references measured now."""
    parts = [load_average(), f"python -c pass {python_startup() * 1000:.0f} ms"]
    if pipeline is not None:
        parsed = libyaml_parse(pipeline)
        if parsed is not None:
            size = pipeline.stat().st_size / 1e6
            parts.append(f"libyaml C parse of {pipeline.name} ({size:.1f} MB) {parsed:.3f} s")
    return "reference: " + "; ".join(parts)


def print_reference(pipeline: Path | None = None) -> None:
    print(reference_line(pipeline), flush=True)


def print_figure(name: str, **values: float | str) -> None:
    """A figure for the README's table (scripts/bench_table.py reads these lines), with
    the load average at the moment it was taken."""
    values["load"] = load_average()
    print(f"figure: {name} {json.dumps(values)}", flush=True)


# For the code a benchmark runs in a fresh process: ``peak_rss_mb()``, that process's own
# peak RSS. Not ru_maxrss: Linux keeps it across exec, so a child of a benchmark that has
# grown big (filling a store) would report the benchmark's size, not its own.
PEAK_RSS = """
def peak_rss_mb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""
