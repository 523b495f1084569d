"""The emulated model app: what runs when a job leaves the queue.

Like a fal app it validates its body (fal's schema, pydantic's error shape), downloads its
inputs, renders (an animatic, in a worker process), stores the video on its CDN and answers
with the endpoint's output shape: ``{"video": File, "prompt", "seed"}`` (LTX-2's File also
says the video's width, height, fps, duration and frame count).

LTX-2 endpoints render what :func:`runner.ltx.clip.timing` says the request makes (the same
rules the plan prices by), at the size, rate and length of their input where the request
follows it, with sound when ``generate_audio`` is on (retake: by ``retake_mode``).
"""

from __future__ import annotations

import asyncio
import shutil
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageOps

from runner.emulator import failures, video_io
from runner.emulator.animatic import RenderOutcome, RenderSpec, render
from runner.emulator.files import FileStore
from runner.emulator.inputs import InputResolver, InputUnavailable
from runner.emulator.jobs import Job, JobError
from runner.emulator.sound import Sound
from runner.ltx.clip import Timing, timing
from runner.ltx.registry import Endpoint, registry
from runner.ltx.schema import input_schema, load_raw

Outcome = tuple[dict[str, Any] | None, JobError | None]
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class _Inputs:
    """A job's media, downloaded; its fields are RenderSpec's of the same names."""

    image: Path | None = None
    image_url: str | None = None
    image_loc: Loc = ()
    video: Path | None = None
    video_url: str | None = None
    video_loc: Loc = ()

    def shape(self) -> Timing | None:
        """The shape of the first input (a video, else an image), None when unreadable:
        the render then fails on it, as fal's app would."""
        try:
            if self.video is not None:
                info = video_io.probe(self.video)
                return Timing(info.frames, info.frame_rate, width=info.width, height=info.height)
            if self.image is not None:
                with Image.open(self.image) as image:
                    width, height = ImageOps.exif_transpose(image).size
                return Timing(None, None, width=width, height=height)
        except (av.FFmpegError, OSError, ValueError, IndexError):
            return None
        return None


class _Unavailable(Exception):
    def __init__(self, loc: Loc, url: str) -> None:
        super().__init__(url)
        self.loc, self.url = loc, url


def seed_for(job: Job) -> int:
    """The request's seed, or one derived from the request itself, so that a request
    without a seed still renders (and reports) the same seed every time."""
    seed = job.body.get("seed")
    if seed is not None and not isinstance(seed, bool):
        return int(float(seed)) if isinstance(seed, str) else int(seed)
    return int(job.fingerprint[:8], 16) & 0x7FFFFFFF


def validate(job: Job) -> JobError | None:
    """The app's 422 for a body that does not match the endpoint's schema, if any."""
    detail = input_schema(job.endpoint).check(job.body)
    return failures.validation(detail) if detail else None


