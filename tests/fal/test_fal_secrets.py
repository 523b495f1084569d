"""The API key never shows: not in errors, their causes, tracebacks, reprs, logs or results."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fal_fakes import MARKER_ID, MARKER_KEY, MARKER_SECRET, Recorder, json_response

from runner.fal import FalClient, FalError, JobStatus

MakeClient = Callable[..., tuple[FalClient, Recorder]]
ENDPOINT = "fal-ai/ltx-video-13b-distilled/image-to-video"
CDN_TOKEN = "cdn-SECRETTOKEN-77"
NEEDLES = (MARKER_ID, MARKER_SECRET, CDN_TOKEN)


def texts_of(err: BaseException) -> Iterator[str]:
    """Every way an error could be shown or inspected, down its cause/context chain."""
    summary = traceback.TracebackException.from_exception(err, capture_locals=True)
    yield "".join(_without_test_frames(summary).format())
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield repr(getattr(current, "__dict__", {}))
        if isinstance(current, FalError):
            yield current.render()
        request = getattr(current, "_request", None)
        if isinstance(request, httpx.Request):
            yield repr(dict(request.headers))
        current = current.__cause__ or current.__context__


def _without_test_frames(te: traceback.TracebackException) -> traceback.TracebackException:
    # The test's own frames hold the recorder, which keeps the headers it was sent.
    link: traceback.TracebackException | None = te
    while link is not None:
        kept = [f for f in link.stack if "/tests/" not in f.filename]
        link.stack = traceback.StackSummary.from_list(kept)
        link = link.__cause__ or link.__context__
    return te


def assert_clean(*texts: str) -> None:
    for text in texts:
        for needle in NEEDLES:
            assert needle not in text, f"leaked {needle!r} in: {text[:300]}"


def echo(status: int) -> Callable[[httpx.Request], httpx.Response]:
    """A server that echoes the request's Authorization header in its error body."""

    def handler(request: httpx.Request) -> httpx.Response:
        said = request.headers.get("authorization", "")
        detail = [{"loc": ["body", "x"], "msg": f"bad {said}", "type": "t", "input": said}]
        return json_response(
            status, {"detail": detail if status == 422 else f"you sent {said}"}, {"x-echo": said}
        )

    return handler


def raising(exc: Callable[[httpx.Request], Exception]) -> Callable[[httpx.Request], Any]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(request)

    return handler


SCENARIOS: dict[str, tuple[Callable[[httpx.Request], Any], str]] = {
    "401 echo": (echo(401), "submit"),
    "403 echo": (echo(403), "submit"),
    "422 echo": (echo(422), "result"),
    "500 echo": (echo(500), "result"),
    "429 exhausted": (echo(429), "status"),
    "connect error": (raising(lambda r: httpx.ConnectError("refused", request=r)), "status"),
    "read timeout on submit": (
        raising(lambda r: httpx.ReadTimeout(f"timed out {r.headers}", request=r)),
        "submit",
    ),
    "proxy echoing headers": (
        raising(lambda r: httpx.ProxyError(f"proxy said {r.headers['authorization']}")),
        "result",
    ),
    "job failed": (
        lambda r: json_response(200, {"status": "COMPLETED", "error": "boom", "logs": []}),
        "wait",
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_errors_never_carry_the_key(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    handler, operation = SCENARIOS[name]
    client, rec = make_client(handler, use_stream=False)
    caplog.set_level(logging.DEBUG)
    job = client.handle(ENDPOINT, "req-1")
    with pytest.raises(FalError) as info:
        if operation == "submit":
            await client.submit(ENDPOINT, {"prompt": "x"})
        elif operation == "status":
            await client.status(job)
        elif operation == "result":
            await client.result(job)
        else:
            await client.wait(job)
    assert rec.seen[0].headers["authorization"] == f"Key {MARKER_KEY}"  # it was sent
    assert_clean(*texts_of(info.value), caplog.text)
    assert_clean(*(repr(r.__dict__) for r in caplog.records))


async def test_the_cdn_token_is_redacted_too(make_client: MakeClient, tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/storage/auth/token":
            return json_response(
                200,
                {
                    "token": CDN_TOKEN,
                    "token_type": "Bearer",
                    "base_url": "https://cdn.test",
                    "expires_at": "2999-01-01T00:00:00Z",
                },
            )
        return json_response(400, {"detail": f"bad {request.headers['authorization']}"})

    client, _ = make_client(handler)
    path = tmp_path / "a.png"
    path.write_bytes(b"png")
    with pytest.raises(FalError) as info:
        await client.upload(path)
    assert_clean(*texts_of(info.value))


async def test_a_file_error_raised_inside_httpx_carries_no_frames_of_it(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = tmp_path / "shrinking.bin"
    path.write_bytes(b"x" * 10_000)

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/storage/auth/token":
            path.write_bytes(b"x")  # the file shrinks after its size was taken
            return json_response(
                200,
                {
                    "token": CDN_TOKEN,
                    "token_type": "Bearer",
                    "base_url": "https://cdn.test",
                    "expires_at": "2999-01-01T00:00:00Z",
                },
            )
        return json_response(200, {"access_url": "https://cdn.test/f"})

    client, _ = make_client(handler, chunk_size=1000)
    with pytest.raises(FalError, match="shrank") as info:
        await client.upload(path)
    assert_clean(*texts_of(info.value))


async def test_objects_and_results_never_show_the_key(make_client: MakeClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return json_response(200, {"request_id": "req-1"})
        if request.url.path.endswith("/status"):
            return json_response(200, {"status": "COMPLETED", "logs": []})
        return json_response(200, {"video": {"url": "https://v3.fal.media/x.mp4"}})

    client, _ = make_client(handler, use_stream=False)
    job = await client.submit(ENDPOINT, {"prompt": "x"})
    status: JobStatus = await client.wait(job)
    result = await client.result(job)
    assert_clean(
        repr(client),
        str(client),
        repr(client.config),
        repr(job),
        repr(job.as_dict()),
        repr(status),
        repr(result),
        repr(vars(client)),
    )
