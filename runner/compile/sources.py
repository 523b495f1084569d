"""Media inputs of nodes: resolving references to files, checking them, hashing their content.

A local file is identified by the sha256 of its bytes, never its path or timestamp: moving a
keyframe reruns nothing, changing its pixels reruns the shots that use it. Local files obey
the confinement rule of :mod:`runner.pipeline.confine` (a pipeline from a pull request must
not upload ~/.ssh to fal).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.errors import Diagnostics, KeyPath
from runner.hashing import Hasher, sha256_file
from runner.pipeline.confine import Refused, confine
from runner.pipeline.records import (
    Conditioning,
    FileRef,
    KeyframeRef,
    MotionRef,
    NodeRef,
    Pipeline,
    UrlRef,
    a,
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".webm", ".mkv"})


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file of the project, by content."""

    path: Path
    sha256: str
    size: int

    @property
    def placeholder(self) -> str:
        return f"sha256:{self.sha256}"


@dataclass(frozen=True, slots=True)
class Upstream:
    """The output of another node, known once that node has run."""

    node: str

    @property
    def placeholder(self) -> str:
        return f"node:{self.node}"


@dataclass(frozen=True, slots=True)
class Remote:
    """A URL given in the pipeline; passed to fal as is."""

    url: str

    @property
    def placeholder(self) -> str:
        return self.url


MediaSource = LocalFile | Upstream | Remote


class SourceResolver:
    """Resolves node inputs of one pipeline, hashing each file once (with ``hash_file``: the
    store's, which remembers hashes between runs, when there is a store)."""

    def __init__(
        self, pipeline: Pipeline, diags: Diagnostics, hash_file: Hasher = sha256_file
    ) -> None:
        self.pipeline = pipeline
        self.diags = diags
        self.hash_file = hash_file
        self._files: dict[Path, LocalFile | None] = {}
        self._reported: set[tuple[str, str]] = set()
        self._checked: dict[tuple[str, str], LocalFile | None] = {}

    def resolve(self, conditioning: Conditioning) -> MediaSource | None:
        ref = conditioning.ref
        where = conditioning.key_path
        if isinstance(ref, NodeRef):
            return Upstream(ref.node)
        if isinstance(ref, UrlRef):
            return Remote(ref.url)
        if isinstance(ref, KeyframeRef):
            return self._keyframe(ref, conditioning, where)
        if isinstance(ref, MotionRef):
            return self._motion(ref, where)
        return self.local(ref.path, conditioning.expects, where)

    def _keyframe(
        self, ref: KeyframeRef, conditioning: Conditioning, where: KeyPath
    ) -> MediaSource | None:
        character = self.pipeline.characters.get(ref.character)
        if character is None:
            if ("characters", ref.character) not in self.pipeline.broken:
                known = ", ".join(sorted(self.pipeline.characters)) or "none defined"
                self.diags.error(
                    "ref-unknown-character",
                    f"no character '{ref.character}'",
                    self.pipeline.source.locate(where),
                    f"known characters: {known}",
                )
            return None
        target = character.keyframes.get(ref.pose)
        if target is None:
            known = ", ".join(f"{ref.character}.{p}" for p in sorted(character.keyframes))
            self.diags.error(
                "ref-unknown-keyframe",
                f"no keyframe '{ref.character}.{ref.pose}'",
                self.pipeline.source.locate(where),
                f"known: {known or 'this character has no keyframes'}",
            )
            return None
        if isinstance(target, UrlRef):
            return Remote(target.url)
        assert isinstance(target, FileRef)
        file_at = ("characters", ref.character, "keyframes", ref.pose)
        return self.local(target.path, "image", file_at)

    def _motion(self, ref: MotionRef, where: KeyPath) -> MediaSource | None:
        target = self.pipeline.motions.get(ref.name)
        if target is None:
            if ("motions", ref.name) not in self.pipeline.broken:
                known = ", ".join(sorted(self.pipeline.motions)) or "none defined"
                self.diags.error(
                    "ref-unknown-motion",
                    f"no motion clip '{ref.name}'",
                    self.pipeline.source.locate(where),
                    f"known motions: {known}",
                )
            return None
        if isinstance(target, UrlRef):
            return Remote(target.url)
        assert isinstance(target, FileRef)
        return self.local(target.path, "video", ("motions", ref.name))

    def local(self, written: str, expects: str, where: KeyPath) -> LocalFile | None:
        """A project file, checked and hashed once; a problem is reported at its first use."""
        memo = (written, expects)
        if memo in self._checked:
            return self._checked[memo]
        found = self._local(written, expects, where)
        self._checked[memo] = found
        return found

    def _local(self, written: str, expects: str, where: KeyPath) -> LocalFile | None:
        try:
            path = confine(self.pipeline.project, written, self.pipeline.base_dir)
        except Refused as refused:
            self._report((written, expects), refused.code, refused.message, where, refused.hint)
            return None
        report_key = (str(path), expects)
        suffixes = IMAGE_SUFFIXES if expects == "image" else VIDEO_SUFFIXES
        if path.suffix.lower() not in suffixes:
            self._report(
                report_key,
                "file-type",
                f"'{written}' is not {a(expects)} file ({path.suffix or 'no extension'})",
                where,
                f"{expects} files end in {', '.join(sorted(suffixes))}",
            )
            return None
        if path not in self._files:
            self._files[path] = self._hash(path)
        found = self._files[path]
        if found is None:
            self._report(
                report_key,
                "file-missing",
                f"file not found: {written}",
                where,
                f"looked for {path}",
            )
        return found

    def _hash(self, path: Path) -> LocalFile | None:
        try:
            digest, size = self.hash_file(path)
        except OSError:
            return None
        return LocalFile(path, digest, size)

    def _report(
        self, key: tuple[str, str], code: str, message: str, where: KeyPath, hint: str
    ) -> None:
        if key not in self._reported:
            self._reported.add(key)
            self.diags.error(code, message, self.pipeline.source.locate(where), hint)
