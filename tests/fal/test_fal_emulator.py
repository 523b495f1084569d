"""The fal client against the real emulator on loopback: the ``local`` backend end to end."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from fal_fakes import Sleeps
from PIL import Image

from runner.emulator import EmulatorServer
from runner.fal import (
    FalAuthError,
    FalClient,
    FalJobFailed,
    FalLockedError,
    FalResultExpired,
    FalSubmitUncertain,
    FalValidationError,
    JobStatus,
)

pytestmark = pytest.mark.slow

StartEmulator = Callable[..., EmulatorServer]
LocalClient = Callable[..., FalClient]
T2V = "fal-ai/ltx-video-13b-distilled"
I2V = "fal-ai/ltx-video-13b-distilled/image-to-video"
SMALL = {"num_frames": 9, "resolution": "480p", "aspect_ratio": "16:9", "seed": 7}


def t2v(prompt: str = "a lighthouse at dusk", **extra: Any) -> dict[str, Any]:
    return {"prompt": prompt, **SMALL, **extra}


def probe(path: Path) -> tuple[int, int, int, Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.width, stream.height, Fraction(stream.average_rate or 0)


def requests(server: EmulatorServer) -> dict[str, int]:
    counts: dict[str, int] = server.stats()["requests"]
    return counts


# -- the happy paths -----------------------------------------------------------------------


async def test_submit_stream_result_download_a_real_mp4(
    start_emulator: StartEmulator, local_client: LocalClient, tmp_path: Path
) -> None:
    server = start_emulator(latency=0.05)
    fal = local_client(server)
    job = await fal.submit(T2V, t2v())
    updates: list[JobStatus] = []
    final = await fal.wait(job, on_update=updates.append)
    assert final.state == "COMPLETED" and updates[-1] is final
    assert any(u.logs for u in updates)  # logs=1 on the stream
    result = await fal.result(job)
    video = result["video"]
    assert result["seed"] == 7
    got = await fal.download(video["url"], tmp_path / "out.mp4", expected_size=video["file_size"])
    assert got.sha256 == hashlib.sha256((tmp_path / "out.mp4").read_bytes()).hexdigest()
    frames, width, height, rate = probe(tmp_path / "out.mp4")
    assert (frames, rate) == (9, Fraction(30))
    assert (width, height) == (848, 480)
    seen = requests(server)
    assert seen.get("stream") == 1 and "status" not in seen  # the stream alone, no polling
    assert server.stats()["total_submissions"] == 1


async def test_a_job_takes_one_kept_alive_connection(
    start_emulator: StartEmulator, local_client: LocalClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status stream is read to its end after the final status, so its connection goes
    back to the pool: submit, wait, result and the next submit share one connection (a new
    one per job cost the runner a connect and a close per node)."""
    from runner.fal import wire

    opened: list[str] = []
    connect = wire.connect

    async def counting(host: str, *args: Any) -> Any:
        opened.append(host)
        return await connect(host, *args)

    monkeypatch.setattr(wire, "connect", counting)
    server = start_emulator(latency=0.05)
    fal = local_client(server)
    for prompt in ("first", "second"):
        job = await fal.submit(T2V, t2v(prompt))
        await fal.wait(job)
        await fal.result(job)
    assert requests(server).get("stream") == 2
    assert len(opened) == 1


async def test_completion_is_noticed_from_the_stream_not_a_poll(
    start_emulator: StartEmulator, local_client: LocalClient
) -> None:
    """The stream delivers the completion: with polls an hour apart (and the stream's pings
    as far), a wait that returns at all was told by the stream. How soon is measured by
    benchmarks/completion_latency.py."""
    server = start_emulator(latency=0.2, ping_interval=3600)
    fal = local_client(server, poll_interval=3600)
    job = await fal.submit(T2V, t2v("timing"))
    final = await asyncio.wait_for(fal.wait(job), 60)
    assert final.state == "COMPLETED"
    seen = requests(server)
    assert seen.get("stream") == 1 and "status" not in seen


async def test_the_polling_path(start_emulator: StartEmulator, local_client: LocalClient) -> None:
    server = start_emulator(latency=0.1)
    fal = local_client(server, use_stream=False, poll_interval=0.02)
    job = await fal.submit(T2V, t2v("polled"))
    final = await fal.wait(job)
    assert final.state == "COMPLETED"
    assert (await fal.result(job))["video"]["url"]
    seen = requests(server)
    assert "stream" not in seen and seen["status"] >= 2


async def test_a_dropped_stream_falls_back_to_polling(
    start_emulator: StartEmulator, local_client: LocalClient
) -> None:
    server = start_emulator(latency=0.1)
    server.set_faults([{"kind": "drop", "route": "stream", "times": None}])
    fal = local_client(server, poll_interval=0.02)
    job = await fal.submit(T2V, t2v("no stream"))
    assert (await fal.wait(job)).state == "COMPLETED"
    seen = requests(server)
    assert seen["stream"] == 3 and seen["status"] >= 3  # three tries, then polling


