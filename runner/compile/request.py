"""How a generation node becomes its endpoint's exact request body.

Parameters are layered (fal default < preset < pipeline defaults < node) and then every field
of the endpoint's schema is written out explicitly, so a change of fal's defaults never
changes a render silently. Media inputs go where each endpoint wants them: ``image_url`` for
image-to-video, a ``video`` object for extend, ``images`` / ``videos`` lists for
multicondition. The body is then checked against the endpoint's schema, and each error is
reported at the pipeline key it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.compile.sources import MediaSource
from runner.compile.steps import JsonPath, Slot
from runner.errors import Diagnostics, KeyPath, Location
from runner.ltx.registry import FORBIDDEN_PARAMS, Endpoint
from runner.ltx.schema import FieldError, ObjectSchema
from runner.pipeline.presets import Setting
from runner.pipeline.records import Conditioning, Lora, Node, Pipeline


def check_node_params(
    node: Node, endpoint: Endpoint, pipeline: Pipeline, diags: Diagnostics
) -> bool:
    """Parameters written on the node itself must be ones its endpoint takes."""
    ok = True
    schema = endpoint.schema
    for key in node.params:
        if schema.field(key) is not None:
            continue
        ok = False
        where = pipeline.source.locate((*node.key_path, key), key=True)
        if key in FORBIDDEN_PARAMS:
            diags.error(
                "forbidden-param", f"'{key}' is not an LTX parameter", where, FORBIDDEN_PARAMS[key]
            )
        else:
            diags.error(
                "param-unsupported",
                f"'{key}' is not a parameter of {endpoint.id} ({endpoint.family})",
                where,
                f"this endpoint takes: {', '.join(schema.names)}",
            )
    for conditioning in node.inputs:
        nested = _nested_schema(node.kind, conditioning, schema)
        if nested is None:
            continue
        for key in conditioning.options:
            if nested.field(key) is None:
                ok = False
                where = pipeline.source.locate((*conditioning.key_path, key), key=True)
                diags.error(
                    "param-unsupported",
                    f"'{key}' is not an option of this input on {endpoint.id}",
                    where,
                    f"options here: {', '.join(n for n in nested.names if 'url' not in n)}",
                )
    return ok


def _nested_schema(
    kind: str, conditioning: Conditioning, schema: ObjectSchema
) -> ObjectSchema | None:
    if kind == "extend":
        field = schema.field("video")
        return field.model if field else None
    if kind == "multicondition":
        field = schema.field("images" if conditioning.expects == "image" else "videos")
        return field.items if field else None
    return None


def assemble(
    node: Node,
    endpoint: Endpoint,
    settings: Mapping[str, Setting],
    prompt: str,
    negative_prompt: str | None,
    loras: tuple[Lora, ...],
    seed: int,
    sources: list[MediaSource],
) -> tuple[dict[str, Any], tuple[Slot, ...]]:
    """The request body as the pipeline sets it (before fal's defaults are written out) and
    where its media inputs are."""
    schema = endpoint.schema
    body: dict[str, Any] = {"prompt": prompt}
    for key, setting in settings.items():
        if schema.field(key) is not None:
            body[key] = setting.value
    if negative_prompt is not None:
        body["negative_prompt"] = negative_prompt
    if schema.field("loras") is not None:
        body["loras"] = [lora.request() for lora in loras]
    body["seed"] = seed
    slots: list[Slot] = []
    images: list[dict[str, Any]] = []
    videos: list[dict[str, Any]] = []
    for conditioning, source in zip(node.inputs, sources, strict=True):
        item = {**conditioning.options}
        pointer: JsonPath
        if node.kind == "i2v":
            body["image_url"] = source.placeholder
            pointer = ("image_url",)
        elif node.kind == "extend":
            body["video"] = {**item, "video_url": source.placeholder}
            pointer = ("video", "video_url")
        elif conditioning.expects == "image":
            pointer = ("images", len(images), "image_url")
            images.append({"image_url": source.placeholder, **item})
        else:
            pointer = ("videos", len(videos), "video_url")
            videos.append({"video_url": source.placeholder, **item})
        slots.append(Slot(pointer, source))
    if node.kind == "multicondition":
        body["images"] = images
        body["videos"] = videos
    return body, tuple(slots)


def report_schema_errors(
    errors: list[FieldError],
    node: Node,
    endpoint: Endpoint,
    settings: Mapping[str, Setting],
    pipeline: Pipeline,
    diags: Diagnostics,
) -> None:
    """fal-style errors of a compiled body, reported where the offending value was written."""
    for error in errors:
        loc = [part for part in error["loc"] if part != "body"]
        where = locate_field(loc, node, settings, pipeline)
        shown = ".".join(str(p) for p in loc)
        field = endpoint.schema.field(str(loc[0])) if loc else None
        hint = _range_hint(field.ge if field else None, field.le if field else None)
        diags.error("endpoint-schema", f"{shown}: {error['msg']} (on {endpoint.id})", where, hint)


def locate_field(
    loc: list[Any], node: Node, settings: Mapping[str, Setting], pipeline: Pipeline
) -> Location:
    """Where in the pipeline the request field at ``loc`` (fal's 422 ``loc`` without "body")
    was written: the node, its preset or the pipeline defaults."""
    if not loc:
        return pipeline.source.locate(node.key_path)
    head = str(loc[0])
    if len(loc) == 1 and head in settings:
        return settings[head].location
    if head in ("video", "images", "videos"):
        inputs = [
            c
            for c in node.inputs
            if node.kind == "extend" or c.expects == ("image" if head == "images" else "video")
        ]
        index = loc[1] if head != "video" and len(loc) > 1 and isinstance(loc[1], int) else 0
        if index < len(inputs):
            rest: KeyPath = tuple(loc[2:] if head != "video" else loc[1:])
            return pipeline.source.locate((*inputs[index].key_path, *rest))
    return pipeline.source.locate((*node.key_path, head))


def _range_hint(low: float | None, high: float | None) -> str | None:
    if low is None and high is None:
        return None
    shown_low = "..." if low is None else f"{low:g}"
    shown_high = "..." if high is None else f"{high:g}"
    return f"this endpoint accepts {shown_low} to {shown_high}"
