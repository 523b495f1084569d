"""Who holds a journal entry, and the one rule for whether that run is still going
(:func:`owner_alive`).

On this host the process itself tells. A pid alone does not identify a process: after the
owner dies the kernel may hand its pid to an unrelated process, so on Linux the owner also
records its start time in clock ticks since boot (``/proc/<pid>/stat`` field 22) and the
boot id, which together name one process for the life of the machine. On another host (a CI
container, a colleague's machine sharing the store) only the run's heartbeat can tell.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.store.rows import opt_int, opt_str, req_float, req_int, req_str

# A run in progress writes a heartbeat this often; a run on another host (a CI container)
# whose heartbeat is older than the timeout is gone, and its claims can be taken over.
HEARTBEAT_INTERVAL = 5.0
HEARTBEAT_TIMEOUT = 60.0

_PROC = Path("/proc")
_BOOT_ID = _PROC / "sys" / "kernel" / "random" / "boot_id"


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The two fields of ``/proc/<pid>/stat`` that matter here."""

    state: str
    start_ticks: int


def proc_stat(pid: int) -> ProcStat | None:
    """State and start time of ``pid`` from procfs; None when there is no such process or no
    procfs (macOS)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Field 2 is the command name in parentheses and may itself contain ") ", so split
    # after the last parenthesis: what follows starts at field 3.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return ProcStat(state=fields[0], start_ticks=int(fields[19]))
    except (IndexError, ValueError):
        return None


@functools.cache
def boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip() or None
    except OSError:
        return None


@functools.cache
def _ticks_per_second() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError):
        return 100


@functools.cache
def _boot_time() -> float | None:
    try:
        for line in (_PROC / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


@functools.cache
def _self_start(pid: int) -> tuple[float, int | None]:
    """Start of process ``pid`` (this one; keyed by pid so a forked child recomputes):
    Unix time for people, ticks for identity."""
    stat = proc_stat(pid)
    btime = _boot_time()
    if stat is None or btime is None:
        return time.time(), None
    return btime + stat.start_ticks / _ticks_per_second(), stat.start_ticks


@dataclass(frozen=True, slots=True)
class Owner:
    """A run in a process on a host: the holder of a claim or submission.

    ``started`` is the process's start as a Unix time (for messages); ``start_ticks`` and
    ``boot_id`` (Linux only, else None) are what :func:`owner_alive` compares.
    """

    run_id: str
    pid: int
    host: str
    started: float
    start_ticks: int | None = None
    boot_id: str | None = None

    @classmethod
    def current(cls, run_id: str) -> Owner:
        pid = os.getpid()
        started, ticks = _self_start(pid)
        return cls(run_id, pid, socket.gethostname(), started, ticks, boot_id())

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"run {self.run_id} (pid {self.pid} on {self.host}, started {when})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pid": self.pid,
            "host": self.host,
            "started": self.started,
            "start_ticks": self.start_ticks,
            "boot_id": self.boot_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Owner:
        return cls(
            run_id=req_str(data, "run_id"),
            pid=req_int(data, "pid"),
            host=req_str(data, "host"),
            started=req_float(data, "started"),
            start_ticks=opt_int(data, "start_ticks"),
            boot_id=opt_str(data, "boot_id"),
        )


def owner_alive(owner: Owner, last_beat: Callable[[str], float | None]) -> bool:
    """Whether the run that holds a journal entry may still be going: the one rule that
    decides whether its claims may be taken over (a run) or dropped (gc).

    On this host: while its process runs; a process that is provably gone (no such pid, a
    zombie, another boot, or a different process under a reused pid) is dead. On another host:
    while ``last_beat(run_id)``, the Unix time of its last heartbeat, is within
    HEARTBEAT_TIMEOUT.
    """
    if owner.host != socket.gethostname():
        beat = last_beat(owner.run_id)
        return beat is not None and time.time() - beat < HEARTBEAT_TIMEOUT
    return _process_alive(owner)


def on_this_machine(owner: Owner) -> bool:
    """Whether ``owner`` ran on this very machine, so its process itself can tell whether it
    lives. A shared remote store asks this before it judges by the lease: the same host name
    on another boot may be another container, whose pids mean nothing here."""
    if owner.host != socket.gethostname():
        return False
    return owner.boot_id is None or boot_id() in (None, owner.boot_id)


def process_alive(owner: Owner) -> bool:
    """Whether the process of ``owner`` (on this machine) may still be running."""
    return _process_alive(owner)


def _process_alive(owner: Owner) -> bool:
    if owner.pid <= 0:  # kill(0) and kill(-n) address process groups
        return False
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    if not sys.platform.startswith("linux"):
        return True
    if owner.boot_id is not None and boot_id() not in (None, owner.boot_id):
        return False
    stat = proc_stat(owner.pid)
    if stat is None:
        return not _PROC.joinpath("self", "stat").exists()  # gone since kill(), or no procfs
    if stat.state in ("Z", "X"):
        return False
    return owner.start_ticks is None or stat.start_ticks == owner.start_ticks
