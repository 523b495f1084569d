"""A local emulator of fal's queue API that renders LTX requests as real MP4 animatics.

It speaks the queue protocol (submit, status, status stream, result, cancel), fal's storage
upload flow and its error shapes, on one loopback origin; see ``docs/emulator.md``.
"""

from __future__ import annotations

from runner.emulator.app import EmulatorApp, create_app
from runner.emulator.config import EmulatorConfig
from runner.emulator.faults import Fault, FaultPlan, FaultSpecError
from runner.emulator.jobs import fingerprint
from runner.emulator.server import EmulatorServer, serve

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
