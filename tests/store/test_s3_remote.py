"""The S3 remote against real servers on loopback (SeaweedFS and moto's server): both must
honour create-only and compare-and-swap puts, or claims mean nothing. Errors name the store
by URL and never show a credential."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from runner.store import RemoteError, StoreDefaults, open_remote
from runner.store.s3 import S3Remote
from runner.store.s3_settings import s3_settings
from tests.s3_servers import SECRET_KEY


def remote(server: Any, **env: str) -> S3Remote:
    return S3Remote(s3_settings(server.url(), {**server.env(), **env}, StoreDefaults()))


async def test_create_only_and_compare_and_swap(s3_server: Any) -> None:
    bucket = remote(s3_server)
    first = await bucket.put_if_absent("journal/k.json", b'{"n": 1}')
    assert first is not None
    assert await bucket.put_if_absent("journal/k.json", b'{"n": 2}') is None
    second = await bucket.put_if_match("journal/k.json", b'{"n": 3}', first)
    assert second is not None and second != first
    assert await bucket.put_if_match("journal/k.json", b'{"n": 4}', first) is None  # stale
    assert await bucket.put_if_match("journal/gone.json", b"{}", second) is None
    found = await bucket.get("journal/k.json")
    assert found is not None and found.data == b'{"n": 3}' and found.info.etag == second
    # Eight machines racing for one claim: exactly one wins.
    wins = await asyncio.gather(*(bucket.put_if_absent("race", b"%d" % i) for i in range(8)))
    assert sum(w is not None for w in wins) == 1


async def test_files_stream_both_ways_and_listings_page(s3_server: Any, tmp_path: Path) -> None:
    bucket = remote(s3_server)
    big = tmp_path / "clip.mp4"
    big.write_bytes(os.urandom(3 << 20))
    assert await bucket.put_if_absent("files/ab/clip", big) is not None
    assert await bucket.put_if_absent("files/ab/clip", big) is None
    info = await bucket.download("files/ab/clip", tmp_path / "back.mp4")
    assert info is not None and info.size == 3 << 20
    assert (tmp_path / "back.mp4").read_bytes() == big.read_bytes()
    assert await bucket.download("files/ab/none", tmp_path / "none") is None
    await asyncio.gather(*(bucket.put(f"results/{i:04}.json", b"{}") for i in range(30)))
    names = [info.name async for info in bucket.list("results/")]
    assert names == [f"results/{i:04}.json" for i in range(30)]
    await bucket.delete("results/0000.json")
    await bucket.delete("results/0000.json")  # deleting what is gone is no error
    assert await bucket.head("results/0000.json") is None


async def test_refused_credentials_name_the_store_never_the_secret(s3_server: Any) -> None:
    if s3_server.kind == "moto":
        pytest.skip("moto's server accepts any credentials")
    bucket = remote(s3_server, AWS_SECRET_ACCESS_KEY="wrong-" + SECRET_KEY)
    with pytest.raises(RemoteError) as raised:
        await bucket.get("anything")
    text = raised.value.render()
    assert bucket.url in text and "refused the credentials" in text
    assert "the environment" in text and SECRET_KEY not in text


async def test_a_store_that_does_not_answer_is_named_quickly(s3_server: Any) -> None:
    env = {**s3_server.env(), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    store = open_remote("s3://shotgraph-test/gone", env, timeout=0.5)
    with pytest.raises(RemoteError) as raised:
        await store.open()
    text = raised.value.render()
    assert "s3://shotgraph-test/gone (endpoint http://127.0.0.1:9)" in text
    assert SECRET_KEY not in text and "run again" in text
