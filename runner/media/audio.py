"""Sound in the MP4s shotgraph reads and writes: 16-bit stereo samples, deterministic FLAC.

Writing (:class:`AudioTrack`): FLAC in MP4, stereo, 16-bit, with fixed predictors (integer
arithmetic only), in blocks of 4096 samples, with the ``bitexact`` flag: the same samples give
the same bytes in any process and on any machine. Lossy codecs do not: FFmpeg's AAC encoder
and its float AAC decoder give other bytes with SIMD off (``tests/media`` checks the cut
with SIMD off, as it does for H.264), and libopus and LAME pick their SIMD themselves. FLAC
in MP4 plays in Chrome, Firefox, Edge and Safari.

Reading (:func:`read_audio`): AAC (what fal sends) is decoded by FFmpeg's fixed-point decoder
(``aac_fixed``), then resampled in 32-bit integers and made 16-bit by a filter graph, so the
samples read are the same on every machine. Other codecs use their usual decoder. Mono
becomes stereo, any rate the one asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.codec.context import CodecContext, Flags
from av.container import InputContainer, OutputContainer

from runner.errors import MediaError
from runner.media._files import StrPath, reading, require_file

CODEC = "flac"
LAYOUT = "stereo"
SAMPLE_FORMAT = "s16"  # interleaved: left, right, left, right...
FRAME_SAMPLES = 4096  # a FLAC block
_SAMPLE_BYTES = 4  # a 16-bit left and a 16-bit right


@dataclass(frozen=True, slots=True)
class Pcm:
    """Stereo samples at ``rate``: signed 16-bit, little-endian, interleaved (L, R, L, ...)."""

    rate: int
    data: bytes = b""

    @property
    def samples(self) -> int:
        return len(self.data) // _SAMPLE_BYTES

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    def between(self, start: int, stop: int) -> Pcm:
        """Samples ``start`` to ``stop`` (fewer where these end sooner)."""
        return Pcm(self.rate, self.data[start * _SAMPLE_BYTES : stop * _SAMPLE_BYTES])

    def fitted(self, samples: int) -> Pcm:
        """Exactly ``samples`` long: cut, or made up with silence at the end."""
        size = samples * _SAMPLE_BYTES
        return Pcm(self.rate, self.data[:size] + bytes(max(0, size - len(self.data))))


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """The first audio stream of a file: codec, rate, channels and length."""

    codec: str
    sample_rate: int
    channels: int
    duration_seconds: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration_seconds": self.duration_seconds,
        }


class AudioTrack:
    """The FLAC stream of an MP4 being written: samples in, whole blocks encoded."""

    def __init__(self, container: OutputContainer, rate: int) -> None:
        stream = container.add_stream(CODEC, rate=rate, layout=LAYOUT)
        assert isinstance(stream, AudioStream)
        ctx = stream.codec_context
        ctx.format = SAMPLE_FORMAT
        ctx.flags |= Flags.bitexact
        ctx.time_base = Fraction(1, rate)
        # Fixed predictors: integer arithmetic only (LPC search uses floating point).
        ctx.options = {"lpc_type": "fixed", "frame_size": str(FRAME_SAMPLES)}
        self.rate = rate
        self.samples_written = 0
        self._container = container
        self._stream: AudioStream = stream
        self._pending = bytearray()

    @property
    def samples(self) -> int:
        """Samples given so far (encoded, or waiting for a whole block)."""
        return self.samples_written + len(self._pending) // _SAMPLE_BYTES

    def write(self, pcm: Pcm) -> None:
        """Append ``pcm`` (at this track's rate); complete blocks are encoded now."""
        if pcm.rate != self.rate:
            raise ValueError(f"samples at {pcm.rate} Hz for a {self.rate} Hz track")
        self._pending += pcm.data
        whole = len(self._pending) // (FRAME_SAMPLES * _SAMPLE_BYTES) * FRAME_SAMPLES
        if whole:
            self._encode(whole)

    def close(self) -> None:
        """Encode what is left (a last, shorter block) and flush the encoder."""
        if self._pending:
            self._encode(len(self._pending) // _SAMPLE_BYTES)
        self._container.mux(self._stream.encode(None))

    def _encode(self, samples: int) -> None:
        size = samples * _SAMPLE_BYTES
        for start in range(0, size, FRAME_SAMPLES * _SAMPLE_BYTES):
            stop = min(size, start + FRAME_SAMPLES * _SAMPLE_BYTES)
            frame = AudioFrame(format=SAMPLE_FORMAT, layout=LAYOUT, samples=(stop - start) // 4)
            frame.planes[0].update(bytes(self._pending[start:stop]))
            frame.sample_rate = self.rate
            frame.time_base = Fraction(1, self.rate)
            frame.pts = self.samples_written
            self.samples_written += frame.samples
            self._container.mux(self._stream.encode(frame))
        del self._pending[:size]


def audio_info(path: StrPath) -> AudioInfo | None:
    """The first audio stream of ``path``, or None when it has none."""
    p = require_file(path)
    with reading(p, "media file"), av.open(str(p)) as container:
        return stream_audio_info(container)


def audio_facts(path: StrPath) -> dict[str, object] | None:
    """What a record keeps of a file's sound (:meth:`AudioInfo.as_json`): None when the
    file is silent, or not a media file FFmpeg reads (the record then says nothing)."""
    try:
        info = audio_info(path)
    except MediaError:
        return None
    return info.as_json() if info is not None else None


def stream_audio_info(container: InputContainer) -> AudioInfo | None:
    """The first audio stream of an open file, or None when it has none."""
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    ctx = stream.codec_context
    duration = None
    if stream.duration and stream.time_base:
        duration = round(float(stream.duration * stream.time_base), 6)
    return AudioInfo(ctx.name, ctx.sample_rate, ctx.channels, duration)


def read_audio(path: StrPath, rate: int | None = None) -> Pcm | None:
    """The first audio stream of ``path`` as 16-bit stereo samples at ``rate`` (its own
    rate when None); None when it has no audio stream."""
    p = require_file(path)
    with reading(p, "audio"), av.open(str(p)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        target = rate or stream.codec_context.sample_rate
        data = bytearray()
        convert = _Converter(target)
        for frame in _decoded(container, stream):
            for out in convert(frame):
                data += _samples(out)
        for out in convert(None):
            data += _samples(out)
        pcm = Pcm(target, bytes(data))
        # AAC pads its last frame; the container's duration says where the sound ends.
        if stream.duration and stream.time_base:
            pcm = pcm.fitted(round(stream.duration * stream.time_base * target))
        return pcm


def _decoded(container: InputContainer, stream: AudioStream) -> Iterator[AudioFrame]:
    if stream.codec_context.name != "aac":
        yield from container.decode(stream)
        return
    decoder = CodecContext.create("aac_fixed", "r")
    assert isinstance(decoder, AudioCodecContext)
    decoder.extradata = stream.codec_context.extradata
    decoder.sample_rate = stream.codec_context.sample_rate
    decoder.layout = stream.codec_context.layout
    for packet in container.demux(stream):
        yield from decoder.decode(packet)


def _samples(frame: AudioFrame) -> bytes:
    return bytes(frame.planes[0])[: frame.samples * _SAMPLE_BYTES]


class _Converter:
    """Decoded frames to interleaved 16-bit stereo at one rate, through 32-bit integers."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._graph: av.filter.Graph | None = None

    def __call__(self, frame: AudioFrame | None) -> Iterator[AudioFrame]:
        if frame is None:
            if self._graph is None:
                return
            self._graph.push(None)
        else:
            if self._graph is None:
                self._graph = self._build(frame)
            self._graph.push(frame)
        while True:
            try:
                yield self._graph.pull()  # type: ignore[misc]  # PyAV's stubs: a frame
            except (av.BlockingIOError, av.EOFError):
                return

    def _build(self, frame: AudioFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        source = graph.add_abuffer(
            format=frame.format.name,
            sample_rate=frame.sample_rate,
            layout=frame.layout.name,
            time_base=frame.time_base or Fraction(1, frame.sample_rate),
        )
        resample = graph.add("aresample", f"{self.rate}:internal_sample_fmt=s32p")
        shape = graph.add("aformat", f"sample_fmts={SAMPLE_FORMAT}:channel_layouts={LAYOUT}")
        sink = graph.add("abuffersink")
        source.link_to(resample)
        resample.link_to(shape)
        shape.link_to(sink)
        graph.configure()
        return graph
