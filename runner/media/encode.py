"""Deterministic H.264 MP4 writing, one frame at a time.

Determinism is what lets a stitched cut be content-addressed like every other output: the
same frames in give the same bytes out, in any process and on any machine. That needs
libx264 in its CPU-independent mode (:data:`X264_PARAMS`) with a fixed thread count and
kind (its output depends on those, nothing else), FFmpeg's ``bitexact`` flags on the codec
and the muxer (no encoder version string, no creation time) and bit-exact pixel conversion
(:mod:`runner.media.convert`). A writer given an audio rate adds a FLAC track, deterministic
too (:mod:`runner.media.audio`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
from av.codec.context import Flags
from av.container import OutputContainer
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from runner import atomic
from runner.errors import MediaError
from runner.media._files import StrPath, writing
from runner.media.audio import AudioTrack, Pcm
from runner.media.convert import FrameConverter, image_to_frame

PIX_FMT = "yuv420p"

# x264 picks some routines by CPU. Its AVX-512 macroblock-tree code reads memory nobody
# wrote, so the bytes depended on what the process had allocated and freed before: a stitch
# in the runner, beside other work, could differ from the same stitch in a fresh process.
# With AVX2 or without SIMD those routines round differently again. ``cpu-independent``
# makes x264 use its canonical ones: the same bytes in any process, on any machine.
X264_PARAMS = "cpu-independent=1"


@dataclass(frozen=True, slots=True)
class EncodeSettings:
    """How a video is encoded: libx264 ``crf`` (lower is better, 18 is visually lossless),
    ``preset`` (speed against size) and a fixed ``threads`` count, which is part of the
    output's identity."""

    crf: int = 20
    preset: str = "veryfast"
    threads: int = 2


class VideoWriter:
    """Encodes frames into an H.264 (yuv420p) MP4 at a constant rate, written atomically.

    Use as a context manager; the file appears at ``path`` only when the block succeeds.
    Frames of another size or pixel format are conformed (scaled to fit, black bars) by
    the writer, so it accepts any decoded frame or Pillow image. With ``audio_rate`` the
    file also has a stereo FLAC track at that rate (:mod:`.audio`), fed by :meth:`write_audio`.
    """

    def __init__(
        self,
        path: StrPath,
        width: int,
        height: int,
        rate: Fraction | int,
        settings: EncodeSettings | None = None,
        audio_rate: int | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise MediaError(f"H.264 (yuv420p) needs an even, positive size, not {width}x{height}")
        self.path = Path(path)
        self.width = width
        self.height = height
        self.rate = Fraction(rate)
        self.settings = settings or EncodeSettings()
        # Container tags (title, comment, ...): part of the bytes, so keep them deterministic.
        self.metadata = dict(metadata or {})
        self.frames_written = 0
        self.audio_rate = audio_rate
        self._audio: AudioTrack | None = None
        self._convert = FrameConverter(PIX_FMT, (width, height))
        self._stack: ExitStack | None = None
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None

    def __enter__(self) -> VideoWriter:
        with ExitStack() as stack:
            stack.enter_context(writing(self.path, "video"))
            tmp = stack.enter_context(atomic.replacing(self.path, ".mp4"))
            container = av.open(
                str(tmp),
                mode="w",
                format="mp4",
                container_options={"fflags": "+bitexact", "movflags": "+faststart"},
            )
            stack.callback(container.close)
            container.metadata.update(self.metadata)
            stream = container.add_stream("libx264", rate=self.rate)
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, PIX_FMT
            ctx = stream.codec_context
            ctx.time_base = 1 / self.rate
            # Slice threads, pinned rather than left to PyAV's default: the thread count
            # and the kind of threading both shape the bitstream.
            ctx.thread_type = "SLICE"
            ctx.thread_count = self.settings.threads
            ctx.flags |= Flags.bitexact
            ctx.options = {
                "crf": str(self.settings.crf),
                "preset": self.settings.preset,
                "x264-params": X264_PARAMS,
            }
            if self.audio_rate is not None:
                self._audio = AudioTrack(container, self.audio_rate)
            self._container, self._stream = container, stream
            self._stack = stack.pop_all()
        return self

    @property
    def audio_samples(self) -> int:
        """Samples of sound written so far (given to :meth:`write_audio`)."""
        return self._audio.samples if self._audio is not None else 0

    def write_audio(self, pcm: Pcm) -> None:
        """Append sound; the writer must have been made with ``audio_rate``."""
        if self._audio is None:
            raise RuntimeError("VideoWriter.write_audio() without an audio_rate")
        with writing(self.path, "video"):
            self._audio.write(pcm)

    def write(self, frame: VideoFrame | Image.Image, repeat: int = 1) -> None:
        """Append ``frame`` ``repeat`` times (converted once, encoded each time)."""
        if self._container is None or self._stream is None:
            raise RuntimeError("VideoWriter.write() outside its with-block")
        if isinstance(frame, Image.Image):
            frame = image_to_frame(frame)
        out = self._convert(frame)
        # The writer owns the timeline: PyAV rescales a frame's pts from the frame's own
        # time base, so both are replaced, not just the pts.
        out.time_base = self._stream.codec_context.time_base
        # A decoded frame remembers its picture type, and libx264 obeys it: without this
        # the source's I/P/B pattern would be forced onto the new encode.
        out.pict_type = PictureType.NONE
        with writing(self.path, "video"):
            for _ in range(repeat):
                out.pts = self.frames_written
                self._container.mux(self._stream.encode(out))
                self.frames_written += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None
        if exc is None:
            try:
                if self.frames_written == 0:
                    raise MediaError(f"no frames to write to {self.path}")
                assert self._container is not None and self._stream is not None
                self._container.mux(self._stream.encode(None))  # flush delayed frames
                if self._audio is not None:
                    self._audio.close()
            except BaseException as flush_exc:
                self._container = self._stream = self._audio = None
                if not stack.__exit__(type(flush_exc), flush_exc, flush_exc.__traceback__):
                    raise
                return None
        self._container = self._stream = self._audio = None
        return stack.__exit__(exc_type, exc, tb)
