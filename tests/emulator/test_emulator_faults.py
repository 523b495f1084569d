"""Fault injection: each kind, route targeting, counts, matching and runtime replacement."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from emulator_helpers import StartEmulator, hand_clock, submit, wait_completed

from runner.emulator import Fault, FaultPlan, FaultSpecError

T2V = "fal-ai/ltx-video-13b-distilled"
SMALL = {"prompt": "faults", "num_frames": 9, "resolution": "480p", "seed": 4}


def plan(*rules: dict[str, object]) -> FaultPlan:
    return FaultPlan.from_json(list(rules))


def test_rate_limit_answers_429_with_retry_after_then_recovers(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(
        faults=plan({"kind": "rate_limit", "route": "submit", "times": 2, "retry_after": 3})
    )
    for _ in range(2):
        limited = client.post(f"{server.url}/{T2V}", json=SMALL)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "3"
        assert "detail" in limited.json()
    assert client.post(f"{server.url}/{T2V}", json=SMALL).status_code == 200
    assert server.stats()["total_submissions"] == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_ingress_errors_look_like_nginx(
    start_emulator: StartEmulator, client: httpx.Client, status: int
) -> None:
    server = start_emulator(faults=plan({"kind": "ingress", "route": "status", "status": status}))
    handle = submit(client, server.url, T2V, SMALL)
    response = client.get(handle["status_url"])
    assert response.status_code == status
    assert "nginx" in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "x-fal-request-id" not in response.headers
    assert client.get(handle["status_url"]).status_code in (200, 202)


def test_dropped_connection_sends_nothing(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(faults=plan({"kind": "drop", "route": "submit"}))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(f"{server.url}/{T2V}", json=SMALL)
    # The dropped submission never reached the queue; the next one does.
    assert client.post(f"{server.url}/{T2V}", json=SMALL).status_code == 200
    assert server.stats()["total_submissions"] == 1


def test_slow_response(start_emulator: StartEmulator, client: httpx.Client) -> None:
    server = start_emulator(
        faults=plan({"kind": "delay", "route": "result", "seconds": 0.4, "times": None})
    )
    handle = submit(client, server.url, T2V, SMALL)
    wait_completed(client, handle["status_url"])
    for _ in range(2):
        started = time.monotonic()
        assert client.get(handle["response_url"]).status_code == 200
        assert time.monotonic() - started >= 0.4
    with pytest.raises(httpx.ReadTimeout):
        client.get(handle["response_url"], timeout=0.1)


def test_exhausted_balance_locks_submit_but_not_status(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator()
    handle = submit(client, server.url, T2V, SMALL)
    server.set_faults([{"kind": "locked", "times": None}])
    locked = client.post(f"{server.url}/{T2V}", json=SMALL)
    assert locked.status_code == 403
    assert locked.json()["detail"].startswith("User is locked. Reason: Exhausted balance")
    assert client.get(handle["status_url"]).status_code in (200, 202)


def test_failed_job_reports_the_error_and_result_returns_it(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    rule = {
        "kind": "fail",
        "prompt_contains": "explode",
        "status": 503,
        "error_type": "generation_timeout",
        "message": "Generation timeout",
    }
    server = start_emulator(latency=0.1, faults=plan(rule))
    failing = submit(client, server.url, T2V, SMALL | {"prompt": "a car that will explode"})
    fine = submit(client, server.url, T2V, SMALL)
    status = wait_completed(client, failing["status_url"])
    assert (status["error"], status["error_type"]) == ("Generation timeout", "generation_timeout")
    result = client.get(failing["response_url"])
    assert result.status_code == 503
    assert result.headers["x-fal-request-id"] == failing["request_id"]
    (item,) = result.json()["detail"]
    assert (item["type"], item["msg"], item["loc"]) == (
        "generation_timeout",
        "Generation timeout",
        ["body"],
    )
    assert "error" not in wait_completed(client, fine["status_url"])
    assert server.stats()["failed"] == 1


def test_fail_matches_an_endpoint(start_emulator: StartEmulator, client: httpx.Client) -> None:
    server = start_emulator(
        faults=plan({"kind": "fail", "endpoint": "fal-ai/ltx-video", "times": None})
    )
    ok = submit(client, server.url, T2V, SMALL)
    bad = submit(client, server.url, "fal-ai/ltx-video", {"prompt": "x"})
    assert "error" not in wait_completed(client, ok["status_url"])
    assert wait_completed(client, bad["status_url"])["error_type"] == "internal_server_error"
    assert client.get(bad["response_url"]).status_code == 500


def test_expired_result(start_emulator: StartEmulator, client: httpx.Client) -> None:
    server = start_emulator(faults=plan({"kind": "expire"}))
    handle = submit(client, server.url, T2V, SMALL)
    status = wait_completed(client, handle["status_url"])
    assert "error" not in status
    assert client.get(handle["response_url"]).status_code == 404


def test_results_expire_after_their_ttl(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(result_ttl=60)
    clock = hand_clock(server)
    handle = submit(client, server.url, T2V, SMALL)
    wait_completed(client, handle["status_url"])
    clock.advance(59)
    assert client.get(handle["response_url"]).status_code == 200
    clock.advance(2)
    assert client.get(handle["response_url"]).status_code == 404


def test_route_faults_only_touch_their_route(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(faults=plan({"kind": "rate_limit", "route": "cancel", "times": None}))
    handle = submit(client, server.url, T2V, SMALL)
    wait_completed(client, handle["status_url"])
    assert client.get(handle["response_url"]).status_code == 200
    assert client.put(handle["cancel_url"]).status_code == 429
    assert server.stats()["faults_fired"] == {"rate_limit": 1}


def test_faults_can_be_replaced_through_the_control_route(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator()
    response = client.post(
        f"{server.url}/_emulator/faults", json={"faults": [{"kind": "ingress", "route": "submit"}]}
    )
    assert response.status_code == 200
    assert response.json()["faults"][0]["kind"] == "ingress"
    assert client.post(f"{server.url}/{T2V}", json=SMALL).status_code == 503
    assert client.post(f"{server.url}/{T2V}", json=SMALL).status_code == 200
    assert client.get(f"{server.url}/_emulator/faults").json()["faults"][0]["fired"] == 1
    bad = client.post(f"{server.url}/_emulator/faults", json=[{"kind": "meteor"}])
    assert bad.status_code == 400
    assert "unknown fault kind 'meteor'" in bad.json()["detail"]


def test_fault_plan_files_and_errors(tmp_path: Path) -> None:
    spec = tmp_path / "faults.yaml"
    spec.write_text(
        "faults:\n  - {kind: drop, route: files, times: 2}\n  - {kind: fail, prompt_contains: boom}\n"
    )
    loaded = FaultPlan.load(spec)
    assert [r.kind for r in loaded.rules] == ["drop", "fail"]
    assert loaded.take_route_fault("status") is None
    assert loaded.take_route_fault("files") is not None
    assert loaded.take_job_fault("any/endpoint", "a boom") is not None
    assert loaded.take_job_fault("any/endpoint", "a boom") is None
    with pytest.raises(FaultSpecError, match=r"faults\[0\]: unknown key\(s\) \['tmes'\]"):
        FaultPlan.from_json([{"kind": "drop", "tmes": 2}])
    with pytest.raises(FaultSpecError, match="unknown route"):
        Fault(kind="drop", route="everywhere")
    with pytest.raises(FaultSpecError, match="502, 503 or 504"):
        Fault(kind="ingress", status=500)
