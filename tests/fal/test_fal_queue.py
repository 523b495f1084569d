"""submit / handle / status / result / cancel over a mock transport, with retries and errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fal_fakes import MARKER_KEY, QUEUE, Recorder, Sleeps, json_response, nginx_page, submitted

from runner.fal import (
    FalAuthError,
    FalClient,
    FalError,
    FalHTTPError,
    FalLockedError,
    FalNotFound,
    FalProtocolError,
    FalResultExpired,
    FalSubmitUncertain,
    FalUnavailable,
    FalValidationError,
    JobHandle,
)
from runner.fal.credentials import Redactor
from runner.fal.retry import NotSent, RetryPolicy
from runner.fal.session import Call, Client, Session

MakeClient = Callable[..., tuple[FalClient, Recorder]]
ENDPOINT = "fal-ai/ltx-video-13b-distilled/image-to-video"
APP = "fal-ai/ltx-video-13b-distilled"


def sequence(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """A handler answering with each of ``responses`` in turn (an exception is raised)."""
    items: Iterator[httpx.Response | Exception] = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = next(items)
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def a_handle(client: FalClient) -> JobHandle:
    return client.handle(ENDPOINT, "req-1")


# -- URLs --------------------------------------------------------------------------------


async def test_submit_posts_to_the_full_endpoint_and_keeps_the_returned_urls(
    make_client: MakeClient,
) -> None:
    returned = submitted(APP, "req-1")
    returned["status_url"] = f"{QUEUE}/{APP}/requests/req-1/status-from-fal"  # used as given
    client, rec = make_client(sequence(json_response(200, returned)))
    job = await client.submit(ENDPOINT, {"prompt": "a cat", "seed": 7})
    (seen,) = rec.seen
    assert seen.method == "POST"
    assert str(seen.url) == f"{QUEUE}/{ENDPOINT}"
    assert seen.json() == {"prompt": "a cat", "seed": 7}
    assert seen.headers["authorization"] == f"Key {MARKER_KEY}"
    assert seen.headers["content-type"] == "application/json"
    assert job.request_id == "req-1"
    assert job.endpoint_id == ENDPOINT
    assert job.status_url == returned["status_url"]
    assert job.response_url == f"{QUEUE}/{APP}/requests/req-1"
    assert job.stream_url == returned["status_url"] + "/stream"


async def test_every_submit_asks_fal_not_to_reroute_it_to_a_fallback_model(
    make_client: MakeClient,
) -> None:
    client, rec = make_client(
        sequence(
            json_response(200, submitted(APP, "req-1")), json_response(200, submitted(APP, "req-2"))
        )
    )
    await client.submit(ENDPOINT, {"prompt": "a cat"})
    await client.submit(ENDPOINT, {"prompt": "a dog"}, start_timeout=30, priority="low")
    assert [seen.headers.get("x-fal-disable-fallbacks") for seen in rec.seen] == ["true", "true"]


async def test_submit_builds_urls_when_fal_returns_none_or_foreign_ones(
    make_client: MakeClient,
) -> None:
    foreign = {
        "request_id": "r 2",
        "status_url": "https://evil.test/steal/status",
        "response_url": "https://evil.test/steal",
    }
    client, _ = make_client(sequence(json_response(200, foreign)))
    job = await client.submit(ENDPOINT, {"prompt": "x"})
    assert job == client.handle(ENDPOINT, "r 2")
    assert job.status_url == f"{QUEUE}/{APP}/requests/r%202/status"
    assert job.cancel_url == f"{QUEUE}/{APP}/requests/r%202/cancel"


async def test_submit_options_become_fal_headers_and_query(make_client: MakeClient) -> None:
    client, rec = make_client(sequence(json_response(200, submitted())))
    await client.submit(
        "fal-ai/ltx-video",
        {"prompt": "x"},
        start_timeout=30,
        priority="low",
        webhook_url="https://me.test/hook?a=1",
    )
    seen = rec.seen[0]
    assert seen.headers["x-fal-request-timeout"] == "30.0"
    assert seen.headers["x-fal-queue-priority"] == "low"
    assert seen.url.params["fal_webhook"] == "https://me.test/hook?a=1"
    with pytest.raises(ValueError):
        await client.submit("fal-ai/ltx-video", {}, start_timeout=1)


async def test_submit_without_request_id_is_a_protocol_error(make_client: MakeClient) -> None:
    client, _ = make_client(sequence(json_response(200, {"status": "IN_QUEUE"})))
    with pytest.raises(FalProtocolError):
        await client.submit(ENDPOINT, {"prompt": "x"})


def test_handle_for_reattaching_uses_owner_and_alias_only(make_client: MakeClient) -> None:
    client, _ = make_client(sequence())
    job = client.handle(ENDPOINT, "abc")
    assert job.response_url == f"{QUEUE}/{APP}/requests/abc"
    assert job.status_url == f"{QUEUE}/{APP}/requests/abc/status"
    assert job.cancel_url == f"{QUEUE}/{APP}/requests/abc/cancel"
    assert job.stream_url == f"{QUEUE}/{APP}/requests/abc/status/stream"
    assert JobHandle.from_dict(job.as_dict()) == job


async def test_status_result_and_cancel_use_the_handles_urls(make_client: MakeClient) -> None:
    client, rec = make_client(
        sequence(
            json_response(202, {"status": "IN_QUEUE", "queue_position": 3, "logs": None}),
            json_response(200, {"video": {"url": "https://v3.fal.media/files/x.mp4"}, "seed": 7}),
            json_response(202, {"status": "CANCELLATION_REQUESTED"}),
        )
    )
    job = a_handle(client)
    status = await client.status(job)
    assert (status.state, status.queue_position, status.done) == ("IN_QUEUE", 3, False)
    assert (await client.result(job))["seed"] == 7
    assert await client.cancel(job) == "CANCELLATION_REQUESTED"
    assert rec.paths() == [
        f"GET /{APP}/requests/req-1/status",
        f"GET /{APP}/requests/req-1",
        f"PUT /{APP}/requests/req-1/cancel",
    ]
    assert rec.seen[0].url.params["logs"] == "0"
    assert all(s.headers["authorization"] == f"Key {MARKER_KEY}" for s in rec.seen)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"success": True}, "OK"),
        (200, {"status": "OK"}, "OK"),
        (400, {"status": "ALREADY_COMPLETED"}, "ALREADY_COMPLETED"),
        (404, {"status": "NOT_FOUND"}, "NOT_FOUND"),
    ],
)
async def test_cancel_outcomes(
    make_client: MakeClient, status: int, body: dict[str, Any], outcome: str
) -> None:
    client, _ = make_client(sequence(json_response(status, body)))
    assert await client.cancel(a_handle(client)) == outcome


async def test_cancel_is_never_retried(make_client: MakeClient) -> None:
    client, rec = make_client(sequence(json_response(429, {"detail": "slow down"})))
    with pytest.raises(FalHTTPError):
        await client.cancel(a_handle(client))
    assert len(rec.seen) == 1


async def test_status_with_logs(make_client: MakeClient) -> None:
    log = {"message": "step 3", "level": "INFO", "source": "USER", "timestamp": "t"}
    body = {"status": "IN_PROGRESS", "logs": [log]}
    client, rec = make_client(sequence(json_response(202, body)))
    status = await client.status(a_handle(client), logs=True)
    assert rec.seen[0].url.params["logs"] == "1"
    assert status.logs == (log,)


# -- retries -----------------------------------------------------------------------------

RETRIED = [
    json_response(408, {"detail": "timeout"}),
    json_response(409, {"detail": "conflict"}),
    json_response(429, {"detail": "rate"}),
    httpx.Response(502, text=nginx_page(502)),
    httpx.Response(503, text=nginx_page(503)),
    httpx.Response(504, text=nginx_page(504)),
]


@pytest.mark.parametrize("first", RETRIED, ids=lambda r: str(r.status_code))
async def test_reads_retry_the_documented_statuses(
    make_client: MakeClient, sleeps: Sleeps, first: httpx.Response
) -> None:
    client, rec = make_client(sequence(first, json_response(200, {"ok": 1})))
    assert await client.result(a_handle(client)) == {"ok": 1}
    assert len(rec.seen) == 2
    assert sleeps.delays == [pytest.approx(0.1)]


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")],
    ids=lambda e: type(e).__name__,
)
async def test_reads_retry_transport_errors(make_client: MakeClient, exc: Exception) -> None:
    client, rec = make_client(sequence(exc, json_response(200, {"ok": 1})))
    assert await client.result(a_handle(client)) == {"ok": 1}
    assert len(rec.seen) == 2


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(503, text=nginx_page(503), headers={"x-fal-request-id": "r"}),
        json_response(503, {"detail": "no runner", "error_type": "runner_scheduling_failure"}),
        json_response(500, {"detail": "boom", "error_type": "internal_error"}),
        httpx.Response(504, text=nginx_page(504), headers={"X-Fal-Request-Timeout-Type": "user"}),
    ],
    ids=["app-503", "queue-503", "500", "user-timeout-504"],
)
async def test_fal_answers_are_not_retried(
    make_client: MakeClient, response: httpx.Response
) -> None:
    client, rec = make_client(sequence(response))
    with pytest.raises(FalHTTPError) as info:
        await client.result(a_handle(client))
    assert len(rec.seen) == 1
    assert info.value.status_code == response.status_code


async def test_error_type_comes_from_body_or_header(make_client: MakeClient) -> None:
    client, _ = make_client(
        sequence(
            json_response(503, {"detail": "x", "error_type": "runner_disconnected"}),
            httpx.Response(504, text="late", headers={"x-fal-error-type": "startup_timeout"}),
        )
    )
    for expected in ("runner_disconnected", "startup_timeout"):
        with pytest.raises(FalHTTPError) as info:
            await client.result(a_handle(client))
        assert info.value.error_type == expected
        assert expected in str(info.value)


async def test_retry_after_is_honoured(make_client: MakeClient, sleeps: Sleeps) -> None:
    client, _ = make_client(
        sequence(
            json_response(429, {"detail": "rate"}, {"Retry-After": "2"}),
            json_response(200, {"ok": 1}),
        )
    )
    await client.result(a_handle(client))
    assert sleeps.delays == [2.0]


async def test_retries_are_bounded_and_end_in_fal_unavailable(
    make_client: MakeClient, sleeps: Sleeps
) -> None:
    client, rec = make_client(lambda r: json_response(429, {"detail": "rate"}))
    with pytest.raises(FalUnavailable) as info:
        await client.result(a_handle(client))
    assert len(rec.seen) == 10
    assert info.value.attempts == 10 and info.value.status_code == 429
    assert "concurrency" in (info.value.hint or "")
    assert [round(d, 3) for d in sleeps.delays] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10, 10]


async def test_transport_errors_exhausted(make_client: MakeClient) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    client, rec = make_client(refuse)
    with pytest.raises(FalUnavailable, match="Connection refused") as info:
        await client.status(a_handle(client))
    assert len(rec.seen) == 10
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert info.value.__context__ is None or info.value.__context__ is info.value.__cause__


# -- submit: never pay twice -------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow handshake"),
        httpx.PoolTimeout("no connection"),
        json_response(429, {"detail": "rate"}),
        json_response(408, {"detail": "request timeout"}),
        httpx.Response(503, text=nginx_page(503)),
    ],
    ids=lambda x: getattr(x, "status_code", type(x).__name__),
)
async def test_submit_retries_only_what_never_reached_the_queue(
    make_client: MakeClient, first: httpx.Response | Exception
) -> None:
    client, rec = make_client(sequence(first, json_response(200, submitted())))
    job = await client.submit(ENDPOINT, {"prompt": "x"})
    assert job.request_id == "req-1"
    assert len(rec.seen) == 2


@pytest.mark.parametrize(
    "first",
    [
        httpx.ReadTimeout("no answer"),
        httpx.WriteError("reset while sending"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(502, text=nginx_page(502)),
        httpx.Response(504, text=nginx_page(504)),
    ],
    ids=lambda x: getattr(x, "status_code", type(x).__name__),
)
async def test_submit_does_not_retry_what_may_have_queued_a_job(
    make_client: MakeClient, first: httpx.Response | Exception
) -> None:
    client, rec = make_client(sequence(first, json_response(200, submitted())))
    with pytest.raises(FalSubmitUncertain) as info:
        await client.submit(ENDPOINT, {"prompt": "x"})
    assert len(rec.seen) == 1
    assert isinstance(info.value, FalUnavailable)
    assert "dashboard" in (info.value.hint or "")


async def test_a_request_refused_before_sending_is_neither_retried_nor_uncertain(
    make_client: MakeClient,
) -> None:
    # Not a byte left: no job can exist, and sending it again would be refused again.
    refused = NotSent("header 'x-a': a character HTTP forbids")
    client, rec = make_client(sequence(refused, json_response(200, submitted())))
    with pytest.raises(FalError) as info:
        await client.submit(ENDPOINT, {"prompt": "x"})
    assert not isinstance(info.value, FalUnavailable)  # FalSubmitUncertain is one
    assert "not sent" in str(info.value) and "nothing is paid" in (info.value.hint or "")
    assert len(rec.seen) == 1
    client, rec = make_client(sequence(refused, json_response(200, {"status": "COMPLETED"})))
    with pytest.raises(FalError):
        await client.status(a_handle(client))
    assert len(rec.seen) == 1


async def test_submit_does_not_retry_409(make_client: MakeClient) -> None:
    client, rec = make_client(sequence(json_response(409, {"detail": "conflict"})))
    with pytest.raises(FalHTTPError):
        await client.submit(ENDPOINT, {"prompt": "x"})
    assert len(rec.seen) == 1


async def test_submit_429s_exhausted(make_client: MakeClient) -> None:
    client, rec = make_client(lambda r: json_response(429, {"detail": "rate"}))
    with pytest.raises(FalUnavailable) as info:
        await client.submit(ENDPOINT, {"prompt": "x"})
    assert not isinstance(info.value, FalSubmitUncertain)
    assert len(rec.seen) == 10


# -- error translation -------------------------------------------------------------------


async def test_401(make_client: MakeClient) -> None:
    body = {"detail": "No user found for Key ID and Secret"}
    client, _ = make_client(sequence(json_response(401, body)))
    with pytest.raises(FalAuthError) as info:
        await client.submit(ENDPOINT, {"prompt": "x"})
    err = info.value
    assert err.status_code == 401 and "No user found" in err.message
    assert "FAL_KEY" in (err.hint or "") and "--backend local" in (err.hint or "")


async def test_403_exhausted_balance_says_so_plainly(make_client: MakeClient) -> None:
    detail = "User is locked. Reason: Exhausted balance. Top up at fal.ai/dashboard/billing."
    client, _ = make_client(sequence(json_response(403, {"detail": detail})))
    with pytest.raises(FalLockedError) as info:
        await client.submit(ENDPOINT, {"prompt": "x"})
    err = info.value
    assert "Exhausted balance" in err.message
    assert err.exhausted_balance
    assert err.reason.startswith("Exhausted balance")
    assert "top up" in (err.hint or "").lower()


async def test_403_admin_lock(make_client: MakeClient) -> None:
    client, _ = make_client(
        sequence(json_response(403, {"detail": "User is locked. Reason: Admin lock"}))
    )
    with pytest.raises(FalLockedError) as info:
        await client.submit(ENDPOINT, {"prompt": "x"})
    assert not info.value.exhausted_balance and info.value.reason == "Admin lock"


async def test_403_without_a_lock_is_an_auth_error(make_client: MakeClient) -> None:
    client, _ = make_client(sequence(json_response(403, {"detail": "Forbidden"})))
    with pytest.raises(FalAuthError):
        await client.submit(ENDPOINT, {"prompt": "x"})


async def test_422_keeps_the_detail_list(make_client: MakeClient) -> None:
    detail = [
        {
            "loc": ["body", "num_frames"],
            "msg": "Input should be less than or equal to 161",
            "type": "less_than_equal",
            "ctx": {"le": 161},
            "input": 500,
        },
        {
            "loc": ["body", "video", "start_frame_num"],
            "msg": "multiple of 8",
            "type": "value_error",
        },
        {"loc": ["body", "images", 0, "image_url"], "msg": "Field required", "type": "missing"},
    ]
    client, _ = make_client(sequence(json_response(422, {"detail": detail})))
    with pytest.raises(FalValidationError) as info:
        await client.result(a_handle(client))
    err = info.value
    assert err.detail == detail
    first, second, third = err.issues
    assert first.loc == ("body", "num_frames") and first.field_path == ("num_frames",)
    assert first.ctx == {"le": 161} and first.input == 500 and first.type == "less_than_equal"
    assert second.field_path == ("video", "start_frame_num")
    assert third.field_path == ("images", 0, "image_url")
    assert "num_frames: Input should be less than or equal to 161" in err.message
    assert "images.0.image_url: Field required" in err.message


async def test_422_with_a_plain_string_detail(make_client: MakeClient) -> None:
    client, _ = make_client(sequence(json_response(422, {"detail": "Image too large"})))
    with pytest.raises(FalValidationError) as info:
        await client.submit(ENDPOINT, {"prompt": "x"})
    err = info.value
    assert err.detail == "Image too large"
    (issue,) = err.issues
    assert issue.loc == () and issue.msg == "Image too large"
    assert "Image too large" in err.message


@pytest.mark.parametrize("status", [404, 410])
async def test_a_missing_result_is_expired(make_client: MakeClient, status: int) -> None:
    client, _ = make_client(sequence(json_response(status, {"detail": "Request not found"})))
    with pytest.raises(FalResultExpired) as info:
        await client.result(a_handle(client))
    assert "6 minutes" in (info.value.hint or "")
    assert info.value.request_id == "req-1"


async def test_unknown_request_on_status(make_client: MakeClient) -> None:
    client, _ = make_client(sequence(json_response(404, {"detail": "Request not found"})))
    with pytest.raises(FalNotFound):
        await client.status(a_handle(client))


async def test_a_non_json_result_is_a_protocol_error(make_client: MakeClient) -> None:
    client, _ = make_client(sequence(httpx.Response(200, text="<html>")))
    with pytest.raises(FalProtocolError):
        await client.result(a_handle(client))


async def test_html_error_pages_are_kept_short(make_client: MakeClient) -> None:
    client, _ = make_client(sequence(httpx.Response(500, text="<p>" + "x" * 50_000)))
    with pytest.raises(FalHTTPError) as info:
        await client.result(a_handle(client))
    assert len(str(info.value)) < 3000


async def test_a_body_json_cannot_carry_is_a_clear_error(make_client: MakeClient) -> None:
    client, rec = make_client(sequence())
    with pytest.raises(FalError, match="cannot be sent as JSON") as info:
        await client.submit(ENDPOINT, {"prompt": "x", "strength": float("nan")})
    assert "NaN" in (info.value.hint or "")
    assert rec.seen == []


async def test_unicode_prompts_go_as_utf8_json(make_client: MakeClient) -> None:
    client, rec = make_client(sequence(json_response(200, submitted())))
    await client.submit(ENDPOINT, {"prompt": "Mara — café, 雨"})
    assert rec.seen[0].json() == {"prompt": "Mara — café, 雨"}


async def test_a_garbled_submit_answer_still_yields_the_request_id(
    make_client: MakeClient,
) -> None:
    answer = httpx.Response(200, text="<oops>", headers={"x-fal-request-id": "req-9"})
    client, _ = make_client(sequence(answer))
    job = await client.submit(ENDPOINT, {"prompt": "x"})
    assert job == client.handle(ENDPOINT, "req-9")


@pytest.mark.parametrize(
    "call",
    [
        Call("GET", f"{QUEUE}/fal-ai/ltx/requests/r1/status", "status", "r", params={"logs": "1"}),
        Call(
            "POST",
            f"{QUEUE}/fal-ai/ltx",
            "submit",
            "e",
            mode="submit",
            body=b'{"prompt":"a"}',
            headers={"Content-Type": "application/json", "x-fal-disable-fallbacks": "true"},
        ),
        Call("PUT", f"{QUEUE}/x?a=b", "cancel", "r", json={"k": [1]}, timeout=httpx.Timeout(3)),
    ],
)
def test_a_call_builds_the_request_httpx_would(call: Call) -> None:
    # Session._build skips client.build_request (its cost, not its result).
    client = Client(headers={"User-Agent": "shotgraph/x", "Accept": "application/json"})
    client.cookies.set("c", "1")
    built = Session(client, RetryPolicy(), Redactor())._build(call)
    expected = client.build_request(
        call.method,
        call.url,
        json=call.json,
        content=call.body if isinstance(call.body, bytes) else None,
        headers=call.headers,
        params=call.params,
        timeout=call.timeout or httpx.USE_CLIENT_DEFAULT,
    )
    assert (built.method, built.url, built.headers.raw) == (
        expected.method,
        expected.url,
        expected.headers.raw,
    )
    assert built.extensions == expected.extensions and built.content == expected.content
