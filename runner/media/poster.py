"""A poster frame: a small JPEG of a clip's first frame, for contact sheets (the report).

Only the first frame is decoded, without frame threading (which would decode several frames
before giving the first), and it is scaled straight to the poster's size by FFmpeg: a
poster of a 720p clip costs about 15 ms. Posters are pictures for people, not content-
addressed outputs, so they need not be bit-exact. The JPEG is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import av

from runner import atomic
from runner.errors import MediaError
from runner.media._files import StrPath, reading, require_file, writing
from runner.media.convert import rgb_to_image


def write_poster(video: StrPath, out_jpg: StrPath, width: int = 480) -> None:
    """Write ``video``'s first frame, scaled to ``width`` (never up), as a JPEG."""
    src = require_file(video)
    out = Path(out_jpg)
    with reading(src, "video"), av.open(str(src)) as container:
        if not container.streams.video:
            raise MediaError(f"{src} has no video stream", hint="render it again")
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        frame = next(container.decode(stream), None)
        if frame is None:
            raise MediaError(f"{src} has no frames", hint="render it again")
        scaled = min(width, frame.width)
        height = max(2, round(frame.height * scaled / frame.width / 2) * 2)
        image = rgb_to_image(frame.reformat(width=scaled, height=height, format="rgb24"))
    # Not fsynced: a poster is remade in milliseconds (an empty one is never used).
    with writing(out, "poster"), atomic.replacing(out, ".jpg", durable=False) as tmp:
        image.save(tmp, format="JPEG", quality=82)