async def test_reattach_after_a_crash_submits_nothing_twice(
    start_emulator: StartEmulator, local_client: LocalClient, tmp_path: Path
) -> None:
    server = start_emulator(latency=0.2)
    first = local_client(server)
    job = await first.submit(
        I2V, {**t2v("re-attach"), "image_url": await _keyframe(first, tmp_path)}
    )
    journal = (job.endpoint_id, job.request_id)
    await first.aclose()  # the runner dies here

    second = local_client(server)
    again = second.handle(*journal)
    assert again.status_url.endswith(
        f"/fal-ai/ltx-video-13b-distilled/requests/{job.request_id}/status"
    )
    assert (await second.wait(again)).state == "COMPLETED"
    assert (await second.result(again))["video"]["url"]
    assert server.stats()["total_submissions"] == 1


async def test_upload_single_and_multipart_then_use_the_url(
    start_emulator: StartEmulator, local_client: LocalClient, tmp_path: Path
) -> None:
    server = start_emulator()
    fal = local_client(server, multipart_threshold=64 * 1024, multipart_part_size=16 * 1024)
    small = tmp_path / "key.png"
    Image.new("RGB", (64, 36), (200, 40, 40)).save(small)
    big = tmp_path / "big.png"
    Image.effect_noise((320, 180), 80).convert("RGB").save(big)  # noise: does not compress
    assert big.stat().st_size > 64 * 1024

    single = await fal.upload(small)
    multi = await fal.upload(big, lifetime=600)
    assert multi.expires_at is not None
    assert requests(server).get("upload", 0) >= 2 + big.stat().st_size // (16 * 1024)
    for uploaded, original in ((single, small), (multi, big)):
        got = await fal.download(uploaded.url, tmp_path / f"back-{original.name}")
        assert got.sha256 == hashlib.sha256(original.read_bytes()).hexdigest()

    job = await fal.submit(I2V, {**t2v("from an upload"), "image_url": multi.url})
    await fal.wait(job)
    assert (await fal.result(job))["video"]["url"]


async def _keyframe(fal: FalClient, folder: Path) -> str:
    path = folder / "keyframe.png"
    Image.new("RGB", (96, 54), (30, 90, 160)).save(path)
    return (await fal.upload(path)).url


# -- faults --------------------------------------------------------------------------------


async def test_429_with_retry_after_is_waited_out(
    start_emulator: StartEmulator, local_client: LocalClient, sleeps: Sleeps
) -> None:
    server = start_emulator()
    server.set_faults([{"kind": "rate_limit", "route": "submit", "retry_after": 3, "times": 2}])
    fal = local_client(server)
    job = await fal.submit(T2V, t2v("rate limited"))
    assert sleeps.delays[:2] == [3.0, 3.0]
    await fal.wait(job)
    assert server.stats()["total_submissions"] == 1


@pytest.mark.parametrize("route", ["status", "result"])
@pytest.mark.parametrize("status", [502, 503, 504])
async def test_ingress_errors_on_reads_are_retried(
    start_emulator: StartEmulator, local_client: LocalClient, route: str, status: int
) -> None:
    server = start_emulator()
    fal = local_client(server, use_stream=False, poll_interval=0.02)
    job = await fal.submit(T2V, t2v(f"ingress {route} {status}"))
    server.set_faults([{"kind": "ingress", "route": route, "status": status, "times": 2}])
    await fal.wait(job)
    assert (await fal.result(job))["video"]["url"]
    assert server.stats()["faults_fired"]["ingress"] == 2


async def test_an_ingress_503_on_submit_is_retried_once_queued(
    start_emulator: StartEmulator, local_client: LocalClient
) -> None:
    server = start_emulator()
    server.set_faults([{"kind": "ingress", "route": "submit", "status": 503, "times": 2}])
    fal = local_client(server)
    await fal.wait(await fal.submit(T2V, t2v("503 then ok")))
    assert server.stats()["total_submissions"] == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "ingress", "route": "submit", "status": 502},
        {"kind": "ingress", "route": "submit", "status": 504},
        {"kind": "drop", "route": "submit"},
    ],
    ids=["502", "504", "drop"],
)
async def test_an_ambiguous_submit_failure_is_not_retried(
    start_emulator: StartEmulator, local_client: LocalClient, fault: dict[str, Any]
) -> None:
    server = start_emulator()
    server.set_faults([fault])
    fal = local_client(server)
    with pytest.raises(FalSubmitUncertain) as info:
        await fal.submit(T2V, t2v("ambiguous"))
    assert "dashboard" in (info.value.hint or "")
    assert requests(server)["submit"] == 1


