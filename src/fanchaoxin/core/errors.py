"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error has a stable `type` URI, an English `title`, a Chinese `title_zh`, the HTTP `status`, a
`detail`, and for bad input an `errors` list naming every offending field. Services raise `Problem`
subclasses; the handlers here turn them, FastAPI's validation errors and bare HTTP errors into the
same shape.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://fanchaoxin.org/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error the API reports to its caller."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"
    title_zh: str = "请求有误"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "title_zh": self.title_zh,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class ValidationProblem(Problem):
    status = 422
    slug = "validation"
    title = "Invalid input"
    title_zh = "输入无效"


class MalformedBody(Problem):
    status = 400
    slug = "malformed-body"
    title = "Malformed request body"
    title_zh = "请求体格式错误"


class Unauthenticated(Problem):
    status = 401
    slug = "unauthenticated"
    title = "Missing, unknown, expired or revoked API key"
    title_zh = "缺少或无效的访问密钥"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="fanchaoxin"'})
        super().__init__(detail, **kw)


class Forbidden(Problem):
    status = 403
    slug = "forbidden"
    title = "Your role may not do this"
    title_zh = "无此操作权限"


class NotFound(Problem):
    """Also what another tenant's object looks like, so that its existence does not leak."""

    status = 404
    slug = "not-found"
    title = "Not found"
    title_zh = "未找到"


class Conflict(Problem):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"
    title_zh = "与当前状态冲突"


class PayloadTooLarge(Problem):
    status = 413
    slug = "payload-too-large"
    title = "Request body too large"
    title_zh = "请求体过大"


class UnsupportedMediaType(Problem):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"
    title_zh = "不支持的媒体类型"


class TooManyRequests(Problem):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"
    title_zh = "请求过于频繁"


_BY_STATUS: dict[int, type[Problem]] = {
    400: MalformedBody,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: TooManyRequests,
}


class _MethodNotAllowed(Problem):
    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"
    title_zh = "不允许的请求方法"


_BY_STATUS[405] = _MethodNotAllowed


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """`("body", "items", 3, "uscc")` → `items[3].uscc`; the `body`/`query` prefix is kept apart."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_FIELD_PREFIX = re.compile(
    r"^(?:Value error, )?((?:[A-Za-z_]\w*|\[\d+\])(?:\[\d+\]|\.[A-Za-z_]\w*)*): (.*)$", re.S
)


def pydantic_error(loc: tuple[Any, ...] | list[Any], message: str, type_: str | None) -> dict[str, Any]:
    """One validation error as `{field, message, type}`.

    A model-level check names the field it is about by starting its message with `field: …`
    (e.g. "document_number: required for basis judicial_decision"); that field is appended to the
    location so the caller is told exactly which field is wrong.
    """
    field = field_path(loc)
    m = _FIELD_PREFIX.match(message)
    if m:
        sub = m.group(1)
        field = (field + sub if sub.startswith("[") else f"{field}.{sub}") if field else sub
        message = m.group(2)
    elif message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return {"field": field, "message": message, "type": type_}


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = str(request.url.path) if request is not None else None
    return JSONResponse(
        problem.to_dict(instance),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def _validation_errors(exc: RequestValidationError) -> tuple[type[Problem], list[dict[str, Any]]]:
    errors: list[dict[str, Any]] = []
    malformed = False
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        location = loc[0] if loc else "body"
        if err.get("type") == "json_invalid":
            malformed = True
        item = pydantic_error(loc[1:], str(err.get("msg", "")), err.get("type"))
        errors.append({"in": location, **item, "field": item["field"] or location})
    return (MalformedBody if malformed else ValidationProblem), errors


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        cls, errors = _validation_errors(exc)
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(cls(f"Invalid fields: {fields}", errors=errors), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = _BY_STATUS.get(exc.status_code)
        if cls is None:
            cls = type(
                "HTTPProblem", (Problem,), {"status": exc.status_code, "slug": f"http-{exc.status_code}"}
            )
        problem = cls(str(exc.detail) if exc.detail else None, headers=dict(exc.headers or {}))
        return problem_response(problem, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        internal = type(
            "InternalError",
            (Problem,),
            {"status": 500, "slug": "internal", "title": "Internal error", "title_zh": "服务器内部错误"},
        )
        return problem_response(internal("An unexpected error occurred; it has been logged."), request)
