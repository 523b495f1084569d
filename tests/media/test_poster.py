"""Posters: the first frame of a clip, small, as a JPEG."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from runner.errors import MediaError
from runner.media import VideoWriter
from runner.media.poster import write_poster


def test_a_poster_is_the_first_frame_scaled_down(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    with VideoWriter(clip, 1280, 720, 24) as writer:
        writer.write(Image.new("RGB", (1280, 720), (200, 40, 40)))
        writer.write(Image.new("RGB", (1280, 720), (40, 40, 200)), repeat=5)
    write_poster(clip, tmp_path / "poster.jpg")
    with Image.open(tmp_path / "poster.jpg") as poster:
        assert poster.format == "JPEG" and poster.size == (480, 270)
        red, _green, blue = poster.convert("RGB").getpixel((240, 135))  # type: ignore[misc]
        assert red > 150 and blue < 100  # the first frame, not a later one
    small = tmp_path / "small.mp4"
    with VideoWriter(small, 320, 240, 24) as writer:
        writer.write(Image.new("RGB", (320, 240)))
    write_poster(small, tmp_path / "small.jpg")
    with Image.open(tmp_path / "small.jpg") as poster:
        assert poster.size == (320, 240)  # never scaled up


def test_a_file_that_is_no_clip_is_a_media_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(MediaError, match="cannot read video"):
        write_poster(bad, tmp_path / "poster.jpg")
    assert not (tmp_path / "poster.jpg").exists()
