"""The queue protocol as fal speaks it: routes, status codes, shapes, auth, cancel, SSE."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from emulator_helpers import StartEmulator, follow, submit, wait_completed

T2V = "fal-ai/ltx-video-13b-distilled"
SMALL = {"prompt": "a quiet street at night", "num_frames": 9, "resolution": "480p", "seed": 1}


def test_submit_answers_like_fal(start_emulator: StartEmulator, client: httpx.Client) -> None:
    server = start_emulator()
    response = client.post(
        f"{server.url}/{T2V}/image-to-video", json=SMALL | {"image_url": "data:,x"}
    )
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "request_id",
        "response_url",
        "status_url",
        "cancel_url",
        "status",
        "queue_position",
    ]
    rid = body["request_id"]
    assert response.headers["x-fal-request-id"] == rid
    assert body["status"] == "IN_QUEUE"
    # Polling URLs drop the subpath: owner/alias only.
    root = f"{server.url}/{T2V}/requests/{rid}"
    assert (body["response_url"], body["status_url"], body["cancel_url"]) == (
        root,
        f"{root}/status",
        f"{root}/cancel",
    )


def test_status_is_202_until_completed_then_200(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(latency=0.3)
    handle = submit(client, server.url, T2V, SMALL)
    running = client.get(handle["status_url"])
    assert running.status_code == 202
    assert running.json()["status"] in ("IN_QUEUE", "IN_PROGRESS")
    assert running.json()["logs"] is None
    done = wait_completed(client, handle["status_url"])
    assert done["metrics"]["inference_time"] >= 0.3
    assert isinstance(done["logs"], list) and done["logs"]
    entry = done["logs"][0]
    assert set(entry) == {"message", "level", "source", "timestamp"}
    assert "error" not in done


@pytest.mark.parametrize("value", ["1", "true"])
def test_logs_flag_accepts_both_client_spellings(
    start_emulator: StartEmulator, client: httpx.Client, value: str
) -> None:
    server = start_emulator()
    handle = submit(client, server.url, T2V, SMALL)
    wait_completed(client, handle["status_url"])
    assert isinstance(client.get(handle["status_url"], params={"logs": value}).json()["logs"], list)
    assert client.get(handle["status_url"], params={"logs": "0"}).json()["logs"] is None


def test_subpath_and_trailing_slash_forms_are_accepted(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator()
    handle = submit(client, server.url, f"{T2V}/image-to-video", SMALL | {"image_url": "data:,x"})
    rid = handle["request_id"]
    wait_completed(client, handle["status_url"])
    with_subpath = f"{server.url}/{T2V}/image-to-video/requests/{rid}"
    assert client.get(f"{with_subpath}/status").status_code == 200
    assert client.get(f"{handle['status_url']}/").status_code == 200
    # Another app's URL does not find the request.
    assert client.get(f"{server.url}/fal-ai/ltx-video/requests/{rid}/status").status_code == 404


def test_unknown_endpoint_and_request_are_404(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator()
    assert client.post(f"{server.url}/fal-ai/flux/dev", json={"prompt": "x"}).status_code == 404
    missing = client.get(f"{server.url}/{T2V}/requests/00000000-0000-0000-0000-000000000000/status")
    assert missing.status_code == 404
    assert "detail" in missing.json()


def test_invalid_body_completes_with_fal_422(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(latency=5)
    # fal's queue accepts the body; the app rejects it when it runs, at once.
    handle = submit(client, server.url, T2V, {"num_frames": 500, "resolution": "4k"})
    status = wait_completed(client, handle["status_url"], timeout=2)
    assert status["error_type"] == "missing"
    result = client.get(handle["response_url"])
    assert result.status_code == 422
    assert result.json() == {
        "detail": [
            {
                "type": "missing",
                "loc": ["body", "prompt"],
                "msg": "Field required",
                "input": {"num_frames": 500, "resolution": "4k"},
            },
            {
                "type": "enum",
                "loc": ["body", "resolution"],
                "msg": "Input should be '480p' or '720p'",
                "input": "4k",
                "ctx": {"expected": "'480p' or '720p'"},
            },
            {
                "type": "less_than_equal",
                "loc": ["body", "num_frames"],
                "msg": "Input should be less than or equal to 161",
                "input": 500,
                "ctx": {"le": 161},
            },
        ]
    }
    assert server.stats()["total_submissions"] == 1


def test_validate_on_submit_rejects_at_once(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(validate_on_submit=True)
    response = client.post(
        f"{server.url}/{T2V}/extend",
        json={"prompt": "x", "video": {"video_url": "u", "start_frame_num": 3}},
    )
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["body", "video", "start_frame_num"] and item["type"] == "multiple_of"
    assert server.stats()["total_submissions"] == 0


def test_malformed_json_is_422(start_emulator: StartEmulator, client: httpx.Client) -> None:
    server = start_emulator()
    response = client.post(
        f"{server.url}/{T2V}", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Missing authorization header"),
        ("Key", "Missing authorization header"),
        ("Key just-one-part", "Invalid Key Authorization header format"),
        ("Key someone:else", "No user found for Key ID and Secret"),
    ],
)
def test_auth_failures_are_401(
    start_emulator: StartEmulator, header: str | None, message: str
) -> None:
    server = start_emulator(api_keys=frozenset({"test-id:test-secret"}))
    headers = {"Authorization": header} if header is not None else {}
    response = httpx.post(f"{server.url}/{T2V}", json=SMALL, headers=headers)
    assert response.status_code == 401
    assert message in response.json()["detail"]
    assert server.stats()["total_submissions"] == 0


def test_auth_can_be_switched_off(start_emulator: StartEmulator) -> None:
    server = start_emulator(require_auth=False)
    assert httpx.post(f"{server.url}/{T2V}", json=SMALL).status_code == 200


def test_result_before_completion_is_400(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(latency=5)
    handle = submit(client, server.url, T2V, SMALL)
    response = client.get(handle["response_url"])
    assert response.status_code == 400
    assert response.json() == {"detail": "Request is still in progress"}


def test_cancel(start_emulator: StartEmulator, client: httpx.Client) -> None:
    server = start_emulator(latency=0.5, concurrency=1)
    running = submit(client, server.url, T2V, SMALL)
    queued = submit(client, server.url, T2V, SMALL | {"seed": 2})
    assert queued["queue_position"] == 0

    response = client.put(queued["cancel_url"])
    assert (response.status_code, response.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    cancelled = client.get(queued["status_url"]).json()
    assert (cancelled["status"], cancelled["error_type"]) == ("COMPLETED", "client_cancelled")
    assert client.get(queued["response_url"]).status_code == 499

    # A running request only gets the signal; the LTX app finishes its work.
    assert client.put(running["cancel_url"]).json() == {"status": "CANCELLATION_REQUESTED"}
    done = wait_completed(client, running["status_url"])
    assert "error" not in done
    again = client.put(running["cancel_url"])
    assert (again.status_code, again.json()) == (400, {"status": "ALREADY_COMPLETED"})

    unknown = client.put(f"{server.url}/{T2V}/requests/nope/cancel")
    assert (unknown.status_code, unknown.json()) == (404, {"status": "NOT_FOUND"})


def test_stream_sends_each_change_and_closes_after_completion(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(latency=0.3, concurrency=1)
    submit(client, server.url, T2V, SMALL)
    second = submit(client, server.url, T2V, SMALL | {"seed": 9})
    events = follow(client, second["status_url"])
    assert [e["status"] for e in events] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert events[0]["queue_position"] == 0
    assert events[-1]["metrics"]["inference_time"] >= 0.3


def test_stream_pings_while_waiting(start_emulator: StartEmulator, client: httpx.Client) -> None:
    server = start_emulator(latency=0.4, ping_interval=0.1)
    handle = submit(client, server.url, T2V, SMALL)
    with client.stream("GET", f"{handle['status_url']}/stream") as response:
        lines = [line for line in response.iter_lines() if line]
    assert ": ping" in lines
    assert json.loads(lines[-1][6:])["status"] == "COMPLETED"


def test_completion_reaches_a_stream_at_once(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    """A change wakes the stream: with pings an hour apart, the completion arrives and the
    stream ends without any timer's help. (How soon: benchmarks/completion_latency.py.)"""
    server = start_emulator(latency=0.5, ping_interval=3600)
    handle = submit(client, server.url, T2V, SMALL)
    with client.stream("GET", f"{handle['status_url']}/stream", timeout=60) as response:
        lines = [line for line in response.iter_lines() if line]
    assert ": ping" not in lines
    states = [json.loads(line[6:])["status"] for line in lines]
    assert states[0] in ("IN_QUEUE", "IN_PROGRESS") and states[-1] == "COMPLETED"


