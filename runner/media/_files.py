"""The seams between the media functions and the disk: opening inputs, writing outputs.

PyAV and Pillow raise their own exceptions (``av.FFmpegError``, ``PIL.UnidentifiedImageError``,
``OSError``); everything in this package translates them here into :class:`MediaError`, so a
user never sees a raw traceback for a bad file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from runner.errors import MediaError

StrPath = str | os.PathLike[str]


def describe_av_error(exc: BaseException) -> str:
    """FFmpeg's own words for an error, without the errno noise PyAV adds to ``str()``."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror) if strerror else str(exc) or type(exc).__name__


@contextmanager
def reading(path: Path, what: str = "media file") -> Iterator[None]:
    """Translate decoder and file errors raised while reading ``path``."""
    try:
        yield
    except (av.FFmpegError, OSError, EOFError) as exc:
        raise MediaError(
            f"cannot read {what} {path}: {describe_av_error(exc)}",
            hint="the file is corrupt, truncated or not a format FFmpeg knows; "
            "re-render or re-export it",
        ) from exc


def require_file(path: StrPath) -> Path:
    """``path`` as a Path, or a MediaError if there is no regular file there."""
    p = Path(path)
    if not p.is_file():
        reason = "is a directory" if p.is_dir() else "does not exist"
        raise MediaError(f"{p} {reason}", hint="check the path (relative to the pipeline file)")
    return p


@contextmanager
def open_video(path: StrPath) -> Iterator[tuple[InputContainer, VideoStream]]:
    """Open ``path`` for decoding its first video stream; audio and other streams are ignored.

    Errors while opening *and* while the caller decodes inside the ``with`` block become
    :class:`MediaError` naming the file.
    """
    p = require_file(path)
    with reading(p, "video"):
        container = av.open(str(p), mode="r")
        try:
            # FFmpeg opens a still image as a one-frame "video" through an image demuxer
            # (png_pipe, image2…); a clip that is really an image is a pipeline mistake.
            is_image = container.format.name.endswith("_pipe") or "image2" in container.format.name
            if is_image or not container.streams.video:
                raise MediaError(
                    f"{p} is an image, not a video" if is_image else f"{p} has no video stream",
                    hint="a video input must be a video file (MP4, MOV, WebM…)",
                )
            stream = container.streams.video[0]
            # Frame threading only changes speed: H.264 decoding is exact by specification.
            stream.thread_type = "AUTO"
            yield container, stream
        finally:
            container.close()


def decode_checked(
    container: InputContainer, stream: VideoStream, path: Path
) -> Iterator[VideoFrame]:
    """Decode ``stream`` frame by frame, raising MediaError if the file ends early.

    FFmpeg stops quietly at the end of a truncated MP4 whose index is at the front; a
    packet count short of the index's sample count is how the truncation shows.
    """
    packets = 0
    for packet in container.demux(stream):
        if packet.size:
            packets += 1
        yield from packet.decode()
    check_complete(stream, packets, path)


def check_complete(stream: VideoStream, packets: int, path: Path) -> None:
    """Raise MediaError if fewer packets were read than the container's index lists."""
    if 0 < packets < stream.frames:
        raise MediaError(
            f"{path} is truncated: its index lists {stream.frames} frames "
            f"but the file holds only {packets}",
            hint="the download or render was cut short; fetch or render it again",
        )


def stream_rate(stream: VideoStream, path: Path) -> Fraction:
    """The stream's frame rate: the container's average, else FFmpeg's guess."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise MediaError(
            f"{path} does not declare a frame rate", hint="re-encode it with a constant frame rate"
        )
    return Fraction(rate)


@contextmanager
def writing(path: Path, what: str = "file") -> Iterator[None]:
    """Translate encoder and file errors raised while writing ``path``."""
    try:
        yield
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(
            f"cannot write {what} {path}: {describe_av_error(exc)}",
            hint="check free disk space and that the directory is writable",
        ) from exc
