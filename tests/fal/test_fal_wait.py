"""Waiting on a job: the SSE decoder, the status stream, and the fallback to polling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest
from fal_fakes import MARKER_KEY, Recorder, Sleeps, json_response

from runner.fal import FalClient, FalJobFailed, FalNotFound, JobStatus
from runner.fal.sse import SSEDecoder, SSEEvent

MakeClient = Callable[..., tuple[FalClient, Recorder]]
ENDPOINT = "fal-ai/ltx-video-13b-distilled/extend"
APP = "fal-ai/ltx-video-13b-distilled"
STREAM = f"/{APP}/requests/req-1/status/stream"
STATUS = f"/{APP}/requests/req-1/status"

QUEUED_2 = {"status": "IN_QUEUE", "queue_position": 2, "request_id": "req-1"}
QUEUED_1 = {"status": "IN_QUEUE", "queue_position": 1, "request_id": "req-1"}
RUNNING = {
    "status": "IN_PROGRESS",
    "logs": [{"message": "rendering", "level": "INFO", "source": "USER", "timestamp": "t"}],
}
DONE = {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 4.2}}
FAILED = {
    "status": "COMPLETED",
    "logs": [],
    "error": "CUDA out of memory",
    "error_type": "runner_server_error",
}

# -- the decoder -------------------------------------------------------------------------


def decode_all(chunks: list[str]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.flush()


def test_events_split_anywhere_decode_the_same() -> None:
    text = 'data: {"a": 1}\n\n: ping\n\ndata: {"b": 2}\r\n\r\nevent: x\ndata: 3\r\r'
    whole = decode_all([text])
    assert [e.data for e in whole] == ['{"a": 1}', '{"b": 2}', "3"]
    assert whole[2].event == "x"
    for size in (1, 2, 3, 5, 7):
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        assert decode_all(pieces) == whole, size


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    events = decode_all(["data: a\r", "\ndata: b\r", "\n\r", "\n"])
    assert [e.data for e in events] == ["a\nb"]


def test_comments_only_yield_nothing() -> None:
    assert decode_all([": ping\n\n", ":\n\n", "\n\n"]) == []


def test_multiline_data_id_and_retry() -> None:
    (event,) = decode_all(["id: 9\nretry: 150\ndata: one\ndata:two\n\n"])
    assert (event.data, event.id, event.retry) == ("one\ntwo", "9", 150)


def test_an_unterminated_last_event_is_kept_at_eof() -> None:
    assert [e.data for e in decode_all(['data: {"status": "COMPLETED"}'])] == [
        '{"status": "COMPLETED"}'
    ]


# -- a fake status stream ------------------------------------------------------------------


def sse(*events: dict[str, Any], ping: bool = True) -> bytes:
    out = b""
    for event in events:
        if ping:
            out += b": ping\n\n"
        out += b"data: " + json.dumps(event).encode() + b"\n\n"
    return out


async def dribble(
    data: bytes, size: int = 7, then: BaseException | None = None, hang: bool = False
) -> AsyncIterator[bytes]:
    """``data`` in ``size``-byte pieces; then raise, hang, or end."""
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0)
    if then is not None:
        raise then
    if hang:
        await asyncio.sleep(3600)


def event_stream(body: AsyncIterator[bytes]) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


class Queue:
    """A fake queue: the stream answers from ``streams`` in turn, status polls from ``polls``."""

    def __init__(
        self,
        streams: Sequence[Callable[[], httpx.Response] | Exception],
        polls: list[dict[str, Any]] | None = None,
    ) -> None:
        self.streams = list(streams)
        self.polls = list(polls or [])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == STREAM:
            item = self.streams.pop(0)
            if isinstance(item, Exception):
                raise item
            return item()
        if request.url.path == STATUS:
            body = self.polls.pop(0)
            return json_response(200 if body["status"] == "COMPLETED" else 202, body)
        return json_response(404, {"detail": "no route"})


def collect() -> tuple[list[JobStatus], Callable[[JobStatus], None]]:
    seen: list[JobStatus] = []
    return seen, seen.append


# -- the stream ----------------------------------------------------------------------------


async def test_wait_follows_the_stream_and_reports_every_update(make_client: MakeClient) -> None:
    body = sse(QUEUED_2, QUEUED_1, RUNNING, DONE)
    client, rec = make_client(Queue([lambda: event_stream(dribble(body))]))
    updates, on_update = collect()
    final = await client.wait(client.handle(ENDPOINT, "req-1"), on_update=on_update)
    assert final.state == "COMPLETED" and final.inference_time == 4.2
    assert [(u.state, u.queue_position) for u in updates] == [
        ("IN_QUEUE", 2),
        ("IN_QUEUE", 1),
        ("IN_PROGRESS", None),
        ("COMPLETED", None),
    ]
    assert updates[2].logs[0]["message"] == "rendering"
    (seen,) = rec.seen  # no polling at all
    assert seen.path == STREAM and seen.url.params["logs"] == "1"
    assert seen.headers["accept"] == "text/event-stream"
    assert seen.headers["authorization"] == f"Key {MARKER_KEY}"


async def test_completion_is_noticed_as_soon_as_the_event_arrives(
    make_client: MakeClient,
) -> None:
    """The client returns on the COMPLETED event, with the stream still open: a server that
    never closes it (fal keeps it a moment) must not hold the wait. How soon a completion
    is noticed is measured by benchmarks/completion_latency.py."""
    never = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield sse(RUNNING)
        yield sse(DONE, ping=False)
        await never.wait()  # the server never closes

    client, _ = make_client(Queue([lambda: event_stream(body())]))
    final = await asyncio.wait_for(client.wait(client.handle(ENDPOINT, "req-1")), timeout=60)
    assert final.state == "COMPLETED" and not never.is_set()


async def test_async_callbacks_are_awaited_and_repeats_dropped(make_client: MakeClient) -> None:
    body = sse(QUEUED_1, QUEUED_1, QUEUED_1, DONE)
    client, _ = make_client(Queue([lambda: event_stream(dribble(body))]))
    states: list[str] = []

    async def on_update(status: JobStatus) -> None:
        await asyncio.sleep(0)
        states.append(status.state)

    await client.wait(client.handle(ENDPOINT, "req-1"), on_update)
    assert states == ["IN_QUEUE", "COMPLETED"]


async def test_a_completed_job_with_an_error_fails_with_fals_message(
    make_client: MakeClient,
) -> None:
    client, _ = make_client(Queue([lambda: event_stream(dribble(sse(RUNNING, FAILED)))]))
    with pytest.raises(FalJobFailed) as info:
        await client.wait(client.handle(ENDPOINT, "req-1"))
    err = info.value
    assert "CUDA out of memory" in err.message and "runner_server_error" in err.message
    assert err.error_type == "runner_server_error"
    assert err.request_id == "req-1"
    assert isinstance(err.status, JobStatus) and err.status.failed


async def test_a_failure_state_ends_the_wait(make_client: MakeClient) -> None:
    client, _ = make_client(Queue([lambda: event_stream(dribble(sse({"status": "FAILED"})))]))
    with pytest.raises(FalJobFailed, match="FAILED"):
        await client.wait(client.handle(ENDPOINT, "req-1"))


# -- falling back to polling ---------------------------------------------------------------


@pytest.mark.parametrize(
    "no_stream",
    [
        lambda: json_response(404, {"detail": "Not Found"}),
        lambda: json_response(405, {"detail": "Method Not Allowed"}),
        lambda: json_response(200, RUNNING),  # a proxy that answers with plain JSON
    ],
    ids=["404", "405", "not-sse"],
)
async def test_no_stream_means_polling_at_the_interval(
    make_client: MakeClient, sleeps: Sleeps, no_stream: Callable[[], httpx.Response]
) -> None:
    queue = Queue([no_stream], polls=[QUEUED_1, RUNNING, RUNNING, DONE])
    client, rec = make_client(queue, poll_interval=0.25)
    updates, on_update = collect()
    final = await client.wait(client.handle(ENDPOINT, "req-1"), on_update)
    assert final.state == "COMPLETED"
    assert rec.paths() == [f"GET {STREAM}"] + [f"GET {STATUS}"] * 4
    assert rec.seen[1].url.params["logs"] == "1"
    assert [u.state for u in updates] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert sleeps.delays == [0.25, 0.25, 0.25]


async def test_a_broken_stream_is_covered_by_a_poll_then_reopened(
    make_client: MakeClient,
) -> None:
    queue = Queue(
        [
            lambda: event_stream(dribble(sse(QUEUED_1), then=httpx.ReadError("reset"))),
            lambda: event_stream(dribble(sse(RUNNING, DONE))),
        ],
        polls=[RUNNING],
    )
    client, rec = make_client(queue)
    updates, on_update = collect()
    await client.wait(client.handle(ENDPOINT, "req-1"), on_update)
    assert rec.paths() == [f"GET {STREAM}", f"GET {STATUS}", f"GET {STREAM}"]
    assert [u.state for u in updates] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]


async def test_completion_during_a_gap_is_caught_by_the_covering_poll(
    make_client: MakeClient,
) -> None:
    queue = Queue([lambda: event_stream(dribble(sse(RUNNING)))], polls=[DONE])  # ends, no DONE
    client, rec = make_client(queue)
    final = await client.wait(client.handle(ENDPOINT, "req-1"))
    assert final.state == "COMPLETED"
    assert rec.paths() == [f"GET {STREAM}", f"GET {STATUS}"]


async def test_a_stream_that_keeps_failing_gives_way_to_polling(
    make_client: MakeClient, sleeps: Sleeps
) -> None:
    refused = httpx.ConnectError("refused")
    queue = Queue([refused, refused, refused], polls=[RUNNING, RUNNING, RUNNING, DONE])
    client, rec = make_client(queue, poll_interval=0.5)
    await client.wait(client.handle(ENDPOINT, "req-1"))
    assert rec.paths().count(f"GET {STREAM}") == 3
    assert rec.paths().count(f"GET {STATUS}") == 4
    assert sleeps.delays[-1] == 0.5  # polling at the interval once the stream is given up


async def test_a_garbled_event_falls_back(make_client: MakeClient) -> None:
    garbled = b"data: {not json\n\n"
    queue = Queue([lambda: event_stream(dribble(garbled))] * 3, polls=[RUNNING] * 3 + [DONE])
    client, _ = make_client(queue)
    assert (await client.wait(client.handle(ENDPOINT, "req-1"))).state == "COMPLETED"


async def test_polling_only_when_the_stream_is_turned_off(make_client: MakeClient) -> None:
    queue = Queue([], polls=[RUNNING, FAILED])
    client, rec = make_client(queue, use_stream=False)
    with pytest.raises(FalJobFailed, match="CUDA out of memory"):
        await client.wait(client.handle(ENDPOINT, "req-1"))
    assert rec.paths() == [f"GET {STATUS}"] * 2


async def test_an_unknown_request_surfaces_through_the_poll(make_client: MakeClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(404, {"detail": "Request not found"})

    client, _ = make_client(handler)
    with pytest.raises(FalNotFound):
        await client.wait(client.handle(ENDPOINT, "req-1"))


async def test_a_stream_that_only_repeats_itself_counts_as_failing(
    make_client: MakeClient, sleeps: Sleeps
) -> None:
    same = [lambda: event_stream(dribble(sse(RUNNING)))] * 4
    queue = Queue(same, polls=[RUNNING] * 6 + [DONE])
    client, rec = make_client(queue, poll_interval=0.5)
    await client.wait(client.handle(ENDPOINT, "req-1"))
    # The first stream brings news; the next three only repeat it: three failures, then polling.
    assert rec.paths().count(f"GET {STREAM}") == 4
    assert sleeps.delays[-1] == 0.5
