"""The band a director reads: the node's name (pixels and the file's title) and the whole
prompt, a page at a time."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
import pytest
from emulator_helpers import name_difference

from runner.emulator import drawing, video_io
from runner.emulator.animatic import RenderSpec, render

SIZE = (848, 480)
# A prompt as the shipped templates write them: what matters most for continuity comes last.
LONG = (
    "Medium shot of a woman in her thirties with short black hair and a yellow raincoat, in "
    "a quiet street at night in soft rain. Action: a slow turn toward the street. Camera: "
    "steady framing, no sudden zoom. Lighting: soft and consistent, neon reflections on wet "
    "pavement. Continuity: same outfit, same location, no scene cut, no style change, "
    "the umbrella stays in her left hand."
)


def clip(
    tmp_path: Path, node: str | None, prompt: str = "a short caption", **extra: object
) -> Path:
    spec = RenderSpec(
        kind="t2v",
        resolution="480p",
        aspect_ratio="16:9",
        num_frames=12,
        frame_rate=12,
        prompt=prompt,
        seed=5,
        label="animatic · t2v · seed 5",
        node=node,
        **extra,  # type: ignore[arg-type]
    )
    out = tmp_path / f"{node}-{len(prompt)}-{sorted(extra)}.mp4"
    assert render(spec, out).error is None
    return out


def test_the_node_name_is_written_in_the_band(tmp_path: Path) -> None:
    frames = list(video_io.frames(clip(tmp_path, "intro_more")))
    for frame in (frames[0], frames[-1]):
        assert name_difference(frame, "intro_more") < 8
    # the same region drawn with another name does not match
    assert name_difference(frames[0], "intro_less") > 3 * name_difference(frames[0], "intro_more")
    assert name_difference(frames[0], "new_angle") > 20
    nameless = next(video_io.frames(clip(tmp_path, None)))
    assert name_difference(nameless, "intro_more") > 20


def test_the_node_name_is_the_files_title(tmp_path: Path) -> None:
    with av.open(str(clip(tmp_path, "orbit"))) as container:
        assert container.metadata["title"] == "orbit"
        assert "camera: " in container.metadata["comment"]
    with av.open(str(clip(tmp_path, None))) as container:
        assert "title" not in container.metadata


def test_a_long_prompt_is_paged_and_nothing_is_dropped() -> None:
    pages = drawing.band_pages(SIZE, LONG, "label", "node")
    assert len(pages) >= 2
    layout = drawing.band_layout(SIZE)
    lines = drawing.wrap(LONG, layout.text, SIZE[0] * 0.92)
    assert " ".join(lines).split() == LONG.split()  # every word, in order
    assert all(layout.text.getlength(line) <= SIZE[0] * 0.92 for line in lines)
    # each page holds what fits in the band, and every page is shown, in order
    assert len(pages) == -(-len(lines) // layout.lines)
    shown = [drawing.page_at(i, 121, len(pages)) for i in range(121)]
    assert shown == sorted(shown) and set(shown) == set(range(len(pages)))


def test_a_word_too_long_for_a_line_is_broken_not_lost() -> None:
    face = drawing.font(16)
    word = "x" * 400
    lines = drawing.wrap(f"see {word} here", face, 300)
    assert "".join(lines).replace(" ", "") == f"see{word}here"
    assert all(face.getlength(line) <= 300 for line in lines)


def test_the_clip_shows_every_page_of_the_prompt(tmp_path: Path) -> None:
    def bands(path: Path) -> list[np.ndarray]:
        frames = list(video_io.frames(path))
        layout = drawing.band_layout(SIZE)
        return [
            np.asarray(f.crop((0, layout.top + layout.text_y, *SIZE)).convert("L"), dtype=float)
            for f in frames
        ]

    pages = len(drawing.band_pages(SIZE, LONG, "", "n"))
    forward = bands(clip(tmp_path, "n", LONG))
    # the caption changes exactly when the page turns
    turns = sum(float(np.abs(a - b).mean()) > 3 for a, b in itertools.pairwise(forward))
    assert turns == pages - 1
    # reversed, the picture plays backwards but the pages still read from the first
    backward = bands(clip(tmp_path, "n", LONG, reverse=True))
    assert float(np.abs(backward[0] - forward[0]).mean()) < 3


@pytest.mark.parametrize("size", [(720, 1280), (480, 480), (1280, 720)])
def test_the_band_fits_in_every_shape(size: tuple[int, int]) -> None:
    layout = drawing.band_layout(size)
    assert layout.lines >= 2
    bottom = layout.text_y + layout.lines * layout.line_height
    assert bottom <= drawing.band_height(size)
    assert drawing.name_box(size, "intro")[1] >= size[1] - drawing.band_height(size)


def test_a_long_node_name_keeps_to_its_part_of_the_heading(tmp_path: Path) -> None:
    node = "a_very_long_node_name_" * 4
    left, _, right, _ = drawing.name_box(SIZE, node)
    assert right - left <= 0.4 * SIZE[0] + 2
    frame = next(video_io.frames(clip(tmp_path, node)))
    assert name_difference(frame, node) < 8
