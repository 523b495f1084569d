"""A process whose store requests are cut short ends with its exit code, never an abort:
obstore's threads must not take the GIL while the interpreter is finalised."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from runner.store import s3_inflight
from runner.store.s3_inflight import settled
from tests.helpers import refused_port

# What a run does when its store goes away: many requests under way, the first failure
# stops the run and the others are cancelled, the summary is printed, the command exits 1.
FAILING_RUN = """
import asyncio, sys
from runner.cli import exit_with
from runner.store.s3 import S3Remote
from runner.store.s3_settings import S3Settings

async def run() -> None:
    settings = S3Settings("bucket", "p", sys.argv[1], access_key_id="k", secret_access_key="s")
    remote = S3Remote(settings, retry_seconds=0.2)
    tasks = [asyncio.create_task(remote.put_if_absent(f"j/{i}", b"{}")) for i in range(32)]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in pending:
        task.cancel()
    failed = [task.exception() is not None for task in done]
    print("summary:", "store gone" if all(failed) else "?", flush=True)

asyncio.run(run())
exit_with(1)
"""


def test_a_run_that_loses_its_store_exits_1_and_never_aborts() -> None:
    # Before the fix about a third of these processes died of SIGABRT after the summary.
    with refused_port() as port:  # connections are refused at once
        command = [sys.executable, "-c", FAILING_RUN, f"http://127.0.0.1:{port}"]
        runs = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(12)
        ]
        for run in runs:
            out, err = run.communicate(timeout=60)
            assert run.returncode == 1, (run.returncode, err[-2000:])
            assert out == "summary: store gone\n"
            assert err == "", err[-2000:]  # no panic, no outcome reported lost


def test_a_cancelled_caller_leaves_its_request_to_end_before_the_loop_closes() -> None:
    request: asyncio.Future[str] | None = None

    async def run() -> None:
        nonlocal request
        loop = asyncio.get_running_loop()
        request = loop.create_future()  # as obstore's are: completed from outside
        caller = asyncio.create_task(settled(request))
        await asyncio.sleep(0)  # the caller is waiting on the request
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert not request.done()
        loop.call_later(0.05, request.set_result, "answer")

    asyncio.run(run())
    assert request is not None and request.result() == "answer"
    assert s3_inflight.unsettled()  # a request was sent: the CLI exits without finalising


def test_a_request_that_outlives_the_drain_is_cancelled(monkeypatch: Any) -> None:
    monkeypatch.setattr(s3_inflight, "DRAIN_SECONDS", 0.05)
    request: asyncio.Future[str] | None = None

    async def run() -> None:
        nonlocal request
        request = asyncio.get_running_loop().create_future()  # never answered
        caller = asyncio.create_task(settled(request))
        await asyncio.sleep(0)
        caller.cancel()

    asyncio.run(run())
    assert request is not None and request.cancelled()
