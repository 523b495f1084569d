#!/usr/bin/env python3
"""Why the shared store talks S3 through obstore: 1,000 small create-only PUTs
(If-None-Match: *), 1,000 compare-and-swap PUTs (If-Match) and 1,000 GETs against SeaweedFS
on loopback, with obstore (async, native PutMode) and with boto3 (its conditional
put_object, run in threads off the event loop), one at a time and 32 at once. Prints wall
time and CPU time (this process: user + system) of each.

    .venv/bin/python benchmarks/s3_clients.py [--count 1000] [--width 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.reference import print_reference  # noqa: E402
from tests import s3_servers  # noqa: E402

Op = Callable[[int], Awaitable[Any]]


def obstore_ops(endpoint: str, prefix: str) -> tuple[Op, Op, Op]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        s3_servers.BUCKET,
        prefix=prefix,
        endpoint=endpoint,
        region=s3_servers.REGION,
        access_key_id=s3_servers.ACCESS_KEY,
        secret_access_key=s3_servers.SECRET_KEY,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )
    etags: dict[int, str] = {}

    async def create(i: int) -> None:
        done = await obstore.put_async(store, f"o{i}", b"x" * 200, mode="create")
        etags[i] = str(done["e_tag"])

    async def swap(i: int) -> None:
        await obstore.put_async(store, f"o{i}", b"y" * 200, mode={"e_tag": etags[i]})

    async def get(i: int) -> None:
        await (await obstore.get_async(store, f"o{i}")).bytes_async()

    return create, swap, get


def boto3_ops(endpoint: str, prefix: str) -> tuple[Op, Op, Op]:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=s3_servers.ACCESS_KEY,
        aws_secret_access_key=s3_servers.SECRET_KEY,
        region_name=s3_servers.REGION,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=64),
    )
    bucket = s3_servers.BUCKET
    etags: dict[int, str] = {}

    async def create(i: int) -> None:
        done = await asyncio.to_thread(
            client.put_object, Bucket=bucket, Key=f"{prefix}/o{i}", Body=b"x" * 200, IfNoneMatch="*"
        )
        etags[i] = done["ETag"]

    async def swap(i: int) -> None:
        await asyncio.to_thread(
            client.put_object,
            Bucket=bucket,
            Key=f"{prefix}/o{i}",
            Body=b"y" * 200,
            IfMatch=etags[i],
        )

    def read(i: int) -> bytes:
        return bytes(client.get_object(Bucket=bucket, Key=f"{prefix}/o{i}")["Body"].read())

    async def get(i: int) -> None:
        await asyncio.to_thread(read, i)

    return create, swap, get


async def timed(op: Op, count: int, width: int) -> tuple[float, float]:
    slots = asyncio.Semaphore(width)

    async def one(i: int) -> None:
        async with slots:
            await op(i)

    cpu, wall = os.times(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    after = os.times()
    return time.perf_counter() - wall, (after.user - cpu.user) + (after.system - cpu.system)


async def compare(endpoint: str, count: int, width: int) -> None:
    for client, make in (("obstore", obstore_ops), ("boto3", boto3_ops)):
        for at_once in (1, width):
            create, swap, get = make(endpoint, uuid.uuid4().hex[:8])
            for label, op in (("create-only PUT", create), ("If-Match PUT", swap), ("GET", get)):
                wall, cpu = await timed(op, count, at_once)
                print(
                    f"{client:8} {at_once:3} at once  {count} x {label:16} "
                    f"wall {wall:6.2f} s  cpu {cpu:5.2f} s"
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--width", type=int, default=32)
    args = parser.parse_args()
    print_reference()
    with (
        tempfile.TemporaryDirectory() as tmp,
        s3_servers.serving("seaweedfs", Path(tmp)) as server,
    ):
        asyncio.run(compare(server.endpoint, args.count, args.width))
    return 0


if __name__ == "__main__":
    sys.exit(main())
