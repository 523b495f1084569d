"""fal's official Python client, unmodified, against the emulator over TLS.

fal_client reads ``FAL_QUEUE_RUN_HOST`` and ``FAL_RUN_HOST`` when it is imported and always
speaks https, so it runs in a subprocess with the emulator's queue and run hosts, a trusted
test CA and a key in its environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trustme
from emulator_helpers import StartEmulator

from runner.emulator import FaultPlan

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import fal_client

    app = "fal-ai/ltx-video-13b-distilled"
    out = {}
    handle = fal_client.submit(app, {"prompt": "a lighthouse at dusk", "num_frames": 9,
                                     "resolution": "480p", "seed": 21})
    out["request_id"] = handle.request_id
    out["status_url"] = handle.status_url
    first = handle.status(with_logs=True)
    out["first_status"] = type(first).__name__
    out["result"] = handle.get()
    final = fal_client.status(app, handle.request_id, with_logs=True)
    out["final_status"] = type(final).__name__
    out["final_logs"] = len(final.logs or [])
    out["inference_time"] = final.metrics.get("inference_time")
    out["again"] = fal_client.result(app, handle.request_id)["seed"]
    events = list(fal_client.submit(app, {"prompt": "events", "num_frames": 9,
                                          "resolution": "480p"}).iter_events(with_logs=True))
    out["events"] = [type(e).__name__ for e in events]
    # fal.run: the synchronous host blocks and answers with the output itself.
    out["run"] = fal_client.run(app, {"prompt": "at once", "num_frames": 9,
                                      "resolution": "480p", "seed": 5})
    try:
        fal_client.run(app, {"prompt": "bad", "num_frames": 5000})
    except fal_client.FalClientHTTPError as exc:
        out["run_error"] = {"status": exc.status_code, "detail": exc.message}
    try:
        fal_client.subscribe(app, {"prompt": "too long", "num_frames": 5000})
    except fal_client.FalClientHTTPError as exc:
        out["error"] = {"status": exc.status_code, "detail": exc.message}
    try:
        fal_client.cancel(app, handle.request_id)
    except fal_client.FalClientHTTPError as exc:
        out["cancel_status"] = exc.status_code
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


def run_fal_client(url: str, run_url: str, ca: Path, tmp_path: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "FAL_QUEUE_RUN_HOST": url.split("://", 1)[1],
        "FAL_RUN_HOST": run_url.split("://", 1)[1],
        "SSL_CERT_FILE": str(ca),
        "FAL_KEY": "test-id:test-secret",
        "FAL_HOME_DIR": str(tmp_path / "fal-home"),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_official_client_over_tls(
    start_emulator: StartEmulator, tls: dict[str, Path], tmp_path: Path
) -> None:
    # One 429 and one ingress 503 on submit: fal_client retries both, as on fal.
    faults = FaultPlan.from_json(
        [
            {"kind": "rate_limit", "route": "submit", "retry_after": 0},
            {"kind": "ingress", "route": "submit"},
        ]
    )
    server = start_emulator(latency=0.3, tls_cert=tls["cert"], tls_key=tls["key"], faults=faults)
    assert server.url.startswith("https://127.0.0.1:")

    out = run_fal_client(server.url, server.run_url, tls["ca"], tmp_path)

    assert out["status_url"].startswith(server.url)
    assert out["first_status"] in ("Queued", "InProgress")
    assert out["final_status"] == "Completed"
    assert out["final_logs"] > 0
    assert out["inference_time"] >= 0.3
    result = out["result"]
    assert result["seed"] == out["again"] == 21
    assert result["video"]["url"].startswith(server.url + "/files/")
    assert result["video"]["content_type"] == "video/mp4"
    # The invalid request is accepted, runs, and its result is fal's 422.
    assert out["error"]["status"] == 422
    assert out["error"]["detail"][0]["loc"] == ["body", "num_frames"]
    assert out["cancel_status"] == 400  # ALREADY_COMPLETED
    assert out["events"][-1] == "Completed" and "InProgress" in out["events"]
    assert out["run"]["seed"] == 5 and out["run"]["video"]["url"].startswith(server.run_url)
    assert "request_id" not in out["run"]  # the output, not a queue receipt
    assert out["run_error"]["status"] == 422
    assert out["run_error"]["detail"][0]["loc"] == ["body", "num_frames"]
    stats = server.stats()
    assert stats["faults_fired"] == {"rate_limit": 1, "ingress": 1}
    assert stats["total_submissions"] == 5