class Model:
    """Runs jobs: inputs resolved here, renders in ``executor``, files in ``files``."""

    def __init__(
        self,
        files: FileStore,
        inputs: InputResolver,
        executor: Executor,
        scratch: Path,
        render_scale: float = 1.0,
        *,
        no_render: bool = False,
    ) -> None:
        self._files = files
        self._inputs = inputs
        self._executor = executor
        self._scratch = scratch
        self._scale = render_scale
        self._no_render = no_render
        self._tiny: bytes | None = None  # the clip every job answers with in no_render

    async def run(self, job: Job) -> Outcome:
        if job.fault is not None and job.fault.get("kind") == "fail":
            return None, failures.injected(job.fault, job.body)
        endpoint = registry().endpoint_by_id(job.endpoint)
        if endpoint is None:
            return None, failures.internal(f"unknown endpoint {job.endpoint}")
        body = input_schema(job.endpoint).with_defaults(job.body)
        job_dir = self._scratch / job.id
        try:
            # no_render: the inputs are not fetched (the tiny clip does not show them).
            if self._no_render:
                inputs = _Inputs()
            else:
                inputs = await self._resolve(endpoint.kind, body, job_dir)
            if endpoint.sound and not self._no_render:
                source = await asyncio.to_thread(inputs.shape)
                spec = _ltx2_spec(
                    endpoint, body, seed_for(job), inputs, source, self._scale, job.node
                )
            else:
                spec = _spec(endpoint, body, seed_for(job), inputs, self._scale, job.node)
            job.log(f"rendering {spec.num_frames} frames at {float(spec.frame_rate):g} fps")
            stored = self._files.create("output.mp4", "video/mp4", job.output_ttl)
            target = self._files.output_path(stored)
            loop = asyncio.get_running_loop()
            if self._no_render:
                outcome = await self._tiny_clip(target)
            else:
                outcome = await loop.run_in_executor(self._executor, render, spec, target)
        except _Unavailable as exc:
            return None, failures.download(exc.loc, exc.url)
        finally:
            # Removing the downloaded inputs and publishing the video (a rename and a
            # metadata write): in a thread, off the loop that answers every client.
            await asyncio.to_thread(shutil.rmtree, job_dir, ignore_errors=True)
        if outcome.error is not None:
            return None, failures.model(outcome.error)
        published = await asyncio.to_thread(self._files.publish, stored, target, outcome.file_size)
        job.log(
            f"rendered {outcome.width}x{outcome.height}, {outcome.file_size} bytes "
            f"in {outcome.seconds:.2f} s"
        )
        video = {
            "url": published.url_path,
            "content_type": published.content_type,
            "file_name": published.name,
            "file_size": published.size,
        }
        output = load_raw(job.endpoint, "output")
        described = output.get("$defs", {}).get("VideoFile", {}).get("properties", {})
        if "num_frames" in described:  # LTX-2's File says what the video is
            facts = {
                "width": outcome.width,
                "height": outcome.height,
                "fps": float(spec.frame_rate),
                "duration": round(spec.num_frames / float(spec.frame_rate), 6),
                "num_frames": spec.num_frames,
            }
            video.update(facts)
        values: dict[str, Any] = {"video": video, "prompt": body.get("prompt"), "seed": spec.seed}
        order = output.get("x-fal-order-properties", list(values))
        return {key: values[key] for key in order if key in values}, None

    async def _tiny_clip(self, target: Path) -> RenderOutcome:
        """The no_render answer: one tiny clip, rendered once, written for every job."""
        if self._tiny is None:
            spec = RenderSpec("t2v", "480p", "16:9", 1, 8, "no render", 0, "no render", crf=51)
            loop = asyncio.get_running_loop()
            made = await loop.run_in_executor(self._executor, render, spec, target)
            if made.error is not None:
                return made
            self._tiny = await asyncio.to_thread(target.read_bytes)
        else:
            await asyncio.to_thread(target.write_bytes, self._tiny)
        return RenderOutcome(file_size=len(self._tiny), width=1, height=1, seconds=0.0)

    async def _resolve(self, kind: str, body: dict[str, Any], job_dir: Path) -> _Inputs:
        if kind == "i2v":
            image = await self._fetch(body["image_url"], ("image_url",), job_dir)
            return _Inputs(image, body["image_url"], ("image_url",))
        if kind == "extend" and isinstance(body.get("video"), dict):  # LTX-Video 0.9.x
            url = body["video"]["video_url"]
            video = await self._fetch(url, ("video", "video_url"), job_dir)
            return _Inputs(video=video, video_url=url, video_loc=("video", "video_url"))
        if kind in ("extend", "v2v", "retake"):  # LTX-2: a top-level video_url
            url = body["video_url"]
            video = await self._fetch(url, ("video_url",), job_dir)
            image_url = body.get("image_url")
            if not isinstance(image_url, str):
                return _Inputs(video=video, video_url=url, video_loc=("video_url",))
            image = await self._fetch(image_url, ("image_url",), job_dir)
            return _Inputs(image, image_url, ("image_url",), video, url, ("video_url",))
        if kind == "multicondition":
            found: dict[str, tuple[Path, str, Loc]] = {}
            # Every listed input is fetched, so a bad URL anywhere fails as on fal; the
            # animatic uses the first image and the first video.
            for field, key in (("images", "image_url"), ("videos", "video_url")):
                for i, item in enumerate(body.get(field) or []):
                    loc: Loc = (field, i, key)
                    path = await self._fetch(item[key], loc, job_dir)
                    found.setdefault(field, (path, item[key], loc))
            none: tuple[None, None, Loc] = (None, None, ())
            first_image = found.get("images") or none
            first_video = found.get("videos") or none
            return _Inputs(*first_image, *first_video)
        return _Inputs()

    async def _fetch(self, url: str, loc: Loc, job_dir: Path) -> Path:
        try:
            return await self._inputs.resolve(url, job_dir)
        except InputUnavailable as exc:
            raise _Unavailable(loc, url) from exc


def _spec(
    endpoint: Endpoint,
    body: dict[str, Any],
    seed: int,
    inputs: _Inputs,
    scale: float,
    node: str | None,
) -> RenderSpec:
    assumed = endpoint.assumed_output or {}
    kind = endpoint.kind
    if kind == "multicondition" and inputs.image is None:
        # Only a reference video: its last frame stands in for the missing keyframe.
        kind = "extend" if inputs.video is not None else "t2v"
    return RenderSpec(
        kind=kind,
        resolution=body.get("resolution"),
        aspect_ratio=body.get("aspect_ratio"),
        num_frames=int(body.get("num_frames") or assumed.get("num_frames", 121)),
        frame_rate=int(body.get("frame_rate") or assumed.get("frame_rate", 24)),
        prompt=str(body.get("prompt") or ""),
        seed=seed,
        label=f"animatic · {endpoint.kind} · seed {seed}",
        reverse=_flag(body.get("reverse_video")),
        **asdict(inputs),
        scale=scale,
        node=node,
    )


def _ltx2_spec(
    endpoint: Endpoint,
    body: dict[str, Any],
    seed: int,
    inputs: _Inputs,
    source: Timing | None,
    scale: float,
    node: str | None,
) -> RenderSpec:
    clip = timing(endpoint, body, source)
    width, height = clip.size or (source.size if source and source.size else (1920, 1080))
    kind = endpoint.kind
    if kind == "v2v" and inputs.image is not None:
        kind = "multicondition"  # the image, moving as the input clip moves
    section, mode = None, str(body.get("retake_mode", ""))
    if kind == "retake":
        section = (float(body.get("start_time", 0)), float(body.get("duration", 0)))
    audible = kind == "retake" or _flag(body.get("generate_audio", True))
    return RenderSpec(
        kind=kind,
        resolution=None,
        aspect_ratio=None,
        num_frames=clip.num_frames or 1,
        frame_rate=Fraction(clip.frame_rate or 25).limit_denominator(1001),
        prompt=str(body.get("prompt") or ""),
        seed=seed,
        label=f"animatic · {endpoint.kind} · seed {seed}",
        **asdict(inputs),
        size=(width - width % 2, height - height % 2),  # yuv420p
        sound=Sound(seed) if audible else None,
        section=section,
        retake_video=mode != "replace_audio",
        retake_audio=mode != "replace_video",
        scale=scale,
        node=node,
    )


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.lower() in {"true", "t", "yes", "y", "on", "1"}
    return bool(value)
