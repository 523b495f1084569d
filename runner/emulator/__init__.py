"""A local emulator of fal's queue API that renders LTX requests as real MP4 animatics.

It speaks the queue protocol (submit, status, status stream, result, cancel), fal's storage
upload flow and its error shapes, on one loopback origin; see ``docs/emulator.md``.

The names below are loaded at their first use (PEP 562): a render worker, spawned fresh,
imports ``runner.emulator.pool`` and the renderer, and should not pay for the server, the
ASGI app and uvicorn it never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.emulator.app import EmulatorApp, create_app
    from runner.emulator.config import EmulatorConfig
    from runner.emulator.faults import Fault, FaultPlan, FaultSpecError
    from runner.emulator.jobs import fingerprint
    from runner.emulator.server import EmulatorServer, serve

_HOMES = {
    "EmulatorApp": "app",
    "create_app": "app",
    "EmulatorConfig": "config",
    "Fault": "faults",
    "FaultPlan": "faults",
    "FaultSpecError": "faults",
    "fingerprint": "jobs",
    "EmulatorServer": "server",
    "serve": "server",
}

__all__ = [
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorServer",
    "Fault",
    "FaultPlan",
    "FaultSpecError",
    "create_app",
    "fingerprint",
    "serve",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