async def test_a_dropped_connection_on_a_read_is_retried(
    start_emulator: StartEmulator, local_client: LocalClient
) -> None:
    server = start_emulator()
    fal = local_client(server)
    job = await fal.submit(T2V, t2v("dropped result"))
    await fal.wait(job)
    server.set_faults([{"kind": "drop", "route": "result", "times": 2}])
    assert (await fal.result(job))["video"]["url"]
    assert requests(server)["result"] == 3


async def test_a_slow_response_times_out_and_is_retried(
    start_emulator: StartEmulator, local_client: LocalClient
) -> None:
    server = start_emulator()
    fal = local_client(server, timeout=0.2)
    job = await fal.submit(T2V, t2v("slow"))
    await fal.wait(job)
    server.set_faults([{"kind": "delay", "route": "result", "seconds": 1.0, "times": 1}])
    assert (await fal.result(job))["video"]["url"]
    # Two requests: the first timed out (had it sat out the slow answer, one would do).
    assert requests(server)["result"] == 2


async def test_a_failed_job_raises_fals_message(
    start_emulator: StartEmulator, local_client: LocalClient
) -> None:
    server = start_emulator()
    server.set_faults([{"kind": "fail", "message": "GPU fell over", "error_type": "gpu_error"}])
    fal = local_client(server)
    job = await fal.submit(T2V, t2v("doomed"))
    with pytest.raises(FalJobFailed, match="GPU fell over") as info:
        await fal.wait(job)
    assert info.value.request_id == job.request_id


async def test_an_invalid_request_completes_with_a_422_result(
    start_emulator: StartEmulator, local_client: LocalClient
) -> None:
    server = start_emulator()
    fal = local_client(server)
    job = await fal.submit(T2V, t2v("too long", num_frames=5000))
    with pytest.raises(FalJobFailed, match="num_frames"):
        await fal.wait(job)
    with pytest.raises(FalValidationError) as info:
        await fal.result(job)
    assert info.value.issues[0].field_path == ("num_frames",)


async def test_an_expired_result(start_emulator: StartEmulator, local_client: LocalClient) -> None:
    server = start_emulator()
    server.set_faults([{"kind": "expire"}])
    fal = local_client(server)
    job = await fal.submit(T2V, t2v("expired"))
    await fal.wait(job)
    with pytest.raises(FalResultExpired):
        await fal.result(job)


async def test_exhausted_balance(start_emulator: StartEmulator, local_client: LocalClient) -> None:
    server = start_emulator()
    server.set_faults([{"kind": "locked"}])
    fal = local_client(server)
    with pytest.raises(FalLockedError) as info:
        await fal.submit(T2V, t2v("no money"))
    assert info.value.exhausted_balance and "top up" in (info.value.hint or "").lower()


async def test_a_malformed_key_is_refused(
    start_emulator: StartEmulator, local_client: LocalClient
) -> None:
    server = start_emulator()
    fal = local_client(server, key="no-colon-here")
    with pytest.raises(FalAuthError, match="Invalid Key Authorization header format"):
        await fal.submit(T2V, t2v("bad key"))


async def test_cancel_outcomes(start_emulator: StartEmulator, local_client: LocalClient) -> None:
    server = start_emulator(latency=5.0, concurrency=1)
    fal = local_client(server)
    running = await fal.submit(T2V, t2v("running"))
    queued = await fal.submit(T2V, t2v("queued"))
    assert await fal.cancel(queued) == "CANCELLATION_REQUESTED"
    status = await fal.status(queued)
    assert (status.state, status.error_type) == ("COMPLETED", "client_cancelled")
    assert await fal.cancel(running) == "CANCELLATION_REQUESTED"
    gone = fal.handle(T2V, "00000000-0000-0000-0000-000000000000")
    assert await fal.cancel(gone) == "NOT_FOUND"


async def test_many_jobs_wait_concurrently(
    start_emulator: StartEmulator, local_client: LocalClient
) -> None:
    server = start_emulator(latency=0.05, concurrency=4)
    fal = local_client(server)
    jobs = [await fal.submit(T2V, t2v(f"shot {i}")) for i in range(12)]
    finals = await asyncio.wait_for(asyncio.gather(*(fal.wait(j) for j in jobs)), timeout=60)
    assert {f.state for f in finals} == {"COMPLETED"}
    assert server.stats()["total_submissions"] == 12


def test_the_emulator_answers_a_plain_http_client(start_emulator: StartEmulator) -> None:
    server = start_emulator()
    answer = httpx.get(f"{server.url}/fal-ai/ltx-video/requests/nope/status")
    assert answer.status_code == 401  # no key sent
