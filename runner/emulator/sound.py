"""The sound of an LTX-2 animatic: tones derived from the seed, the same on every machine.

fal's LTX-2 endpoints return video with sound. The emulator's stand-in is a soft chord whose
notes come from the seed and change every second, so a listener hears which shot is playing
and where the cuts fall. Samples are computed in integers (a triangle wave and integer
ramps): no floating-point library call can make one machine's tones differ from another's.

Sample rate: the open LTX-2 model's vocoder makes 24 kHz stereo; fal does not document the
rate of the files it returns, so the emulator assumes that one (:data:`SAMPLE_RATE`).
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass

from runner.media.audio import Pcm

SAMPLE_RATE = 24_000
_LEVEL = 5_000  # of 32,767: a quiet tone
_FADE = 240  # samples (10 ms at 24 kHz) to fade in and out, so cuts do not click
# The notes of a pentatonic scale from A3, as periods in samples at 24 kHz (24000 / Hz).
_PERIODS = (109, 97, 87, 73, 65, 55, 49, 44, 36, 33)


@dataclass(frozen=True)
class Sound:
    """What an animatic sounds like: its seed's tones at ``rate``."""

    seed: int
    rate: int = SAMPLE_RATE


def tones(sound: Sound, samples: int, offset: int = 0) -> Pcm:
    """``samples`` of ``sound``, starting ``offset`` samples into it, faded in and out at
    both ends (a whole clip, or the section a retake makes again)."""
    digest = hashlib.sha256(f"shotgraph-tones:{sound.seed}".encode()).digest()
    left = array("h", bytes(2 * samples))
    right = array("h", bytes(2 * samples))
    for i in range(samples):
        t = offset + i
        second = t // sound.rate
        low = _PERIODS[digest[second % 16] % 5]  # a low note, left
        high = _PERIODS[5 + digest[(second + 7) % 32] % 5]  # a high note, right
        gain = min(i, samples - 1 - i, _FADE)
        left[i] = _triangle(t, low) * gain // _FADE
        right[i] = _triangle(t, high) * gain // _FADE
    data = array("h", bytes(4 * samples))
    data[0::2], data[1::2] = left, right
    return Pcm(sound.rate, data.tobytes())


def _triangle(t: int, period: int) -> int:
    """A triangle wave of ``period`` samples at sample ``t``, from -_LEVEL to _LEVEL."""
    phase = t % period
    half = period // 2
    rising = phase if phase < half else period - phase
    return (4 * _LEVEL * rising) // period - _LEVEL


def samples_at(rate: int, frames: int, fps: float) -> int:
    """The samples under the first ``frames`` frames of a clip at ``fps``: where the sound
    stands when those pictures end (so a clip's sound ends exactly with its pictures)."""
    return int(frames * rate // fps)
