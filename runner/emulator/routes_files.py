"""Storage routes: the upload token, raw and multipart uploads, and serving files.

On fal these live on two hosts (``rest.fal.ai`` for the token, the CDN for the bytes); the
emulator serves both from its one origin and hands that origin out as the token's
``base_url``.

Two flows, as fal's two official clients use them:

- fal-client (Python): ``POST /storage/auth/token`` for a Bearer token, then ``POST
  /files/upload`` (or ``/files/upload/multipart``, parts, ``complete``) with it;
- fal-js: ``POST /storage/upload/initiate?storage_type=fal-cdn-v3`` (or
  ``initiate-multipart``) with the API key and ``{content_type, file_name}`` answers
  ``{upload_url, file_url}``; the bytes are then ``PUT`` to ``upload_url`` with no
  credentials (a presigned URL: its unguessable upload id is the permission), or, multipart,
  to ``{upload_url}/{n}`` (answered ``{partNumber, etag}``) and ``POST {upload_url}/complete``
  with ``{"parts": [{partNumber, etag}]}``.
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


async def _keyed(request: Request, route: str) -> Response | None:
    """A route fault, or 401 without the API key (the routes on fal's REST host)."""
    emulator = _emulator(request)
    imposed = await emulator.intercept(route)
    if imposed is not None:
        return imposed
    return protocol.unauthorized(request, emulator.config)


async def token(request: Request) -> Response:
    refused = await _keyed(request, "token")
    if refused is not None:
        return refused
    return JSONResponse(_emulator(request).files.issue_token(protocol.origin(request)))


async def _upload_guard(request: Request, *, presigned: bool = False) -> Response | None:
    """A route fault, or 401 without the storage token. ``presigned``: a URL carrying the
    id of a pending upload (fal-js sends no credentials there; the id is the permission)."""
    emulator = _emulator(request)
    imposed = await emulator.intercept("upload")
    if imposed is not None:
        return imposed
    if presigned and request.headers.get("authorization") is None:
        return None  # the route checks the upload id
    if not emulator.files.token_valid(request.headers.get("authorization")):
        return protocol.detail(401, "Invalid or expired upload token")
    return None


async def initiate(request: Request) -> Response:
    """fal-js's upload: a pending file and the URLs to put its bytes to and read it from
    (``initiate`` and ``initiate-multipart`` answer alike)."""
    refused = await _keyed(request, "upload")
    if refused is not None:
        return refused
    emulator = _emulator(request)
    try:
        payload = await request.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return protocol.detail(422, "expected a JSON body with content_type and file_name")
    content_type = payload.get("content_type") or "application/octet-stream"
    name = payload.get("file_name")
    stored, upload_id = emulator.files.start_multipart(
        name if isinstance(name, str) else None, str(content_type), lifecycle_ttl(request)
    )
    file_url = protocol.origin(request) + stored.url_path
    return JSONResponse({"upload_url": f"{file_url}/multipart/{upload_id}", "file_url": file_url})


async def put_upload(request: Request) -> Response:
    """The one ``PUT`` of fal-js's single upload, to the ``upload_url`` it was given."""
    refused = await _upload_guard(request, presigned=True)
    if refused is not None:
        return refused
    params = request.path_params
    files = _emulator(request).files
    path = files.part_path(params["file_id"], params["upload_id"], 1)
    if path is None:
        return protocol.detail(404, "No such upload")
    etag = await files.receive_part(path, request.stream())
    try:
        files.complete_multipart(
            params["file_id"], params["upload_id"], [{"partNumber": 1, "etag": etag}]
        )
    except MultipartError as exc:
        return protocol.detail(400, str(exc))
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


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
    refused = await _upload_guard(request, presigned=True)
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
    # fal-client reads the ETag header, fal-js the JSON body.
    return JSONResponse(
        {"partNumber": int(number), "etag": f'"{etag}"'}, headers={"ETag": f'"{etag}"'}
    )


async def complete_multipart(request: Request) -> Response:
    refused = await _upload_guard(request, presigned=True)
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
