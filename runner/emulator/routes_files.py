"""Storage routes: the upload token, raw and multipart uploads, and serving files.

On fal these live on two hosts (``rest.fal.ai`` for the token, the CDN for the bytes); the
emulator serves both from its one origin and hands that origin out as the token's
``base_url``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from runner.emulator import protocol
from runner.emulator.core import Emulator
from runner.emulator.files import MultipartError
from runner.emulator.routes_queue import lifecycle_ttl


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


async def token(request: Request) -> Response:
    emulator = _emulator(request)
    imposed = await emulator.intercept("token")
    if imposed is not None:
        return imposed
    denied = protocol.unauthorized(request, emulator.config)
    if denied is not None:
        return denied
    return JSONResponse(emulator.files.issue_token(protocol.origin(request)))


async def _upload_guard(request: Request) -> Response | None:
    emulator = _emulator(request)
    imposed = await emulator.intercept("upload")
    if imposed is not None:
        return imposed
    if not emulator.files.token_valid(request.headers.get("authorization")):
        return protocol.detail(401, "Invalid or expired upload token")
    return None


def _content_type(request: Request) -> str:
    return request.headers.get("content-type") or "application/octet-stream"


async def upload(request: Request) -> Response:
    refused = await _upload_guard(request)
    if refused is not None:
        return refused
    files = _emulator(request).files
    stored = files.create(
        request.headers.get("x-fal-file-name"), _content_type(request), lifecycle_ttl(request)
    )
    stored = await files.receive(stored, request.stream())
    return JSONResponse({"access_url": protocol.origin(request) + stored.url_path})


async def start_multipart(request: Request) -> Response:
    refused = await _upload_guard(request)
    if refused is not None:
        return refused
    stored, upload_id = _emulator(request).files.start_multipart(
        request.headers.get("x-fal-file-name"), _content_type(request), lifecycle_ttl(request)
    )
    access_url = protocol.origin(request) + stored.url_path
    return JSONResponse({"access_url": access_url, "uploadId": upload_id})


async def upload_part(request: Request) -> Response:
    refused = await _upload_guard(request)
    if refused is not None:
        return refused
    params = request.path_params
    number = params["part"]
    if not number.isdigit() or int(number) < 1:
        return protocol.detail(400, "part numbers start at 1")
    files = _emulator(request).files
    path = files.part_path(params["file_id"], params["upload_id"], int(number))
    if path is None:
        return protocol.detail(404, "No such multipart upload")
    etag = await files.receive_part(path, request.stream())
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


async def complete_multipart(request: Request) -> Response:
    refused = await _upload_guard(request)
    if refused is not None:
        return refused
    try:
        payload = await request.json()
    except ValueError:
        return protocol.detail(400, "expected a JSON body with 'parts'")
    parts = payload.get("parts") if isinstance(payload, dict) else None
    params = request.path_params
    try:
        stored = _emulator(request).files.complete_multipart(
            params["file_id"], params["upload_id"], parts if isinstance(parts, list) else []
        )
    except MultipartError as exc:
        return protocol.detail(400, str(exc))
    return JSONResponse({"access_url": protocol.origin(request) + stored.url_path})


async def serve(request: Request) -> Response:
    emulator = _emulator(request)
    imposed = await emulator.intercept("files")
    if imposed is not None:
        return imposed
    found = emulator.files.lookup(request.path_params["file_id"], request.path_params["name"])
    if found is None:
        return protocol.detail(404, "Not Found")
    stored, path = found
    # FileResponse streams from disk and sets Content-Length (and honours Range).
    return FileResponse(path, media_type=stored.content_type)
