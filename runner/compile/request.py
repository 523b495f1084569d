"""How a generation node becomes its endpoint's exact request body: the one place that knows
where each kind puts its inputs (:func:`input_place`) and builds the body (:func:`request_body`).

Parameters are layered (fal default < preset < pipeline defaults < node) and then every field
of the endpoint's schema is written out explicitly, so a change of fal's defaults never
changes a render silently. Media inputs go where each endpoint wants them: ``image_url`` for
image-to-video, a ``video`` object for LTX-Video's extend, ``images`` / ``videos`` lists for
multicondition, a top-level ``video_url`` (and ``image_url``) for LTX-2's extend,
video-to-video and retake. The seed goes in when the endpoint takes one (LTX-2 Pro, Fast and
retake take none). The body is checked against the endpoint's schema before fal's defaults
are written out, and each error is reported at the pipeline key it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.compile.sources import MediaSource
from runner.compile.steps import JsonPath, Slot
from runner.errors import Diagnostics, KeyPath, Location
from runner.ltx.registry import Endpoint
from runner.ltx.schema import FieldError, ObjectSchema
from runner.pipeline.presets import Setting
from runner.pipeline.records import Conditioning, Lora, Node, Pipeline


@dataclass(frozen=True, slots=True)
class InputPlace:
    """Where a media input goes in a request: in a top-level field (``container`` None), in an
    object (extend's ``video``) or in an item of a list (multicondition's ``images``)."""

    container: str | None
    listed: bool
    url_field: str


_IMAGE_URL = InputPlace(None, False, "image_url")
_VIDEO_URL = InputPlace(None, False, "video_url")

# Each kind's body layout, by what an input is: the only place it is written.
_LAYOUT: dict[str, dict[str, InputPlace]] = {
    "i2v": {"image": _IMAGE_URL},
    # LTX-Video 0.9.x: the clip in a `video` object, with its conditioning options.
    "extend": {"video": InputPlace("video", False, "video_url")},
    "multicondition": {
        "image": InputPlace("images", True, "image_url"),
        "video": InputPlace("videos", True, "video_url"),
    },
    # LTX-2: media at the top level; how they condition are parameters of the request
    # (video_strength, image_strength, start_time, ...).
    "v2v": {"video": _VIDEO_URL, "image": _IMAGE_URL},
    "retake": {"video": _VIDEO_URL},
}
# LTX-2 19B's extend-video takes the clip as a top-level `video_url`, not a `video` object.
_FLAT_EXTEND = {"video": _VIDEO_URL}


def layout(kind: str, schema: ObjectSchema) -> Mapping[str, InputPlace]:
    """Where each input of a ``kind`` node goes on an endpoint with ``schema``."""
    if kind == "extend" and schema.field("video") is None:
        return _FLAT_EXTEND
    return _LAYOUT.get(kind, {})


def input_place(kind: str, expects: str, schema: ObjectSchema) -> InputPlace:
    """Where an input of a ``kind`` node that ``expects`` an image or a video goes."""
    return layout(kind, schema)[expects]


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
        if key in endpoint.forbidden:
            diags.error(
                "forbidden-param",
                f"'{key}' is not a parameter of {endpoint.id}",
                where,
                endpoint.forbidden[key],
            )
        else:
            diags.error(
                "param-unsupported",
                f"'{key}' is not a parameter of {endpoint.id} ({endpoint.family})",
                where,
                f"this endpoint takes: {', '.join(schema.names)}",
            )
    for conditioning in node.inputs:
        place = input_place(node.kind, conditioning.expects, schema)
        if place.container is None:
            ok = _no_options(conditioning, place, endpoint, pipeline, diags) and ok
            continue
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


def _no_options(
    conditioning: Conditioning,
    place: InputPlace,
    endpoint: Endpoint,
    pipeline: Pipeline,
    diags: Diagnostics,
) -> bool:
    """An input that becomes a bare URL takes no options: they are the node's parameters."""
    for key in conditioning.options:
        where = pipeline.source.locate((*conditioning.key_path, key), key=True)
        diags.error(
            "param-unsupported",
            f"'{key}' is not an option of this input on {endpoint.id}: it takes only "
            f"{place.url_field}",
            where,
            "set how the input conditions the shot on the node itself (for example "
            "video_strength, image_strength, num_context_frames)",
        )
    return not conditioning.options


