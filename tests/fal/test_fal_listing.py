"""fal's request listing: the query fal documents, every page read, the key sent only to
fal's own API, and against the emulator, its auth rule and what it lists."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fal_fakes import MARKER_KEY, Recorder, json_response

from runner.emulator import EmulatorServer
from runner.fal import FalClient, FalConfig, ListingIncomplete
from runner.fal.listing import iso, parse_time

MakeClient = Callable[..., tuple[FalClient, Recorder]]
API = "https://api.fal.ai/v1"
ENDPOINT = "fal-ai/ltx-video-13b-distilled"


def item(request_id: str, body: dict[str, Any], sent: float = 1_700_000_000.0) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "endpoint_id": ENDPOINT,
        "sent_at": iso(sent),
        "started_at": iso(sent + 1),
        "ended_at": iso(sent + 5),
        "status_code": 200,
        "duration": 5.0,
        "json_input": body,
        "json_output": {"video": {"url": "https://v3.fal.media/files/x.mp4"}},
    }


async def test_the_listing_query_is_the_documented_one_and_every_page_is_read(
    make_client: MakeClient,
) -> None:
    pages = [
        {"items": [item("r1", {"prompt": "a"})], "next_cursor": "Mg==", "has_more": True},
        {"items": [item("r2", {"prompt": "b"})], "next_cursor": None, "has_more": False},
    ]
    answers = iter(pages)
    client, rec = make_client(lambda request: json_response(200, next(answers)))
    since = 1_700_000_000.0
    listed = [req async for req in client.list_requests(ENDPOINT, since)]
    assert [r.request_id for r in listed] == ["r1", "r2"]
    assert listed[0].json_input == {"prompt": "a"}
    assert listed[0].sent_at == pytest.approx(since)
    first, second = rec.seen
    assert f"{first.url.scheme}://{first.url.host}{first.url.path}" == (
        f"{API}/models/requests/by-endpoint"
    )
    assert dict(first.url.params) == {
        "endpoint_id": ENDPOINT,
        "start": "2023-11-14T22:13:20.000Z",
        "limit": "100",
        "expand": "payloads",
    }
    assert second.url.params["cursor"] == "Mg=="
    assert first.headers["authorization"] == f"Key {MARKER_KEY}"


async def test_a_cursor_that_does_not_move_on_is_an_incomplete_listing(
    make_client: MakeClient,
) -> None:
    page = {"items": [], "next_cursor": "Mg==", "has_more": True}
    client, _ = make_client(lambda request: json_response(200, page))
    with pytest.raises(ListingIncomplete):
        [req async for req in client.list_requests(ENDPOINT, 0.0)]


async def test_the_key_goes_only_to_the_configured_platform_api(make_client: MakeClient) -> None:
    client, rec = make_client(
        lambda request: json_response(200, {"items": [], "next_cursor": None, "has_more": False}),
        api_url="https://elsewhere.test/v1",
    )
    assert [req async for req in client.list_requests(ENDPOINT, 0.0)] == []
    (seen,) = rec.seen
    assert seen.url.host == "elsewhere.test"
    assert seen.headers["authorization"] == f"Key {MARKER_KEY}"
    assert FalConfig().api_url == API


def test_listing_times_read_as_fal_writes_them() -> None:
    assert parse_time("2025-01-01T00:00:08Z") == 1735689608.0
    assert parse_time("2025-01-01T00:00:08") == 1735689608.0  # naive: UTC
    assert parse_time(None) is None and parse_time("soon") is None


# -- the emulator's listing ----------------------------------------------------------------


def listing(server: EmulatorServer, headers: dict[str, str], **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v1/models/requests/by-endpoint", params=params, headers=headers)


def wait_until_listed(server: EmulatorServer, count: int) -> None:
    deadline = time.monotonic() + 30
    while server.stats()["states"]["COMPLETED"] < count:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_the_emulators_listing_takes_a_key_and_lists_ended_requests(
    start_emulator: Callable[..., EmulatorServer],
) -> None:
    server = start_emulator(latency=0.0)
    key = {"Authorization": "Key id:secret"}
    bodies = [{"prompt": f"shot {i}", "num_frames": 9, "resolution": "480p"} for i in range(3)]
    ids = []
    for body in bodies:
        answer = httpx.post(f"{server.url}/{ENDPOINT}", json=body, headers=key)
        ids.append(answer.json()["request_id"])
    wait_until_listed(server, 3)

    assert listing(server, {}, endpoint_id=ENDPOINT).status_code == 401
    assert listing(server, {"Authorization": "Bearer t"}, endpoint_id=ENDPOINT).status_code == 401
    missing = listing(server, key)
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["query", "endpoint_id"]

    plain = listing(server, key, endpoint_id=ENDPOINT).json()
    assert {i["request_id"] for i in plain["items"]} == set(ids)
    assert "json_input" not in plain["items"][0]  # payloads only when expanded
    assert plain["has_more"] is False and plain["next_cursor"] is None

    first = listing(server, key, endpoint_id=ENDPOINT, expand="payloads", limit="2").json()
    assert first["has_more"] is True
    assert first["next_cursor"] == base64.b64encode(b"2").decode()
    rest = listing(
        server, key, endpoint_id=ENDPOINT, expand="payloads", limit="2", cursor=first["next_cursor"]
    ).json()
    items = first["items"] + rest["items"]
    assert sorted(i["json_input"]["prompt"] for i in items) == ["shot 0", "shot 1", "shot 2"]
    assert all(i["status_code"] == 200 and i["ended_at"] for i in items)
    # Newest end first, as fal sorts by default.
    ended = [parse_time(i["ended_at"]) for i in items]
    assert ended == sorted(ended, reverse=True)

    one = listing(server, key, endpoint_id=ENDPOINT, request_id=ids[1]).json()["items"]
    assert [i["request_id"] for i in one] == [ids[1]]
    assert listing(server, key, endpoint_id=ENDPOINT, status="error").json()["items"] == []
    future = listing(server, key, endpoint_id=ENDPOINT, start="2999-01-01").json()["items"]
    assert future == []
    other = listing(server, key, endpoint_id=f"{ENDPOINT}/extend").json()["items"]
    assert other == []


def test_a_request_in_flight_is_not_listed_until_it_ends(
    start_emulator: Callable[..., EmulatorServer],
) -> None:
    server = start_emulator(latency=1.5)
    key = {"Authorization": "Key id:secret"}
    body = {"prompt": "later", "num_frames": 9, "resolution": "480p"}
    sent = httpx.post(f"{server.url}/{ENDPOINT}", json=body, headers=key).json()["request_id"]
    assert listing(server, key, endpoint_id=ENDPOINT).json()["items"] == []
    wait_until_listed(server, 1)
    listed = listing(server, key, endpoint_id=ENDPOINT).json()["items"]
    assert [i["request_id"] for i in listed] == [sent]
