"""Language switch, sign-in (password or API key, rate-limited per address) and sign-out."""

from __future__ import annotations

from fastapi import Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.appeals.ratelimit import TokenBuckets
from fanchaoxin.console import auth, problems
from fanchaoxin.console.auth import CONSOLE_ROLES, LANG_COOKIE, SESSION_COOKIE, page, public_page
from fanchaoxin.console.common import console_router
from fanchaoxin.console.i18n import LOCALES
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render, safe_next, set_cookie
from fanchaoxin.core import audit
from fanchaoxin.core.auth import DB, InvalidKey, Principal
from fanchaoxin.core.errors import NotFound, Problem, TooManyRequests, ValidationProblem
from fanchaoxin.core.settings import get_settings

router = console_router()

_LOGIN_BUCKETS = "console_login_buckets"


@router.get("/lang/{locale}")
def switch_language(
    request: Request, locale: str, next: str | None = None, _: Principal = public_page()
) -> Response:
    if locale not in LOCALES:
        raise NotFound(f"No language {locale!r}; one of {', '.join(LOCALES)}", code="not_found")
    response = redirect(request, safe_next(next))
    set_cookie(request, response, LANG_COOKIE, locale, max_age=365 * 24 * 3600)
    return response


def _login_limit(request: Request) -> None:
    s = get_settings()
    buckets = getattr(request.app.state, _LOGIN_BUCKETS, None)
    if buckets is None:
        buckets = TokenBuckets(s.console_login_attempts, s.console_login_window_seconds)
        setattr(request.app.state, _LOGIN_BUCKETS, buckets)
    address = request.client.host if request.client else "unknown"
    wait = buckets.take(f"login:{address}")
    if wait > 0:
        seconds = max(1, int(wait) + 1)
        raise TooManyRequests(
            f"Too many sign-in attempts; try again in {seconds} seconds",
            code="too_many_requests.retry",
            params={"seconds": seconds},
            headers={"Retry-After": str(seconds)},
        )


@router.get("/login")
def login_form(request: Request, next: str | None = None, _: Principal = public_page()) -> Response:
    return render(request, "login.html", next=safe_next(next), error=None, method="password", username="")


@router.post("/login")
def login(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    method: str = Form("password"),
    username: str = Form(""),
    password: str = Form(""),
    api_key: str = Form(""),
    next: str = Form(""),
) -> Response:
    _login_limit(request)
    try:
        if method == "api_key":
            if not api_key.strip():
                raise ValidationProblem(
                    "api_key: required",
                    code="signin.api_key_required",
                    errors=[{"field": "api_key", "type": "missing", "message": "required"}],
                )
            key = auth.sign_in_key(session, api_key)
            cookie = auth.open_session(request, session, key=key)
        else:
            user = auth.sign_in_password(session, username, password)
            cookie = auth.open_session(request, session, user=user)
    except Problem as exc:
        # A failed attempt is audited for password users: keep that row, nothing else was written.
        session.commit()
        if isinstance(exc, InvalidKey):
            # Unknown, revoked or expired alike: the reason is the audit log's, never the page's.
            exc.code = "signin.invalid_key"
        text = problems.describe(exc, locale_of(request))
        return render(
            request,
            "login.html",
            status_code=exc.status,
            next=safe_next(next),
            error=text,
            method=method,
            username=username if method != "api_key" else "",
        )
    response = redirect(request, safe_next(next))
    set_cookie(request, response, SESSION_COOKIE, cookie, max_age=get_settings().console_session_hours * 3600)
    return response


@router.post("/logout")
def logout(request: Request, session: Session = DB, principal: Principal = page(*CONSOLE_ROLES)) -> Response:
    auth.end_session(request, session)
    audit.record(session, principal.actor, "console.sign_out", "console_session", "-")
    response = redirect(request, f"{PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response