def _nested_schema(
    kind: str, conditioning: Conditioning, schema: ObjectSchema
) -> ObjectSchema | None:
    place = input_place(kind, conditioning.expects, schema)
    field = schema.field(place.container) if place.container is not None else None
    if field is None:
        return None
    return field.items if place.listed else field.model


def request_body(
    node: Node,
    endpoint: Endpoint,
    settings: Mapping[str, Setting],
    text: tuple[str, str | None],
    loras: tuple[Lora, ...],
    seed: int,
    sources: list[MediaSource],
    pipeline: Pipeline,
    diags: Diagnostics,
) -> tuple[dict[str, Any], tuple[Slot, ...]] | None:
    """The exact request of a node and where its media inputs are in it; None (reported)
    when the endpoint's schema refuses it. ``text`` is (prompt, negative prompt)."""
    prompt, negative_prompt = text
    body, slots = assemble(node, endpoint, settings, prompt, negative_prompt, loras, seed, sources)
    # fal's own defaults need no check, so check before writing them out.
    errors = endpoint.schema.check(body)
    if errors:
        report_schema_errors(errors, node, endpoint, settings, pipeline, diags)
        return None
    return endpoint.schema.with_defaults(body), slots


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
    if endpoint.seeded:
        body["seed"] = seed
    slots: list[Slot] = []
    # A kind that lists its inputs sends every list, even an empty one.
    places = layout(node.kind, schema).values()
    listed: dict[str, list[dict[str, Any]]] = {
        place.container: [] for place in places if place.listed and place.container
    }
    body.update(listed)
    for conditioning, source in zip(node.inputs, sources, strict=True):
        place = input_place(node.kind, conditioning.expects, schema)
        url = {place.url_field: source.placeholder}
        pointer: JsonPath
        if place.container is None:
            body.update(url)
            pointer = (place.url_field,)
        elif place.listed:
            items = listed[place.container]
            pointer = (place.container, len(items), place.url_field)
            items.append({**conditioning.options, **url})
        else:
            body[place.container] = {**conditioning.options, **url}
            pointer = (place.container, place.url_field)
        slots.append(Slot(pointer, source))
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
        where = locate_field(loc, node, endpoint, settings, pipeline)
        shown = ".".join(str(p) for p in loc)
        field = endpoint.schema.field(str(loc[0])) if loc else None
        hint = _range_hint(field.ge if field else None, field.le if field else None)
        diags.error("endpoint-schema", f"{shown}: {error['msg']} (on {endpoint.id})", where, hint)


def locate_field(
    loc: list[Any],
    node: Node,
    endpoint: Endpoint,
    settings: Mapping[str, Setting],
    pipeline: Pipeline,
) -> Location:
    """Where in the pipeline the request field at ``loc`` (fal's 422 ``loc`` without "body")
    was written: the node, its preset or the pipeline defaults."""
    if not loc:
        return pipeline.source.locate(node.key_path)
    head = str(loc[0])
    if len(loc) == 1 and head in settings:
        return settings[head].location
    schema = endpoint.schema
    places = [(c, input_place(node.kind, c.expects, schema)) for c in node.inputs]
    for conditioning, place in places:
        if place.container is None and head == place.url_field:
            return pipeline.source.locate(conditioning.key_path)
    inputs = [(c, place) for c, place in places if place.container == head]
    if inputs:
        listed = inputs[0][1].listed
        index = loc[1] if listed and len(loc) > 1 and isinstance(loc[1], int) else 0
        if index < len(inputs):
            rest: KeyPath = tuple(loc[2:] if listed else loc[1:])
            return pipeline.source.locate((*inputs[index][0].key_path, *rest))
    return pipeline.source.locate((*node.key_path, head))


def _range_hint(low: float | None, high: float | None) -> str | None:
    if low is None and high is None:
        return None
    shown_low = "..." if low is None else f"{low:g}"
    shown_high = "..." if high is None else f"{high:g}"
    return f"this endpoint accepts {shown_low} to {shown_high}"
