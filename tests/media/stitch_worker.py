"""A second process for the stitch determinism tests: stitches the clips it is given and
prints the SHA-256 of each cut, one per line.

    python tests/media/stitch_worker.py [--no-simd] TIMES OUT_DIR CLIP...

``--no-simd`` first turns off FFmpeg's SIMD code (``av_force_cpu_flags(0)``) and x264's
assembly: the process then computes what a machine without any SIMD would. Run it with
``MALLOC_PERTURB_`` in its environment to fill every fresh heap block with junk.
"""

from __future__ import annotations

import ctypes
import hashlib
import sys
from pathlib import Path

import av

from runner.media import encode, stitch


def bundled_libavutil() -> Path | None:
    """The libavutil PyAV loaded, when it ships its own (the wheels do)."""
    libs = Path(av.__file__).resolve().parent.parent / "av.libs"
    found = sorted(libs.glob("libavutil*.so*")) if libs.is_dir() else []
    return found[0] if found else None


def without_simd() -> None:
    library = bundled_libavutil()
    if library is None:
        raise SystemExit("no bundled libavutil to switch SIMD off in")
    ctypes.CDLL(str(library)).av_force_cpu_flags(0)
    encode.X264_PARAMS += ":asm=0"


def main(argv: list[str]) -> None:
    if argv[0] == "--no-simd":
        without_simd()
        argv = argv[1:]
    times, out_dir, clips = int(argv[0]), Path(argv[1]), argv[2:]
    for i in range(times):
        out = out_dir / f"cut{i}.mp4"
        stitch(clips, out)
        print(hashlib.sha256(out.read_bytes()).hexdigest(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
