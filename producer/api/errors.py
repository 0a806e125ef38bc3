"""API errors: one exception type, answered as JSON that says what is wrong and where."""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import JSONResponse

CODES = {
    400: "malformed_request",
    401: "unauthorised",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    502: "upstream_error",
    503: "not_configured",
}


class ApiError(Exception):
    """An answer other than success; `field` names the offending input (`backfill.from`, `streamers[3]`)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.code = code  # instead of the status's usual code (CODES)

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.message!r}, field={self.field!r})"


def invalid(field: str, message: str) -> ApiError:
    """A 422 about one field; the message says why it is wrong and names the value."""
    return ApiError(422, f"{field}: {message}", field=field)


def error_response(
    status: int,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> JSONResponse:
    code = code or CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    body: dict[str, object] = {"error": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


def to_response(exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.message, field=exc.field, headers=exc.headers, code=exc.code)
