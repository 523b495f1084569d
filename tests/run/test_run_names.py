"""A local run names every node on its animatic, and the cut shows each shot's name, while
requests, keys and the lockfile stay exactly what fal would be sent."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av

from runner.compile.check import check_pipeline
from runner.emulator import fingerprint
from tests.emulator.emulator_helpers import name_difference
from tests.run_helpers import (
    FULL_SIZE,
    GENERATION_NODES,
    lock_of,
    make_project,
    run_local,
    start_emulator,
)

# The cut's clips, in story order, 9 frames each (tests/run_helpers.py's tiny pipeline).
CUT = ["street", "intro_more", "orbit", "new_angle"]


def test_every_clip_and_the_cut_carry_the_node_name(
    tmp_path: Path, render_pool: ProcessPoolExecutor
) -> None:
    pipeline = make_project(tmp_path / "p")
    state = tmp_path / "emulator"
    # drawn at full size: the test reads the names in the band
    with start_emulator(render_pool, state_dir=state, render_scale=FULL_SIZE) as emulator:
        code = run_local(pipeline, emulator.url, tmp_path / "store")
        assert code == 0
    jobs = [json.loads(path.read_text()) for path in (state / "jobs").glob("*.json")]
    assert {job["node"] for job in jobs} == GENERATION_NODES
    lock = lock_of(pipeline)
    for job in jobs:
        # the name travelled beside the request, not in it: the body is the lockfile's
        # request (media as URLs there, as hashes here), fingerprinted as ever
        request = lock.nodes[job["node"]].request
        assert request is not None and set(job["body"]) == set(request)
        assert job["body"]["prompt"] == request["prompt"]
        assert job["fingerprint"] == fingerprint(job["endpoint"], job["body"])
    # the cache keys the run recorded are the ones compiled before anything was sent
    steps = check_pipeline(pipeline, backend="local").require().steps
    assert {name: entry.key for name, entry in lock.nodes.items()} == {
        name: steps[name].key for name in lock.nodes
    }

    with av.open(str(tmp_path / "p" / "renders" / "cut.mp4")) as container:
        frames = [frame.to_image() for frame in container.decode(video=0)]
    assert len(frames) == 9 * len(CUT)
    for k, node in enumerate(CUT):
        frame = frames[9 * k + 4]
        own = name_difference(frame, node)
        assert own < 10, (node, own)
        assert all(name_difference(frame, other) > 2 * own + 5 for other in CUT if other != node)
