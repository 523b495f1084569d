"""Fixtures for the emulator tests (the render pool and `start_emulator` are in
tests/conftest.py)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from emulator_helpers import AUTH, make_keyframe, make_reference


@pytest.fixture(scope="session")
def tls() -> ssl.SSLContext:
    """One TLS context for the session's clients, which reach emulators over plain HTTP:
    each would otherwise load a certificate bundle again (~25 ms of CPU, 47 clients)."""
    return ssl.create_default_context()


@pytest.fixture
def client(tls: ssl.SSLContext) -> Iterator[httpx.Client]:
    with httpx.Client(headers=AUTH, timeout=30, verify=tls) as http:
        yield http


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("emulator-assets")
    return {
        "landscape": make_keyframe(folder / "landscape.png", (640, 360)),
        "portrait": make_keyframe(folder / "portrait.png", (360, 640)),
        "reference": make_reference(folder / "reference.mp4"),
    }
