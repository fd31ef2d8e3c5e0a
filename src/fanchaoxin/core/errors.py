"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error has a stable `type` URI, an English `title`, a Chinese `title_zh`, the HTTP `status`, a
`detail` (English, for a developer), a stable `code` with its `params` (what a person is shown is rendered
from these in their language by the console's catalogues, never from `detail`), and for bad input an
`errors` list naming every offending field, each item with its own `code` and `params` too
(`input.<pydantic type>` or `identifier.<rule>` — see :func:`item_code`). Services raise `Problem`
subclasses; the handlers here turn them, FastAPI's validation errors and bare HTTP errors into the
same shape, and `ServerErrors` answers anything else (500, or 503 while the database is away) without
dropping the client's connection.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fanchaoxin.core.identifiers import RULES, IdentifierError

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://fanchaoxin.org/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error the API reports to its caller.

    `code` names what went wrong for a person (e.g. ``entry.step_not_allowed``) and `params` the facts
    the sentence needs (codes and numbers, never words); without one, the class's own code stands
    (``not_found``, ``conflict`` …: its slug) and the reader is told the class's title and a generic
    sentence. Codes are stable: clients and the console's catalogues match on them.
    """

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"
    title_zh: str = "请求有误"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        params: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.code = code or self.class_code()
        self.params = dict(params or {})
        self.errors = [with_code(e) for e in errors] if errors else errors
        self.headers = headers or {}
        self.extra = extra

    @classmethod
    def class_code(cls) -> str:
        """The code of any problem of this class that names nothing more precise: its slug."""
        return cls.slug.replace("-", "_")

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
            "code": self.code,
            "params": self.params,
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

    @classmethod
    def on_field(
        cls,
        field: str,
        message: str,
        type_: str = "value_error",
        *,
        code: str | None = None,
        params: Mapping[str, Any] | None = None,
        where: str = "body",
    ) -> ValidationProblem:
        """A 422 naming one field: `code` and `params` name the problem for the reader (the console's
        sentences), on the problem and on its one error item alike."""
        item: dict[str, Any] = {"in": where, "field": field, "type": type_, "message": message}
        if code:
            item |= {"code": code, "params": dict(params or {})}
        given = dict(params) if params is not None else None
        return cls(f"Invalid {field}: {message}", code=code, params=given, errors=[item])


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


class InternalError(Problem):
    """A fault of ours. The answer says nothing of it; the log has the traceback."""

    status = 500
    slug = "internal"
    title = "Internal error"
    title_zh = "服务器内部错误"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        super().__init__(detail or "An unexpected error occurred; it has been logged.", **kw)


class DatabaseUnavailable(Problem):
    """The database cannot be reached or did not answer in time: retry after Retry-After seconds."""

    status = 503
    slug = "database-unavailable"
    title = "The database is unavailable; retry later"
    title_zh = "数据库暂时不可用，请稍后重试"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        super().__init__(
            detail or "The database could not be reached or did not answer in time; retry later.", **kw
        )


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


# An identifier rule's tag in an English message ("… [rule uscc.length]"), and the count it reports.
_RULE_TAG = re.compile(r"\[rule ([a-z_]+\.[a-z_]+)\]")
_GOT = re.compile(r"\(got (\d+)\)|\bgot (\d+)\b")


def item_code(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The stable code and params of one `errors` item that was written without them.

    An identifier rule (its `type`, or the ``[rule …]`` tag of its message) is ``identifier.<rule>``
    with the length it reports as ``got``; a pydantic error type is ``input.<type>``; anything else
    ``input.invalid``.
    """
    type_ = item.get("type")
    message = str(item.get("message") or "")
    rule = type_ if isinstance(type_, str) and type_ in RULES else None
    if rule is None:
        tag = _RULE_TAG.search(message)
        rule = tag.group(1) if tag and tag.group(1) in RULES else None
    if rule is not None:
        kind = rule.split(".", 1)[0]
        params: dict[str, Any] = {"type": None if kind == "type" else kind}
        got = _GOT.search(message)
        if got:
            params["got"] = int(got.group(1) or got.group(2))
        return f"identifier.{rule}", params
    if isinstance(type_, str) and re.fullmatch(r"[a-z_]+", type_):
        return f"input.{type_}", {}
    return "input.invalid", {}


def with_code(item: dict[str, Any]) -> dict[str, Any]:
    """An `errors` item with its `code` and `params` (kept when given, else :func:`item_code`)."""
    if "code" in item and "params" in item:
        return item
    code, params = item_code(item)
    return {**item, "code": item.get("code") or code, "params": item.get("params") or params}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


def pydantic_code(err: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A pydantic error's code and params: an identifier rule broken inside a validator is named as
    such (the IdentifierError is the error itself or its cause), else ``input.<type>`` with its ctx."""
    ctx = dict(err.get("ctx") or {})
    cause = ctx.get("error")
    for candidate in (cause, getattr(cause, "__cause__", None)):
        if isinstance(candidate, IdentifierError):
            return candidate.code, candidate.params
    type_ = str(err.get("type") or "invalid")
    tag = _RULE_TAG.search(str(err.get("msg") or ""))
    if tag and tag.group(1) in RULES:
        return item_code({"type": tag.group(1), "message": str(err.get("msg") or "")})
    return f"input.{type_}", {k: _jsonable(v) for k, v in ctx.items() if k != "error"}


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
        code, params = pydantic_code(err)
        errors.append(
            {"in": location, **item, "field": item["field"] or location, "code": code, "params": params}
        )
    return (MalformedBody if malformed else ValidationProblem), errors


def install_handlers(
    app: FastAPI,
    *,
    unavailable: Callable[[BaseException], bool] | None = None,
    retry_after_seconds: int | None = None,
) -> None:
    """problem+json for every error. Call it before adding other middleware: ServerErrors then sits
    innermost, so that the metrics see its 500s and 503s.

    `unavailable`: whether an exception means the database is away (503, with `retry_after_seconds`).
    """

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

    # The last resort, for an exception raised outside ServerErrors (in an outer middleware): Starlette
    # re-raises after this answer, and the server then closes the connection.
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(InternalError(), request)

    app.add_middleware(ServerErrors, unavailable=unavailable, retry_after_seconds=retry_after_seconds)


class ServerErrors:
    """Answers an exception that no handler took, so that the connection carries on.

    Starlette's ServerErrorMiddleware answers 500 too, but re-raises afterwards for the server to log,
    and uvicorn then closes the keep-alive connection: the client's next, unrelated request on it
    fails. This middleware sits inside it and re-raises nothing it has answered: 500 with the
    traceback in the log and no internals in the answer, or 503 with Retry-After when `unavailable`
    says the database is away (a fault that passes, not a bug). Only an answer already begun cannot be
    mended: that exception goes on, and the server closes the connection as it must.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        unavailable: Callable[[BaseException], bool] | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        self.app = app
        self.unavailable = unavailable
        self.retry_after_seconds = retry_after_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            if isinstance(exc, ClientDisconnect):
                return  # nobody is left to answer
            request = Request(scope)
            problem = self.problem_for(request, exc)
            await (self.page_for(request, problem) or problem_response(problem, request))(
                scope, receive, send
            )

    @staticmethod
    def page_for(request: Request, problem: Problem) -> Response | None:
        """The HTML page an app renders for this problem (`app.state.problem_page`: the console's, for
        its own paths; None elsewhere), or None for problem+json. A page that fails to render (the
        fault may be the one being reported) falls back to problem+json."""
        app = request.scope.get("app")
        render = getattr(getattr(app, "state", None), "problem_page", None)
        if render is None:
            return None
        try:
            page: Response | None = render(request, problem)
        except Exception:
            log.exception("the error page for %s failed; answering problem+json", request.url.path)
            return None
        return page

    def problem_for(self, request: Request, exc: Exception) -> Problem:
        if self.unavailable is not None and self.unavailable(exc):
            log.warning(
                "database unavailable on %s %s: %s", request.method, request.url.path, _first_line(exc)
            )
            headers = {}
            if self.retry_after_seconds is not None:
                headers["Retry-After"] = str(self.retry_after_seconds)
            return DatabaseUnavailable(headers=headers)
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return InternalError()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
