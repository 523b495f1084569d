"""Join clips with hard cuts into one H.264 MP4: the ``stitch`` node.

Conform rule. The output takes the **first clip's** frame size (rounded down to even, as
yuv420p requires) and frame rate. Every other clip is conformed to them:

* Size: scaled to the largest size that fits, aspect ratio kept, and centred on black —
  bars above and below (letterbox) or left and right (pillarbox). A clip already at the
  output size is not scaled.
* Rate: the clip is laid on the output's clock. For every tick ``k / rate`` that falls
  inside the clip's span — from its first frame to the end of its last one — the output
  shows the source frame whose timestamp is nearest; on an exact tie the earlier frame,
  the one already on screen, wins. So a 12 fps clip shows each frame twice at 24 fps, a
  48 fps clip every other frame, and a clip of duration ``d`` gives ``ceil(d * rate)``
  frames. A clip already at the output rate passes frame for frame.

Sound. When any clip has an audio stream, the cut has one: stereo FLAC at the **sample rate
of the first clip with sound**. Each clip's sound is resampled to it and laid under the
clip's own frames on the cut's timeline, cut or made up with silence to end exactly where
its pictures end; a clip without sound contributes silence. So sound never drifts at a
cut, and the cut's sound is as long as its pictures (to within one sample). When no clip
has sound the cut has none, byte for byte what it was before sound existed.

Frames are decoded, conformed and encoded one at a time, so memory does not grow with the
length of the cut; a clip's sound is read whole (a few MB for a clip of 20 s).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from av.video.frame import VideoFrame

from runner.errors import MediaError
from runner.media._files import (
    StrPath,
    decode_checked,
    open_video,
    require_file,
    stream_rate,
)
from runner.media._time import frame_period, relative_time
from runner.media.audio import AudioInfo, Pcm, audio_info, read_audio
from runner.media.convert import FrameConverter, Placement, fit_inside
from runner.media.encode import PIX_FMT, EncodeSettings, VideoWriter

CONFORM_RULE = (
    "clips are conformed to the first clip's size and frame rate: scaled to fit with the "
    "aspect ratio kept and centred on black bars; retimed by showing, at each tick of the "
    "output clock within the clip's span, the source frame nearest in time (ties to the "
    "earlier frame); sound, if any clip has some, is resampled to the first sounding clip's "
    "rate and cut or padded with silence to each clip's span (silence for silent clips)"
)


@dataclass(frozen=True, slots=True)
class ClipReport:
    """What happened to one clip of a stitch: its source format and the frames it gave."""

    path: Path
    width: int
    height: int
    frame_rate: Fraction
    frames_in: int
    frames_out: int
    placement: Placement
    sound: AudioInfo | None = None  # the clip's own audio stream, if it has one

    @property
    def resized(self) -> bool:
        return (self.placement.width, self.placement.height) != (self.width, self.height)

    @property
    def retimed(self) -> bool:
        return self.frames_in != self.frames_out

    @property
    def conformed(self) -> bool:
        """True if the clip was scaled or had frames dropped or repeated."""
        return self.resized or self.retimed or self.placement.letterboxed

    def as_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "size": [self.width, self.height],
            "frame_rate": str(self.frame_rate),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "conformed": self.conformed,
            "resized": self.resized,
            "retimed": self.retimed,
            "placement": {
                "x": self.placement.x,
                "y": self.placement.y,
                "width": self.placement.width,
                "height": self.placement.height,
            },
            "sound": self.sound.as_json() if self.sound is not None else None,
        }


@dataclass(frozen=True, slots=True)
class StitchReport:
    """The result of :func:`stitch`: the output's format and one :class:`ClipReport` per
    clip, in cut order. ``rule`` states the conform rule that was applied."""

    output: Path
    width: int
    height: int
    frame_rate: Fraction
    num_frames: int
    clips: tuple[ClipReport, ...]
    rule: str = CONFORM_RULE
    audio_rate: int | None = None  # the cut's sound, when any clip has some
    audio_samples: int = 0

    @property
    def duration_seconds(self) -> float:
        return float(self.num_frames / self.frame_rate)

    def as_json(self) -> dict[str, object]:
        return {
            "output": str(self.output),
            "size": [self.width, self.height],
            "frame_rate": str(self.frame_rate),
            "num_frames": self.num_frames,
            "duration_seconds": self.duration_seconds,
            "rule": self.rule,
            "audio_rate": self.audio_rate,
            "audio_samples": self.audio_samples,
            "clips": [clip.as_json() for clip in self.clips],
        }


def stitch(
    clips: Sequence[StrPath], out_mp4: StrPath, *, settings: EncodeSettings | None = None
) -> StitchReport:
    """Cut ``clips`` together in order into ``out_mp4`` (H.264, yuv420p), conforming each
    to the first clip's size and rate (see the module docstring). The output is
    byte-identical for the same inputs and settings, and written atomically."""
    if not clips:
        raise MediaError("stitch needs at least one clip")
    paths = [require_file(clip) for clip in clips]
    width, height, rate = _target_format(paths[0])
    sounds = [audio_info(path) for path in paths]
    audio_rate = next((sound.sample_rate for sound in sounds if sound is not None), None)
    reports: list[ClipReport] = []
    with VideoWriter(out_mp4, width, height, rate, settings, audio_rate) as writer:
        for path, sound in zip(paths, sounds, strict=True):
            report = _append_clip(writer, path)
            if audio_rate is not None:
                _append_sound(writer, path if sound is not None else None, audio_rate)
            reports.append(replace(report, sound=sound))
        audio_samples = writer.audio_samples
    return StitchReport(
        output=Path(out_mp4),
        width=width,
        height=height,
        frame_rate=rate,
        num_frames=writer.frames_written,
        clips=tuple(reports),
        audio_rate=audio_rate,
        audio_samples=audio_samples,
    )


def _append_sound(writer: VideoWriter, path: Path | None, rate: int) -> None:
    """The clip's sound (silence without ``path``), cut or padded to end where its
    pictures end on the cut's timeline."""
    end = math.floor(Fraction(writer.frames_written) / writer.rate * rate)
    samples = end - writer.audio_samples
    pcm = read_audio(path, rate) if path is not None else None
    writer.write_audio((pcm or Pcm(rate)).fitted(samples))


