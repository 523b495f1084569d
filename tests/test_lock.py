"""The lockfile's one owner, runner/lock.py: what it writes it reads back, field for field, and a
damaged lockfile is a user error that names the entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import ShotgraphError
from runner.lock import Lock, LockedInput, LockedOutput, LockEntry, lock_path, read_lock, write_lock

SHA_A = "a" * 64
SHA_B = "b" * 64


def sample() -> Lock:
    intro = LockEntry(
        kind="i2v",
        key="k-intro",
        deps=(),
        inputs=(LockedInput(("image_url",), SHA_A, 10, file="assets/a.png"),),
        output=LockedOutput(SHA_B, 20, "video/mp4"),
        endpoint="fal-ai/ltx-video-13b-distilled/image-to-video",
        request={"image_url": f"sha256:{SHA_A}", "prompt": "p", "seed": 7},
        seed=7,
        returned_seed=7,
        request_id="req-1",
        cost_usd=0.04,
        schema_sha256="c" * 64,
    )
    frame = LockEntry(
        kind="frame",
        key="k-frame",
        deps=("intro",),
        inputs=(
            LockedInput(("inputs", 0), SHA_B, 20, node="intro"),
            LockedInput(("inputs", 1), url="https://example.com/clip.mp4"),
        ),
        output=LockedOutput(SHA_A, 5, "image/png"),
        at="last",
    )
    sound = {"codec": "flac", "sample_rate": 24000, "channels": 2, "duration_seconds": 6.0}
    pro = LockEntry(
        kind="t2v",
        key="k-pro",
        deps=(),
        inputs=(),
        output=LockedOutput(SHA_A, 30, "video/mp4", audio=sound),
        endpoint="fal-ai/ltx-2/text-to-video",
        request={"prompt": "p", "duration": 6, "generate_audio": True},
        cost_usd=0.36,
    )
    return Lock(
        pipeline="demo",
        file="demo.yaml",
        backend="local",
        outputs={"best": "renders/best.png"},
        nodes={"intro": intro, "best": frame, "pro": pro},
    )


def test_what_is_written_reads_back_the_same(tmp_path: Path) -> None:
    path = lock_path(tmp_path / "demo.yaml")
    assert path.name == "demo.lock.json"
    assert write_lock(path, sample())
    assert read_lock(path) == sample()
    assert not write_lock(path, sample())  # the same content: the file is not touched


def test_one_line_per_node_keys_sorted(tmp_path: Path) -> None:
    lines = sample().render().splitlines()
    assert lines[:6] == [
        "{",
        '  "backend": "local",',
        '  "file": "demo.yaml",',
        '  "lock_version": 1,',
        '  "outputs": {"best": "renders/best.png"},',
        '  "pipeline": "demo",',
    ]
    assert lines[6] == '  "nodes": {'
    # Each node on a line of its own, between them a line that never changes (git merges
    # changes to two neighbouring nodes only when some line separates them).
    assert [line.split(":")[0].strip() for line in lines[7:12]] == [
        '"best"',
        ",",
        '"intro"',
        ",",
        '"pro"',
    ]
    assert lines[12:] == ["  }", "}"]
    best = json.loads(lines[7].split(": ", 1)[1])
    assert "endpoint" not in best and best["at"] == "last"
    assert best["inputs"][1] == {"at": ["inputs", 1], "url": "https://example.com/clip.mp4"}
    # A silent output says nothing of sound; one with sound records its stream.
    intro, pro = (json.loads(lines[n].split(": ", 1)[1]) for n in (9, 11))
    assert "audio" not in intro["output"]
    assert pro["output"]["audio"]["sample_rate"] == 24000 and pro["seed"] is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["nodes"]["intro"].pop("inputs"),
            "entry for 'intro' is malformed (no 'inputs')",
        ),
        (lambda d: d["nodes"]["intro"].update(key=3), "entry for 'intro' is malformed (key is 3)"),
        (lambda d: d["nodes"]["best"]["output"].pop("size"), "entry for 'best' is malformed"),
        (lambda d: d["nodes"]["intro"].pop("request"), "entry for 'intro' is malformed"),
        (lambda d: d.pop("backend"), "is malformed (no 'backend')"),
        (lambda d: d.update(lock_version=2), "is not a version 1 shotgraph lockfile"),
    ],
)
def test_a_damaged_lockfile_says_where(tmp_path: Path, edit: object, message: str) -> None:
    path = tmp_path / "demo.lock.json"
    document = json.loads(sample().render())
    edit(document)  # type: ignore[operator]
    path.write_text(json.dumps(document))
    with pytest.raises(ShotgraphError) as caught:
        read_lock(path)
    assert message in caught.value.message


def test_a_pipeline_is_not_a_lockfile(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("version: 1\nname: demo\nnodes: {}\n")
    with pytest.raises(ShotgraphError, match="is a pipeline, not a lockfile"):
        read_lock(path)
