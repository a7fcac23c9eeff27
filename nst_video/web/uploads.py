"""Uploads and parameters: the file a request carries, read within a size limit, and its options, checked.

A file comes as a multipart form field (`curl -F image=@photo.jpg`) or as the raw request body
(`curl --data-binary @photo.jpg`); options come as form fields or in the query string. The size limit is
checked against Content-Length before anything is read, and counted while reading (a body without a length,
or one that lies), so an oversize upload is cut off at the limit with 413. The file is kept in an anonymous
temporary file (in memory up to 1 MB): the name the client gave is only used in messages and in the name a
download is offered under, never as a path."""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from nst_video.web.httperrors import ApiError

# Output formats of /stylize: ?format= (or the input's own) -> suffix for images.encode_image, media type.
IMAGE_FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "bmp": ".bmp", "tif": ".tif",
                 "tiff": ".tif", "gif": ".gif"}
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".bmp": "image/bmp",
               ".tif": "image/tiff", ".gif": "image/gif"}
SPOOL_BYTES = 1 << 20  # uploads up to this stay in memory


@dataclass
class Upload:
    file: BinaryIO        # at position 0
    filename: str         # as the client named it: for messages and download names only
    size: int
    params: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        self.file.close()


def megabytes(n: int) -> str:
    return f"{n / 1e6:g} MB"


async def read_upload(request: Request, fields: tuple[str, ...], limit: int, what: str) -> Upload:
    """The uploaded file (form field `fields[0]`, or one of the others, or the raw body) and the options."""
    too_large = ApiError(413, f"upload too large: the limit for {what} is {megabytes(limit)}")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad Content-Length header")
        if int(declared) > limit + 64 * 1024:  # a form's own framing and fields add a little
            raise too_large
    received = 0
    receive = request.receive

    async def counting_receive():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit + 64 * 1024:
                raise too_large
        return message

    request = Request(request.scope, counting_receive)
    params = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=4, max_fields=32, max_part_size=64 * 1024)
        except HTTPException as e:  # malformed multipart
            raise ApiError(400, f"bad multipart form: {e.detail}") from None
        upload = None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if upload is None and key in fields:
                    upload = value
                else:
                    value.file.close()
            else:
                params[key] = value
        if upload is None:
            raise ApiError(400, f"no file uploaded: send {what} as the form field '{fields[0]}' "
                                f"(curl -F {fields[0]}=@FILE)")
        size = upload.size if upload.size is not None else _size(upload.file)
        result = Upload(upload.file, upload.filename or "upload", size, params)
    else:  # the body is the file (curl --data-binary sends it as a urlencoded form: that is fine)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        try:
            async for chunk in request.stream():
                spool.write(chunk)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        result = Upload(spool, params.pop("filename", "") or "upload", received, params)
    if result.size > limit:
        result.close()
        raise too_large
    if result.size == 0:
        result.close()
        raise ApiError(400, f"the upload is empty: send {what} as the form field '{fields[0]}' (curl -F "
                            f"{fields[0]}=@FILE) or as the request body")
    result.file.seek(0)
    return result


def _size(file: BinaryIO) -> int:
    file.seek(0, 2)
    size = file.tell()
    file.seek(0)
    return size


def number(params: dict[str, str], key: str, default, low, high, kind=float):
    """A number option within [low, high] (high None: no upper bound), or 400 saying what is wanted."""
    text = params.get(key, "")
    if text.strip() == "":
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value != value or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ApiError(400, f"{key} must be {'an integer' if kind is int else 'a number'} {span}, not {text!r}")
    return value


def flag(params: dict[str, str], key: str) -> bool:
    text = params.get(key, "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise ApiError(400, f"{key} must be true or false, not {text!r}")


def image_format(params: dict[str, str], filename: str) -> str:
    """The output's suffix: ?format=, else the input's own where we write it, else PNG."""
    wanted = params.get("format", "").strip().lower().lstrip(".")
    if wanted:
        if wanted not in IMAGE_FORMATS:
            raise ApiError(400, f"format must be one of {', '.join(sorted(IMAGE_FORMATS))}, not {wanted!r}")
        return IMAGE_FORMATS[wanted]
    own = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return IMAGE_FORMATS.get(own, ".png")


def safe_stem(filename: str, fallback: str) -> str:
    """A file name's stem reduced to letters, digits, '-', '_' and '.', for offering a download."""
    stem = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:60]
    return stem or fallback


def download_name(filename: str, style: str, suffix: str, fallback: str = "image") -> str:
    """e.g. photo.jpg in the style mosaic -> photo_mosaic.jpg"""
    return f"{safe_stem(filename, fallback)}_{safe_stem(style, 'style')}{suffix}"
