"""Local media operations: probing files, extracting a frame, stitching clips, sound.

These back the pipeline's local media nodes (``frame`` and ``stitch``) and the checks the
executor makes on inputs and outputs. All functions are synchronous and keep no global
state, so the executor can run them in worker threads. Outputs are deterministic (the same
inputs give byte-identical files) and written atomically (a temporary file beside the
destination, then ``os.replace``). Every failure is a :class:`MediaError`, a
:class:`~runner.errors.ShotgraphError` with a hint.
"""

from __future__ import annotations

from runner.errors import MediaError
from runner.frame_at import FIRST, LAST, FrameAt, FrameSpec, parse_frame_at
from runner.media.audio import AudioInfo, Pcm, audio_facts, audio_info, read_audio
from runner.media.convert import Placement, fit_inside
from runner.media.encode import EncodeSettings, VideoWriter
from runner.media.frame import extract_frame
from runner.media.probe import MediaInfo, MediaKind, probe
from runner.media.stitch import CONFORM_RULE, ClipReport, StitchReport, stitch

__all__ = [
    "CONFORM_RULE",
    "FIRST",
    "LAST",
    "AudioInfo",
    "ClipReport",
    "EncodeSettings",
    "FrameAt",
    "FrameSpec",
    "MediaError",
    "MediaInfo",
    "MediaKind",
    "Pcm",
    "Placement",
    "StitchReport",
    "VideoWriter",
    "audio_facts",
    "audio_info",
    "extract_frame",
    "fit_inside",
    "parse_frame_at",
    "probe",
    "read_audio",
    "stitch",
]
