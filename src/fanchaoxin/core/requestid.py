"""The request id (请求标识) of every HTTP request: ``X-Request-ID`` in, the same id out, on every line.

A well-formed incoming id (a proxy's or a caller's: letters, digits, ``._:-``, at most 64 characters) is
kept, so that an id given at the edge is the one the platform, its outbox and the enterprise node log;
anything else is replaced by a new one. The id lives in a context variable for the request
(``core.logs.current_request_id``): sync routes in Starlette's thread pool and ``asyncio.to_thread``
copies see it, the change feed stores it with each event it writes, and the response carries it back.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fanchaoxin.core.logs import (
    REQUEST_ID_HEADER,
    enter_request,
    leave_request,
    new_request_id,
    well_formed_request_id,
)

_HEADER = REQUEST_ID_HEADER.lower().encode("ascii")


class RequestIdMiddleware:
    """Outermost middleware: the id is set before anything else logs, and every answer (a 413, a 500
    included) says it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == _HEADER:
                incoming = value.decode("latin-1")
                break
        rid = incoming if well_formed_request_id(incoming) else new_request_id()
        header = (_HEADER, rid.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = enter_request(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            leave_request(token)
