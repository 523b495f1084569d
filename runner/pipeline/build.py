"""Checked dicts become frozen records here, and only here.

The JSON Schema has already checked types and keys; what is left is what a schema cannot say
well: exactly one kind of reference, the form of ``keyframe: character.pose``, a prompt that
is either a template or inline, a frame position.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.errors import Diagnostics, KeyPath, MediaError
from runner.frame_at import FrameAt, parse_frame_at
from runner.pipeline.records import (
    Character,
    Conditioning,
    Defaults,
    FileRef,
    KeyframeRef,
    Lora,
    MediaType,
    MotionRef,
    Node,
    NodeRef,
    PromptSpec,
    Ref,
    Take,
    UrlRef,
    a,
)
from runner.pipeline.sourcemap import SourceMap

REF_KEYS = ("from", "keyframe", "motion", "file", "url")
# An hour of 4-second shots; each clip costs time and memory to check, so a pipeline from a
# pull request cannot list a million of them.
MAX_CLIPS = 1_000
STRUCTURAL_KEYS = frozenset(
    {
        "kind",
        "description",
        "model",
        "preset",
        "prompt",
        "negative_prompt",
        "seed",
        "character",
        "loras",
        "image",
        "video",
        "images",
        "videos",
        "at",
        "clips",
        "takes",
        "gate",
    }
)
MAX_TAKES = 16  # each take is a paid render
# What a take may set besides fal parameters (its `description` is for people only).
TAKE_KEYS = frozenset({"seed", "prompt", "negative_prompt", "description"})


class Builder:
    """Builds records from one schema-checked document, reporting what is still wrong."""

    def __init__(self, source: SourceMap, diags: Diagnostics) -> None:
        self.source = source
        self.diags = diags

    def error(self, path: KeyPath, code: str, message: str, hint: str | None = None) -> None:
        self.diags.error(code, message, self.source.locate(path), hint)

    # -- references -------------------------------------------------------------------------

    def ref(self, value: Any, expects: MediaType, path: KeyPath) -> Ref | None:
        if not isinstance(value, Mapping):
            return None
        given = [k for k in REF_KEYS if k in value]
        allowed = (
            ("from", "keyframe", "file", "url")
            if expects == "image"
            else ("from", "motion", "file", "url")
        )
        example = (
            "{from: node}, {keyframe: character.pose}"
            if expects == "image"
            else ("{from: node}, {motion: name}")
        )
        if len(given) != 1:
            what = "no source" if not given else f"{len(given)} sources ({', '.join(given)})"
            self.error(
                path,
                "ref-form",
                f"a reference needs exactly one source, found {what}",
                f"use one of {', '.join(allowed)}, e.g. {example}, {{file: path}}",
            )
            return None
        key = given[0]
        text = value[key]
        if key not in allowed:
            self.error(
                (*path, key),
                "ref-type",
                f"'{key}' gives {a('video' if key == 'motion' else 'image')}, "
                f"but {a(expects)} is needed here",
                f"use one of {', '.join(allowed)}",
            )
            return None
        if key == "from":
            return NodeRef(text)
        if key == "keyframe":
            character, dot, pose = text.partition(".")
            if not dot or not character or not pose:
                self.error(
                    (*path, key),
                    "ref-keyframe",
                    f"keyframe reference '{text}' is not of the form character.pose",
                    "for example: mara.three_quarter",
                )
                return None
            return KeyframeRef(character, pose)
        if key == "motion":
            return MotionRef(text)
        if key == "url":
            if not text.startswith(("https://", "http://", "data:")):
                self.error(
                    (*path, key),
                    "ref-url",
                    f"'{text}' is not an http(s) or data: URL",
                    "use {file: path} for a local file",
                )
                return None
            return UrlRef(text)
        return FileRef(text)

    def conditioning(self, value: Any, expects: MediaType, path: KeyPath) -> Conditioning | None:
        ref = self.ref(value, expects, path)
        if ref is None:
            return None
        options = {k: v for k, v in value.items() if k not in REF_KEYS}
        return Conditioning(ref, expects, path, options)

    def media_path(self, value: Any, path: KeyPath) -> Ref:
        """A keyframe or motion clip given as a plain string: a file path or a URL."""
        text = str(value)
        return UrlRef(text) if text.startswith(("https://", "http://")) else FileRef(text)

    # -- prompts, loras, positions ----------------------------------------------------------

    def prompt(self, value: Any, path: KeyPath) -> PromptSpec | None:
        if value is None:
            return None
        if isinstance(value, str):
            return PromptSpec(path, text=value)
        if not isinstance(value, Mapping):
            return None  # the schema has said what a prompt may be
        given = [k for k in ("template", "inline") if k in value]
        if len(given) != 1:
            self.error(
                path,
                "prompt-form",
                "a prompt object needs exactly one of 'template' or 'inline'",
                "e.g. {template: shot.j2, vars: {...}}, or write the prompt as text",
            )
            return None
        return PromptSpec(
            path,
            template=value.get("template"),
            inline=value.get("inline"),
            vars=dict(value.get("vars", {})),
        )

    def loras(self, value: Any) -> tuple[Lora, ...]:
        return tuple(
            Lora(item["path"], item.get("scale"), item.get("weight_name"), item.get("role"))
            for item in value or ()
        )

    def frame_at(self, value: Any, path: KeyPath) -> FrameAt | None:
        try:
            return parse_frame_at(value)
        except MediaError as exc:
            self.error(path, "frame-at", exc.message, exc.hint)
            return None

    # -- records ------------------------------------------------------------------------------

    def character(self, name: str, spec: Mapping[str, Any], path: KeyPath) -> Character:
        keyframes = {
            pose: self.media_path(file, (*path, "keyframes", pose))
            for pose, file in spec.get("keyframes", {}).items()
        }
        return Character(
            name,
            spec.get("description", ""),
            keyframes,
            self.loras(spec.get("loras")),
            dict(spec.get("vars", {})),
        )

    def motion(self, spec: Any, path: KeyPath) -> Ref | None:
        if isinstance(spec, str):
            return self.media_path(spec, path)
        given = [k for k in ("file", "url") if k in spec]
        if len(given) != 1:
            self.error(
                path,
                "motion-form",
                "a motion needs exactly one of 'file' or 'url'",
                "e.g. orbit: assets/motion/orbit.mp4",
            )
            return None
        return FileRef(spec["file"]) if given == ["file"] else UrlRef(spec["url"])

    def defaults(self, spec: Mapping[str, Any], path: KeyPath) -> Defaults:
        params = {k: v for k, v in spec.items() if k not in ("preset", "negative_prompt", "loras")}
        return Defaults(
            spec.get("preset"),
            self.prompt(spec.get("negative_prompt"), (*path, "negative_prompt")),
            self.loras(spec.get("loras")),
            params,
        )

    def node(self, name: str, spec: Mapping[str, Any], path: KeyPath) -> Node | None:
        kind = spec["kind"]
        inputs = self._inputs(kind, spec, path)
        if inputs is None:
            return None
        at = None
        if kind == "frame":
            at = self.frame_at(spec["at"], (*path, "at"))
            if at is None:
                return None
        return Node(
            name=name,
            kind=kind,
            key_path=path,
            description=spec.get("description", ""),
            # Only a name: the schema has said what else is wrong with it.
            model=spec["model"] if isinstance(spec.get("model"), str) else None,
            preset=spec.get("preset"),
            prompt=self.prompt(spec.get("prompt"), (*path, "prompt")),
            negative_prompt=self.prompt(spec.get("negative_prompt"), (*path, "negative_prompt")),
            seed=spec.get("seed"),
            character=spec.get("character"),
            loras=self.loras(spec.get("loras")),
            params={k: v for k, v in spec.items() if k not in STRUCTURAL_KEYS},
            inputs=inputs,
            at=at,
            takes=self.takes(spec.get("takes"), (*path, "takes")),
            gate=bool(spec.get("gate", False)),
        )

    def takes(self, value: Any, path: KeyPath) -> tuple[Take, ...]:
        """``takes: N`` (N takes differing only by seed) or a list of what each take changes."""
        count = value if isinstance(value, int) else len(value or ())
        if value is not None and not 1 <= count <= MAX_TAKES:
            self.error(
                path,
                "takes-count",
                f"{count} takes (a node renders 1 to {MAX_TAKES})",
                "render a few takes, pick one, then try more if none is right",
            )
            return ()
        if isinstance(value, int):
            return tuple(Take(path) for _ in range(value))
        return tuple(
            Take(
                (*path, i),
                seed=item.get("seed"),
                prompt=self.prompt(item.get("prompt"), (*path, i, "prompt")),
                negative_prompt=self.prompt(
                    item.get("negative_prompt"), (*path, i, "negative_prompt")
                ),
                params={k: v for k, v in item.items() if k not in TAKE_KEYS},
            )
            for i, item in enumerate(value or ())
        )

    def _inputs(
        self, kind: str, spec: Mapping[str, Any], path: KeyPath
    ) -> tuple[Conditioning, ...] | None:
        wanted: list[tuple[Any, MediaType, KeyPath]] = []
        needed = {"i2v": "image", "extend": "video", "frame": "video", "retake": "video"}
        key = needed.get(kind, "video" if kind == "v2v" else None)
        if key is not None and key not in spec:
            # The schema says so too, when it could check the node: never a KeyError here.
            article = "an" if kind[0] in "aeiou" else "a"
            self.error(path, "missing-input", f"{article} {kind} node needs '{key}'")
            return None
        if kind == "i2v":
            wanted.append((spec["image"], "image", (*path, "image")))
        elif kind in ("extend", "frame", "retake", "v2v"):
            wanted.append((spec["video"], "video", (*path, "video")))
            if kind == "v2v" and "image" in spec:  # the first frame, optional
                wanted.append((spec["image"], "image", (*path, "image")))
        elif kind == "multicondition":
            pairs: tuple[tuple[str, str, MediaType], ...] = (
                ("image", "images", "image"),
                ("video", "videos", "video"),
            )
            for single, many, media in pairs:
                if single in spec and many in spec:
                    self.error(
                        (*path, single),
                        "multicondition-form",
                        f"use either '{single}' or '{many}', not both",
                        f"'{single}: ...' is a shorthand for a one-item '{many}'",
                    )
                    return None
                if single in spec:
                    wanted.append((spec[single], media, (*path, single)))
                for i, item in enumerate(spec.get(many, [])):
                    wanted.append((item, media, (*path, many, i)))
            if not wanted:
                self.error(
                    path,
                    "multicondition-inputs",
                    "a multicondition shot needs an image or a video to condition on",
                    "add image: {keyframe: character.pose} and video: {motion: name}",
                )
                return None
        elif kind == "stitch":
            if len(spec["clips"]) > MAX_CLIPS:
                self.error(
                    (*path, "clips"),
                    "stitch-clips",
                    f"a stitch of {len(spec['clips']):,} clips (at most {MAX_CLIPS:,})",
                    "stitch parts of the cut first, then stitch the parts",
                )
                return None
            for i, clip in enumerate(spec["clips"]):
                item = {"from": clip} if isinstance(clip, str) else clip
                wanted.append((item, "video", (*path, "clips", i)))
        built = [self.conditioning(value, media, where) for value, media, where in wanted]
        if any(c is None for c in built):
            return None
        return tuple(c for c in built if c is not None)