def test_stats_count_submissions_by_fingerprint(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    from runner.emulator import fingerprint

    server = start_emulator()
    for _ in range(2):
        submit(client, server.url, T2V, SMALL)
    submit(client, server.url, T2V, SMALL | {"seed": 5})
    stats: dict[str, Any] = client.get(f"{server.url}/_emulator/stats").json()
    assert stats["total_submissions"] == 3
    assert stats["submissions"][fingerprint(T2V, SMALL)] == 2
    assert set(stats["states"]) == {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
    assert sum(stats["states"].values()) == 3


def test_stream_events_carry_each_log_entry_once(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(latency=0.3, concurrency=1)
    submit(client, server.url, T2V, SMALL)
    second = submit(client, server.url, T2V, SMALL | {"seed": 4})
    events = follow(client, second["status_url"], logs=True)
    assert len(events) >= 3
    # fal-js appends every event's logs to those it has: each entry must come once, and
    # together they are the whole log a poll shows.
    streamed = [entry for event in events for entry in event["logs"]]
    polled = client.get(second["status_url"], params={"logs": "1"}).json()["logs"]
    assert streamed == polled
    assert len({json.dumps(e, sort_keys=True) for e in streamed}) == len(streamed)


def test_the_run_host_blocks_and_answers_with_the_output(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator(latency=0.2)
    assert server.run_url and server.run_url != server.url
    answer = client.post(f"{server.run_url}/{T2V}", json=SMALL | {"seed": 12}, timeout=60)
    assert answer.status_code == 200
    output = answer.json()
    assert output["seed"] == 12 and "request_id" not in output and "status" not in output
    assert answer.headers["x-fal-request-id"]
    assert client.get(output["video"]["url"]).status_code == 200
    bad = client.post(f"{server.run_url}/{T2V}", json={"prompt": "x", "num_frames": 5000})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "num_frames"]
    # The queue host is still the queue: a receipt, not the output.
    assert "request_id" in client.post(f"{server.url}/{T2V}", json=SMALL).json()
    assert server.stats()["requests"]["run"] == 2
    assert httpx.post(f"{server.run_url}/{T2V}", json=SMALL).status_code == 401  # no key


def test_fal_js_upload_flow_initiate_then_presigned_put(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    server = start_emulator()
    data = bytes(range(256)) * 64
    lifecycle = {"X-Fal-Object-Lifecycle": json.dumps({"expiration_duration_seconds": 60})}
    started = client.post(
        f"{server.url}/storage/upload/initiate",
        params={"storage_type": "fal-cdn-v3"},
        json={"content_type": "image/png", "file_name": "key.png"},
        headers=lifecycle,
    )
    assert started.status_code == 200
    urls = started.json()
    assert set(urls) == {"upload_url", "file_url"}
    assert client.get(urls["file_url"]).status_code == 404  # nothing until the bytes are in
    # The presigned PUT carries no credentials, as fal-js sends it.
    put = httpx.put(urls["upload_url"], content=data, headers={"Content-Type": "image/png"})
    assert put.status_code == 200
    served = client.get(urls["file_url"])
    assert served.content == data and served.headers["content-type"] == "image/png"
    assert httpx.put(urls["upload_url"], content=data).status_code == 404  # used up
    # Without the API key there is no upload to start.
    assert httpx.post(f"{server.url}/storage/upload/initiate", json={}).status_code == 401

    multi = client.post(
        f"{server.url}/storage/upload/initiate-multipart",
        params={"storage_type": "fal-cdn-v3"},
        json={"content_type": "video/mp4", "file_name": "big.mp4"},
    ).json()
    parts = []
    for number, chunk in enumerate((data[:5000], data[5000:]), start=1):
        answer = httpx.put(f"{multi['upload_url']}/{number}", content=chunk)
        assert answer.status_code == 200
        parts.append(answer.json())  # fal-js reads {partNumber, etag} from the body
    done = httpx.post(f"{multi['upload_url']}/complete", json={"parts": parts})
    assert done.status_code == 200
    assert client.get(multi["file_url"]).content == data
