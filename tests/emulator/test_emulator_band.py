"""An animatic's captions live in a marked band, which a continuation leaves behind."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from runner.emulator import drawing, video_io
from runner.emulator.animatic import RenderSpec, render


def test_the_band_is_recognised_and_cut_off_after_encoding(tmp_path: Path) -> None:
    keyframe = tmp_path / "key.png"
    Image.new("RGB", (640, 360), (30, 120, 200)).save(keyframe)
    spec = RenderSpec(
        kind="i2v",
        resolution="480p",
        aspect_ratio="16:9",
        num_frames=9,
        frame_rate=8,
        prompt="A caption that must not be filmed again",
        seed=1,
        label="animatic · i2v",
        image=keyframe,
    )
    out = tmp_path / "clip.mp4"
    assert render(spec, out).error is None
    last = video_io.last_frame(out)
    picture = drawing.without_band(last)
    assert picture.size == (848, 480 - drawing.band_height((848, 480)))
    # what is left is the keyframe's colour, with no caption in it
    r, g, b = picture.convert("RGB").resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
    assert abs(r - 30) < 12 and abs(g - 120) < 12 and abs(b - 200) < 12


def test_an_ordinary_image_is_left_alone() -> None:
    image = Image.new("RGB", (640, 360), (255, 0, 150))  # close to the mark, but everywhere
    image.paste((10, 10, 10), (0, 0, 640, 300))
    assert drawing.without_band(Image.new("RGB", (640, 360), (40, 40, 40))).size == (640, 360)
    natural = Image.radial_gradient("L").resize((640, 360)).convert("RGB")
    assert drawing.without_band(natural) is natural
