"""Errors the API answers with: a message for the user and the HTTP status that fits, sent as JSON
({"error": message, "status": code}). NstError from a job maps to 400, or to 413 / 415 for its kinds."""
from __future__ import annotations

from nst_video.errors import InputTooLarge, NstError, UnsupportedInput


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def busy(what: str, retry_after: int) -> ApiError:
    """503: the queue for this work is full; come back in `retry_after` seconds."""
    return ApiError(503, f"busy: {what}; try again in {retry_after} s", {"Retry-After": str(retry_after)})


def from_job_error(error: NstError) -> ApiError:
    if isinstance(error, InputTooLarge):
        return ApiError(413, str(error))
    if isinstance(error, UnsupportedInput):
        return ApiError(415, str(error))
    return ApiError(400, str(error))
