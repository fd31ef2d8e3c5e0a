"""Rendering, security headers, cookies and HTML error pages of the console."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from fanchaoxin.console import labels, problems
from fanchaoxin.console.auth import (
    ANON_COOKIE,
    LANG_COOKIE,
    ConsolePrincipal,
    SignInRequired,
    csrf_token,
    load_principal,
    session_token,
)
from fanchaoxin.console.i18n import HERE, HTML_LANG, N_, negotiate, translator
from fanchaoxin.core import permissions
from fanchaoxin.core.errors import _BY_STATUS, Problem, _validation_errors
from fanchaoxin.core.identifiers import mask_person_name
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.subjects.service import is_personal

PREFIX = "/console"
log = logging.getLogger(__name__)
env = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _map_rows(rows: list[dict[str, Any]], label_key: str) -> list[dict[str, Any]]:
    """Statistics rows as chart points: [{"name": label in the page's language, "value": count}]."""
    return [{"name": r.get(label_key) or r["key"], "value": r["count"]} for r in rows]


env.filters["map_rows"] = _map_rows

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# Who sees which part of the navigation: the role sets of core.permissions.
REVIEWERS = permissions.REVIEWERS
PLATFORM = permissions.PLATFORM


def locale_of(request: Request) -> str:
    return negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def nav_for(principal: Any) -> list[tuple[str, str]]:
    """(href, label msgid) of the navigation for a role."""
    if not isinstance(principal, ConsolePrincipal):
        return [
            (f"{PREFIX}/public", N_("Blacklist query")),
            (f"{PREFIX}/public/guide/repair", N_("Credit repair")),  # #17: 信用修复 and 异议 guides
            (f"{PREFIX}/public/guide/objection", N_("Objections")),
            (f"{PREFIX}/public/stats", N_("Statistics")),
            (f"{PREFIX}/public/corrections", N_("Correction notices")),
            (f"{PREFIX}/public/commitments", N_("Credit commitments")),
            (f"{PREFIX}/public/report", N_("Report credit hyping")),
            (f"{PREFIX}/public/progress", N_("Check progress")),
            (f"{PREFIX}/public/access", N_("Who looked me up")),
            (f"{PREFIX}/login", N_("Staff sign-in")),
        ]
    role = principal.role
    items: list[tuple[str, str]] = [(f"{PREFIX}/", N_("Dashboard"))]
    if role in REVIEWERS:
        items.append((f"{PREFIX}/review", N_("Review queue")))
    items.append((f"{PREFIX}/entries", N_("Entries")))
    # #22, taking part: the agreement and the rulebook (an enterprise's own; the platform's overviews)
    if role in PLATFORM:
        items.append((f"{PREFIX}/orgs", N_("Organisations")))
        items.append((f"{PREFIX}/agreements", N_("Sharing agreement")))
        items.append((f"{PREFIX}/rulebooks", N_("Rulebooks")))
    elif role == Role.department_officer:
        items.append((f"{PREFIX}/org", N_("Our department")))
    else:
        items.append((f"{PREFIX}/org", N_("Our organisation")))
        items.append((f"{PREFIX}/agreement", N_("Sharing agreement")))
        items.append((f"{PREFIX}/orgs/{principal.org_id}/rulebook", N_("Rulebook")))
    if role in permissions.CASE_ADDRESSEES:
        items.append((f"{PREFIX}/workbench", N_("Instruction workbench")))
    if role in REVIEWERS or role in permissions.CASE_ADDRESSEES:
        items.append((f"{PREFIX}/objections", N_("Objections")))
        items.append((f"{PREFIX}/reports", N_("Reports")))
    if role in REVIEWERS:
        items.append((f"{PREFIX}/repairs", N_("Credit repair")))
    items.append((f"{PREFIX}/consultation", N_("Consultation")))  # #22: every participant
    if role in permissions.STATS_MEASURE_READERS:  # #22: coordination figures (an enterprise: its own row)
        items.append((f"{PREFIX}/coordination", N_("Coordination")))
    items.append((f"{PREFIX}/policy", N_("Policy")))
    if role in permissions.AUDIT_READERS:
        items.append((f"{PREFIX}/audit", N_("Audit log")))
    if role in permissions.KEY_MANAGERS:
        items.append((f"{PREFIX}/keys", N_("API keys")))
    return items


def _fmt_dt(value: datetime | date | None, with_time: bool = True) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        local = value.astimezone(ZoneInfo(get_settings().timezone_display))
        return local.strftime("%Y-%m-%d %H:%M") if with_time else local.strftime("%Y-%m-%d")
    return value.isoformat()


def context_for(request: Request, **ctx: Any) -> dict[str, Any]:
    locale = locale_of(request)
    _ = translator(locale)

    def label(kind: str, code: str | None) -> str:
        """A code in the page's language: catalogue vocabularies from the catalogue (console.labels)."""
        return labels.label(kind, code, locale)

    def item(kind: str, code: str) -> str:
        """A catalogue item (behaviour, severity, subject kind) in the page's language."""
        return labels.label(kind, code, locale)

    def subject_name(subject: Any) -> str:
        """A natural person's name is masked wherever it is listed (revealed only on request, audited)."""
        return mask_person_name(subject.name) if is_personal(subject.kind) else subject.name

    principal = getattr(request.state, "principal", None)
    path = request.url.path
    query = request.url.query
    # A public query may hold a personal identifier: it is not carried into other links.
    here = path + ("?" + query if query and not path.startswith(PREFIX + "/public") else "")
    return {
        "request": request,
        "_": _,
        "locale": locale,
        "html_lang": HTML_LANG[locale],
        "principal": principal if isinstance(principal, ConsolePrincipal) else None,
        "csrf_token": csrf_token(request),
        "nav": nav_for(principal),
        "path": path,
        "here_q": quote(here, safe=""),
        "label": label,
        "item": item,
        "actor": lambda name: labels.actor(name, locale),  # who acted, in words (system:jobs → 系统)
        "subject_name": subject_name,
        "fmt_dt": _fmt_dt,
        "fmt_date": lambda v: _fmt_dt(v, with_time=False),
        "static": lambda p: f"{PREFIX}/static/{p}",
        "json_script": json_script,
        **ctx,
    }


def json_script(value: Any) -> Markup:
    """JSON safe inside <script type="application/json"> (no '</script>' can close it)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def secure_headers(request: Request, response: Response, *, private: bool = True) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if private:
        response.headers["Cache-Control"] = "no-store"
    new_anon = getattr(request.state, "new_anon", None)
    if new_anon and not request.cookies.get(ANON_COOKIE):
        set_cookie(request, response, ANON_COOKIE, new_anon, max_age=30 * 24 * 3600)
    return response


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def render(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    html = env.get_template(template).render(context_for(request, **ctx))
    return secure_headers(request, HTMLResponse(html, status_code=status_code))  # type: ignore[return-value]


def redirect(request: Request, url: str) -> RedirectResponse:
    return secure_headers(request, RedirectResponse(url, status_code=303))  # type: ignore[return-value]


def safe_next(value: str | None) -> str:
    """Only a path inside the console (no open redirect)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX + "/"


def _is_console(request: Request) -> bool:
    path = request.url.path
    return (path == PREFIX or path.startswith(PREFIX + "/")) and not path.startswith(PREFIX + "/static/")


def _known_principal(request: Request) -> None:
    """Who is signed in, for an error raised before any page's access rule ran (an unknown path): the
    page then shows their navigation and leads back to their start page, not the public one."""
    if hasattr(request.state, "principal") or not session_token(request):
        return
    try:
        with request.app.state.db.session() as session:
            request.state.principal = load_principal(request, session)
    except Exception:  # the error page must not fail on it (the database may be what failed)
        log.warning("no principal for the error page of %s", request.url.path, exc_info=True)


def install_error_pages(app: FastAPI) -> None:
    """HTML errors under /console; the API keeps its problem+json handlers for everything else.

    The page says what went wrong in the reader's language (console.problems): the problem's title and
    sentence, and each field it names in words — never its English `detail`, a field path or a rule tag.
    """
    api_problem = app.exception_handlers.get(Problem)
    api_http = app.exception_handlers.get(StarletteHTTPException)
    api_validation = app.exception_handlers.get(RequestValidationError)

    def problem_page(request: Request, problem: Problem) -> Response:
        if isinstance(problem, SignInRequired) and request.method == "GET":
            here = request.url.path + ("?" + request.url.query if request.url.query else "")
            return redirect(request, f"{PREFIX}/login?next={quote(here, safe='')}")
        _known_principal(request)
        text = problems.describe(problem, locale_of(request))
        response = render(
            request,
            "error.html",
            status_code=problem.status,
            problem=problem,
            text=text,
            title=text.title,
        )
        for k, v in problem.headers.items():
            response.headers[k] = v
        return response

    async def on_problem(request: Request, exc: Exception) -> Response:
        if _is_console(request) and isinstance(exc, Problem):
            return problem_page(request, exc)
        assert api_problem is not None
        return await api_problem(request, exc)  # type: ignore[no-any-return, misc]

    async def on_http(request: Request, exc: Exception) -> Response:
        if _is_console(request) and isinstance(exc, StarletteHTTPException):
            cls = _BY_STATUS.get(exc.status_code) or Problem
            problem = cls(str(exc.detail) if exc.detail else None, headers=dict(exc.headers or {}))
            return problem_page(request, problem)
        assert api_http is not None
        return await api_http(request, exc)  # type: ignore[no-any-return, misc]

    async def on_validation(request: Request, exc: Exception) -> Response:
        if _is_console(request) and isinstance(exc, RequestValidationError):
            cls, errors = _validation_errors(exc)
            fields = ", ".join(e["field"] for e in errors)
            return problem_page(request, cls(f"Invalid fields: {fields}", errors=errors))
        assert api_validation is not None
        return await api_validation(request, exc)  # type: ignore[no-any-return, misc]

    def server_error_page(request: Request, problem: Problem) -> Response | None:
        # core.errors.ServerErrors asks for it: a 500 or 503 on a console page is a page too.
        return problem_page(request, problem) if _is_console(request) else None

    app.state.problem_page = server_error_page
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