def _target_format(first: Path) -> tuple[int, int, Fraction]:
    with open_video(first) as (_, stream):
        ctx = stream.codec_context
        width, height = ctx.width // 2 * 2, ctx.height // 2 * 2
        if width == 0 or height == 0:
            raise MediaError(f"{first} has no usable frame size ({ctx.width}x{ctx.height})")
        return width, height, stream_rate(stream, first)


def _append_clip(writer: VideoWriter, path: Path) -> ClipReport:
    size = (writer.width, writer.height)
    convert = FrameConverter(PIX_FMT, size)
    with open_video(path) as (container, stream):
        rate = stream_rate(stream, path)
        src_w, src_h = stream.codec_context.width, stream.codec_context.height
        frames_in = 0
        before = writer.frames_written
        for frame, repeat in _retime(decode_checked(container, stream, path), rate, writer.rate):
            frames_in += 1
            src_w, src_h = frame.width, frame.height
            if repeat:
                writer.write(convert(frame), repeat)
    if frames_in == 0:
        raise MediaError(f"{path} has no video frames", hint="re-render or re-export it")
    return ClipReport(
        path=path,
        width=src_w,
        height=src_h,
        frame_rate=rate,
        frames_in=frames_in,
        frames_out=writer.frames_written - before,
        placement=fit_inside(src_w, src_h, *size),
    )


def _retime(
    frames: Iterator[VideoFrame], src_rate: Fraction, out_rate: Fraction
) -> Iterator[tuple[VideoFrame, int]]:
    """Yield each source frame with how many output ticks show it (0 drops it).

    Tick ``k`` (at ``k / out_rate`` seconds) shows the frame nearest in time, so a frame
    owns the ticks up to the midpoint between its timestamp and the next frame's. One
    frame of look-ahead is all this needs, so it streams.
    """
    held: VideoFrame | None = None
    held_time = Fraction(0)
    first_pts: int | None = None
    ticks = 0  # output frames emitted so far for this clip
    for index, frame in enumerate(frames):
        if held is None:
            first_pts = frame.pts
            held = frame
            continue
        time = relative_time(frame, first_pts, index, src_rate)
        if time <= held_time:
            # A repeated or backwards timestamp carries no new instant: skip the frame.
            yield frame, 0
            continue
        midpoint = (held_time + time) / 2
        owned = math.floor(midpoint * out_rate) + 1 - ticks  # ticks at or before the midpoint
        yield held, max(owned, 0)
        ticks += max(owned, 0)
        held, held_time = frame, time
    if held is not None:
        end = held_time + frame_period(held, src_rate)
        yield held, max(math.ceil(end * out_rate) - ticks, 0)
