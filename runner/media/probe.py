"""What a media file is: an image or a video, its size, and for a video its frames and rate."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from PIL import Image, UnidentifiedImageError

from runner.errors import MediaError
from runner.media._files import (
    StrPath,
    check_complete,
    decode_checked,
    open_video,
    require_file,
    stream_rate,
)
from runner.media.audio import AudioInfo, stream_audio_info

MediaKind = Literal["image", "video"]

# Still-image formats are read with Pillow; anything else goes to FFmpeg as a video.
_IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"})
# Pillow's modes in FFmpeg's pixel-format vocabulary, so images and videos read alike.
_PIL_PIX_FMTS = {"RGB": "rgb24", "RGBA": "rgba", "L": "gray", "LA": "ya8", "P": "pal8"}


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """The facts about one media file that pipelines and the executor rely on.

    ``codec`` is the stream's codec for a video (``h264``) and the file format for an
    image (``png``). ``pixel_format`` uses FFmpeg's names (``yuv420p``, ``rgb24``). The
    video-only fields are ``None`` for an image; ``audio`` is the first audio stream of a
    video, None when it is silent.
    """

    kind: MediaKind
    width: int
    height: int
    codec: str
    pixel_format: str
    num_frames: int | None = None
    frame_rate: Fraction | None = None
    duration_seconds: float | None = None
    audio: AudioInfo | None = None

    @property
    def fps(self) -> float | None:
        """The frame rate as a float (``frame_rate`` keeps the exact fraction)."""
        return float(self.frame_rate) if self.frame_rate is not None else None

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "pixel_format": self.pixel_format,
            "num_frames": self.num_frames,
            "frame_rate": str(self.frame_rate) if self.frame_rate is not None else None,
            "fps": self.fps,
            "duration_seconds": self.duration_seconds,
            "audio": self.audio.as_json() if self.audio is not None else None,
        }


def probe(path: StrPath, *, count_frames: bool = False) -> MediaInfo:
    """Describe an image or a video file.

    A video's frame count is its number of packets (read, not decoded), checked against
    the container's index so a truncated file is caught. ``count_frames=True`` decodes
    every frame instead: slower, but it is the count a player shows and it proves the
    whole file decodes. Unreadable, truncated or corrupt files raise :class:`MediaError`.
    """
    p = require_file(path)
    image = _probe_image(p)
    return image if image is not None else _probe_video(p, count_frames=count_frames)


def _probe_image(path: Path) -> MediaInfo | None:
    try:
        with Image.open(path) as img:
            if img.format not in _IMAGE_FORMATS:
                return None
            # open() only parses the header; load() decodes, which catches truncation.
            img.load()
            return MediaInfo(
                kind="image",
                width=img.width,
                height=img.height,
                codec=(img.format or "image").lower(),
                pixel_format=_PIL_PIX_FMTS.get(img.mode, img.mode.lower()),
            )
    except UnidentifiedImageError:
        return None
    # Pillow reports damaged data as OSError, SyntaxError or ValueError depending on the
    # codec and where the damage is.
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(
            f"cannot read image {path}: {exc}",
            hint="the file is corrupt or truncated; re-export it",
        ) from exc


def _probe_video(path: Path, *, count_frames: bool) -> MediaInfo:
    with open_video(path) as (container, stream):
        rate = stream_rate(stream, path)
        if count_frames:
            frames = sum(1 for _ in decode_checked(container, stream, path))
        else:
            # Reading packets without decoding them is cheap, and proves the file is whole.
            frames = sum(1 for pkt in container.demux(stream) if pkt.size)
            check_complete(stream, frames, path)
        if frames == 0:
            raise MediaError(f"{path} has no video frames", hint="re-render or re-export it")
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        else:
            duration = float(frames / rate)
        ctx = stream.codec_context
        return MediaInfo(
            kind="video",
            width=ctx.width,
            height=ctx.height,
            codec=ctx.name,
            pixel_format=ctx.pix_fmt or "unknown",
            num_frames=frames,
            frame_rate=rate,
            duration_seconds=duration,
            audio=stream_audio_info(container),
        )
