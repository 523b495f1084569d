"""fal's official JavaScript client (@fal-ai/client, pinned in tests/js/package-lock.json),
unmodified, against the emulator: upload, submit, status, status stream, result, subscribe
(streaming and polling), run and cancel.

The package is installed with ``npm ci`` into tests/js/node_modules the first time (from the
npm registry; a fresh clone needs no hand install); when the registry is unreachable, or node
or npm is missing, the check is skipped and the summary says why. node 18 or later runs
tests/js/clients.mjs, which points the client at the emulator through its
``requestMiddleware`` option.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import StartEmulator

JS = Path(__file__).resolve().parent.parent / "js"
PINNED = "1.10.1"


# npm's own codes for a registry it cannot reach (DNS, refused, reset, timed out, offline):
# then the check is skipped, saying why; any other failure of ``npm ci`` fails the test.
UNREACHABLE = (
    "ENOTFOUND",
    "EAI_AGAIN",
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "ENOTCACHED",
    "network request to",
)


@pytest.fixture(scope="module")
def fal_js() -> Path:
    """node, with the pinned client installed from tests/js's own package-lock.json by
    ``npm ci`` (a fresh clone installs it on its first run; nothing is installed by hand)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("fal-js check skipped: node and npm are needed to run fal's JavaScript client")
    installed = JS / "node_modules" / "@fal-ai" / "client" / "package.json"
    if not installed.is_file() or json.loads(installed.read_text())["version"] != PINNED:
        _npm_ci(npm)
    assert json.loads(installed.read_text())["version"] == PINNED
    return Path(node)


def _npm_ci(npm: str) -> None:
    # Short fetch timeouts: an unreachable registry is a skip within a minute, not a hang.
    command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    command += ["--fetch-retries=1", "--fetch-timeout=20000"]
    try:
        done = subprocess.run(command, cwd=JS, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip(f"fal-js check skipped: `npm ci` in {JS} got no answer from the registry")
    output = done.stdout + done.stderr
    if done.returncode != 0 and any(code in output for code in UNREACHABLE):
        registry = subprocess.run(
            [npm, "config", "get", "registry"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        pytest.skip(
            f"fal-js check skipped: the npm registry ({registry or 'unknown'}) is unreachable, "
            f"so `npm ci` in {JS} cannot install @fal-ai/client {PINNED}"
        )
    assert done.returncode == 0, f"npm ci in {JS} failed:\n{output}"


def run_fal_js(node: Path, url: str, run_url: str) -> dict[str, Any]:
    env = {**os.environ, "EMULATOR_URL": url, "EMULATOR_RUN_URL": run_url}
    done = subprocess.run(
        [str(node), "clients.mjs"], cwd=JS, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_fal_js_unmodified_against_the_emulator(
    start_emulator: StartEmulator, fal_js: Path
) -> None:
    server = start_emulator(latency=0.3, concurrency=1)
    out = run_fal_js(fal_js, server.url, server.run_url)

    assert out["upload"]["url"].startswith(server.url + "/files/") and out["upload"]["same"]
    assert out["receipt"] == {"status": "IN_QUEUE", "has_id": True}
    assert out["first_status"] in ("IN_QUEUE", "IN_PROGRESS")
    assert out["stream"]["last"] == "COMPLETED" and out["stream"]["statuses"][-1] == "COMPLETED"
    assert out["result"]["seed"] == 21 and out["result"]["request_id"]
    assert out["result"]["video"].startswith(server.url + "/files/")

    subscribed = out["subscribe"]
    assert subscribed["seed"] == 8 and subscribed["updates"][-1] == "COMPLETED"
    # Every log line once, in order, though fal-js appends each event's logs to its own.
    assert subscribed["repeated"] == 0
    assert subscribed["logs"][0] == "request queued"
    assert subscribed["logs"][-1] == "request completed"
    assert len(subscribed["logs"]) == len(set(subscribed["logs"]))
    assert out["subscribe_polling"]["seed"] == 9

    # fal.run: the output itself, not a receipt mistaken for one.
    assert out["run"]["seed"] == 5 and "request_id" not in out["run"]["keys"]
    assert out["run"]["keys"] == ["prompt", "seed", "video"]

    assert out["cancel_done"] == 400  # ALREADY_COMPLETED
    assert out["cancel_queued"] == {"status": "COMPLETED", "error_type": "client_cancelled"}
    assert out["invalid"] == {
        "name": "ValidationError",
        "status": 422,
        "loc": ["body", "num_frames"],
    }

    stats = server.stats()
    assert stats["requests"]["run"] == 2
    assert stats["cancelled"] == 1
