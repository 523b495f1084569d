"""Sound through runner.media: written as deterministic FLAC, probed, read back exactly,
carried across the cuts of a stitch (silence for silent clips), ignored by ``frame``."""

from __future__ import annotations

import math
from array import array
from fractions import Fraction
from hashlib import sha256
from pathlib import Path

from PIL import Image

from runner.media import EncodeSettings, VideoWriter, extract_frame, probe, stitch
from runner.media.audio import Pcm, read_audio

QUICK = EncodeSettings(crf=18, preset="ultrafast", threads=1)


def tone(rate: int, samples: int, hertz: float, level: float = 0.3) -> Pcm:
    """A sine, the same in both channels."""
    data = array("h", bytes(4 * samples))
    wave = array(
        "h",
        (round(level * 32767 * math.sin(2 * math.pi * hertz * i / rate)) for i in range(samples)),
    )
    data[0::2] = data[1::2] = wave
    return Pcm(rate, data.tobytes())


def clip(
    path: Path,
    frames: int,
    fps: int,
    size: tuple[int, int] = (64, 36),
    audio_rate: int | None = None,
    hertz: float = 440.0,
) -> Path:
    """A clip whose frame i is grey level 8*i, with a tone as long as its pictures."""
    with VideoWriter(path, *size, fps, QUICK, audio_rate) as writer:
        for i in range(frames):
            writer.write(Image.new("RGB", size, (8 * i % 256,) * 3))
        if audio_rate is not None:
            writer.write_audio(tone(audio_rate, frames * audio_rate // fps, hertz))
    return path


def rms(pcm: Pcm, start: int, stop: int) -> float:
    """The left channel's level between two samples, 0 to 1."""
    samples = array("h")
    samples.frombytes(pcm.data[start * 4 : stop * 4])
    left = samples[0::2]
    return math.sqrt(sum(x * x for x in left) / max(1, len(left))) / 32767


def test_a_writer_with_an_audio_rate_adds_aac_read_back_exactly(tmp_path: Path) -> None:
    first = clip(tmp_path / "a.mp4", 25, 25, audio_rate=24000)
    again = clip(tmp_path / "b.mp4", 25, 25, audio_rate=24000)
    assert sha256(first.read_bytes()).digest() == sha256(again.read_bytes()).digest()
    info = probe(first)
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("flac", 24000, 2)
    assert info.audio.duration_seconds == 1.0
    pcm = read_audio(first)
    assert pcm is not None and (pcm.rate, pcm.samples) == (24000, 24000)
    assert pcm.data == tone(24000, 24000, 440.0).data  # lossless
    doubled = read_audio(first, 48000)
    assert doubled is not None and doubled.samples == 48000


def test_a_silent_video_has_no_audio(tmp_path: Path) -> None:
    silent = clip(tmp_path / "silent.mp4", 5, 25)
    assert probe(silent).audio is None
    assert read_audio(silent) is None


def test_stitch_carries_sound_across_cuts_silence_for_silent_clips(tmp_path: Path) -> None:
    talking = clip(tmp_path / "a.mp4", 25, 25, audio_rate=24000)  # 1 s
    silent = clip(tmp_path / "b.mp4", 6, 12, size=(48, 48))  # 0.5 s, retimed and letterboxed
    other = clip(tmp_path / "c.mp4", 30, 30, audio_rate=48000, hertz=220)  # 1 s at 48 kHz
    out = tmp_path / "cut.mp4"
    report = stitch([talking, silent, other], out)
    assert (report.num_frames, report.audio_rate) == (25 + 13 + 25, 24000)
    assert [c.sound is not None for c in report.clips] == [True, False, True]
    info = probe(out, count_frames=True)
    assert info.audio is not None and info.audio.sample_rate == 24000
    video_seconds = info.num_frames / 25 if info.num_frames else 0.0
    assert info.audio.duration_seconds is not None
    assert abs(info.audio.duration_seconds - video_seconds) <= 1 / 25
    pcm = read_audio(out)
    assert pcm is not None and pcm.samples == report.audio_samples == 63 * 24000 // 25
    # The sound of each clip lies under its own pictures: tone, silence, tone. (AAC smears
    # a few ms across each cut, so the regions are measured away from the cuts.)
    first_cut, second_cut = 24000, 24000 + 13 * 960
    assert rms(pcm, 1000, first_cut - 1000) > 0.15
    assert rms(pcm, first_cut + 1000, second_cut - 1000) < 0.01
    assert rms(pcm, second_cut + 1000, pcm.samples - 1000) > 0.15


def test_stitch_of_silent_clips_has_no_sound(tmp_path: Path) -> None:
    out = tmp_path / "cut.mp4"
    report = stitch([clip(tmp_path / "a.mp4", 5, 25), clip(tmp_path / "b.mp4", 5, 25)], out)
    assert report.audio_rate is None and probe(out).audio is None


def test_stitch_with_sound_is_deterministic(tmp_path: Path) -> None:
    clips = [
        clip(tmp_path / "a.mp4", 10, 25, audio_rate=24000),
        clip(tmp_path / "b.mp4", 10, 25),
        clip(tmp_path / "c.mp4", 9, 24, audio_rate=44100),
    ]
    stitch(clips, tmp_path / "one.mp4")
    stitch(clips, tmp_path / "two.mp4")
    assert (tmp_path / "one.mp4").read_bytes() == (tmp_path / "two.mp4").read_bytes()


def test_frame_ignores_the_sound(tmp_path: Path) -> None:
    with_sound = clip(tmp_path / "a.mp4", 12, 24, audio_rate=24000)
    without = clip(tmp_path / "b.mp4", 12, 24)
    info = extract_frame(with_sound, tmp_path / "a.png", "last")
    extract_frame(without, tmp_path / "b.png", "last")
    assert (info.width, info.height) == (64, 36)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert probe(with_sound).frame_rate == Fraction(24)
