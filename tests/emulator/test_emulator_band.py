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
    assert picture.size == last.size == (848, 480)  # same framing: nothing is cropped
    # the band (caption, label, counter) is painted over with the picture: the keyframe's
    # colour everywhere, no caption left to film again
    band = picture.crop((0, 480 - drawing.band_height((848, 480)), 848, 480)).convert("RGB")
    lo, hi = zip(*band.getextrema(), strict=True)
    assert max(hi[0] - 30, 30 - lo[0], hi[2] - 200, 200 - lo[2]) < 16, band.getextrema()


def test_an_ordinary_image_is_left_alone() -> None:
    image = Image.new("RGB", (640, 360), (255, 0, 150))  # close to the mark, but everywhere
    image.paste((10, 10, 10), (0, 0, 640, 300))
    assert drawing.without_band(image) is image  # no thin stripe over a black band
    plain = Image.new("RGB", (640, 360), (40, 40, 40))
    assert drawing.without_band(plain) is plain
    natural = Image.radial_gradient("L").resize((640, 360)).convert("RGB")
    assert drawing.without_band(natural) is natural
