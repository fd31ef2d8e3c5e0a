"""The web console: server-rendered pages for every role and the public pages (/console)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the console on the platform's application: pages under /console, files under /console/static."""
    from fastapi.staticfiles import StaticFiles

    from fanchaoxin.console import cases, public, views
    from fanchaoxin.console.i18n import HERE
    from fanchaoxin.console.web import PREFIX, install_error_pages

    app.include_router(views.router)
    app.include_router(cases.router)
    app.include_router(public.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    install_error_pages(app)
