"""A poster frame: a small JPEG of a clip's first frame, for contact sheets (the report).

Only the first frame is decoded, so a poster costs milliseconds whatever the clip's length.
The JPEG is written atomically; the same clip gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from runner import atomic
from runner.errors import MediaError
from runner.media._files import StrPath, open_video, writing
from runner.media.convert import frame_to_image


def write_poster(video: StrPath, out_jpg: StrPath, width: int = 480) -> None:
    """Write ``video``'s first frame, scaled to ``width`` (never up), as a JPEG."""
    out = Path(out_jpg)
    with open_video(video) as (container, stream):
        frame = next(iter(container.decode(stream)), None)
        if frame is None:
            raise MediaError(f"{video} has no frames", hint="render it again")
        image = frame_to_image(frame)
    if image.width > width:
        height = max(2, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    # Not fsynced: a poster is remade in milliseconds (an empty one is never used).
    with writing(out, "poster"), atomic.replacing(out, ".jpg", durable=False) as tmp:
        image.save(tmp, format="JPEG", quality=82)
