"""The node's HTTP client for the platform's sharing API (docs/sharing.md), with its API key.

Every call carries ``X-Request-ID``, the id the node runs under at the time (a request to the node, a
sync, a status report: ``core.logs.current_request_id``), so that the platform's lines of the call name
the same id as the node's (#23)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import httpx

from fanchaoxin.core.logs import REQUEST_ID_HEADER, current_request_id
from fanchaoxin.sharing import protocol as P

USER_AGENT = "fcx-node/1"


class PlatformUnavailable(RuntimeError):
    """The platform could not be reached or answered 5xx: keep the last verified copy and retry later."""


class PlatformRefused(RuntimeError):
    """The platform answered 4xx. ``status``, ``problem`` (its problem+json body) and ``retry_after``."""

    def __init__(self, status: int, problem: dict[str, Any], retry_after: float | None = None) -> None:
        self.status = status
        self.problem = problem
        self.retry_after = retry_after
        detail = problem.get("detail") or problem.get("title") or ""
        super().__init__(f"platform answered {status}: {detail}")


def _object(response: httpx.Response) -> dict[str, Any]:
    """A 2xx answer's JSON object; anything else means the platform is not itself: retry, as on a 5xx."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        request = response.request
        raise PlatformUnavailable(
            f"platform answered {response.status_code} on {request.method} {request.url.path} "
            "without a JSON object"
        )
    return body


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


EVALUATE = "/v1/sharing/evaluate"


def _evaluate_args(blinded_b64: list[str], key_id: str | None, timeout: float | None) -> dict[str, Any]:
    body: dict[str, Any] = {"blinded": blinded_b64}
    if key_id is not None:
        body["key_id"] = key_id
    return {"json": body} if timeout is None else {"json": body, "timeout": timeout}


class PlatformClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"X-API-Key": api_key, "User-Agent": USER_AGENT}
        self._timeout = timeout
        self.http = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=timeout)
        # The serving node's live evaluations run on its event loop (node.live.LiveBatcher), in its own
        # users' requests: an aiohttp session there (made in that loop at its first call) costs a call
        # well under a millisecond of CPU where httpx's async client took about three.
        self._async: aiohttp.ClientSession | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    def close(self) -> None:
        self.http.close()

    async def aclose(self) -> None:
        if self._async is not None and self._async_loop is asyncio.get_running_loop():
            await self._async.close()
        self._async = None

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        request_id = current_request_id()
        if request_id is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), REQUEST_ID_HEADER: request_id}
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise PlatformUnavailable(f"platform at {self.base_url} unreachable: {exc}") from exc
        return self._checked(response, method, url)

    async def arequest(
        self, method: str, url: str, *, json: Any = None, timeout: float | None = None
    ) -> httpx.Response:
        """:meth:`request` on the caller's event loop; the answer as an ``httpx.Response``, so that both
        paths check it alike."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async.closed or self._async_loop is not loop:
            # a session serves the loop it was made in only (a test may run several loops in turn)
            self._async = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
            self._async_loop = loop
        limit = aiohttp.ClientTimeout(total=timeout) if timeout is not None else None
        request_id = current_request_id()
        headers = {REQUEST_ID_HEADER: request_id} if request_id is not None else None
        try:
            async with self._async.request(
                method, self.base_url + url, json=json, timeout=limit, headers=headers
            ) as r:
                content = await r.read()
                response = httpx.Response(
                    r.status,
                    headers=list(r.headers.items()),
                    content=content,
                    request=httpx.Request(method, self.base_url + url),
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformUnavailable(f"platform at {self.base_url} unreachable: {exc!r}") from exc
        return self._checked(response, method, url)

    def _checked(self, response: httpx.Response, method: str, url: str) -> httpx.Response:
        if response.status_code >= 500:
            raise PlatformUnavailable(f"platform answered {response.status_code} on {method} {url}")
        if response.status_code >= 400:
            try:
                problem = response.json()
            except (ValueError, json.JSONDecodeError):
                problem = {"detail": response.text[:500]}
            if not isinstance(problem, dict):
                problem = {"detail": str(problem)[:500]}
            raise PlatformRefused(response.status_code, problem, _retry_after(response))
        return response

    # --- sharing API ---------------------------------------------------------------------------------

    def keys(self) -> dict[str, Any]:
        return _object(self.request("GET", "/v1/sharing/keys"))

    def manifest(self) -> object:
        """The signed manifest document as received: unverified, so untyped (protocol.verify_manifest)."""
        return self.request("GET", "/v1/sharing/manifest").json()

    def get_bytes(self, url: str) -> bytes:
        return self.request("GET", url).content

    def evaluate(
        self, blinded_b64: list[str], key_id: str | None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Blinded evaluation; ``timeout`` (seconds) bounds this call alone (a live tag's decision waits
        on it), else the client's own."""
        return _object(self.request("POST", EVALUATE, **_evaluate_args(blinded_b64, key_id, timeout)))

    async def aevaluate(
        self, blinded_b64: list[str], key_id: str | None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """:meth:`evaluate` on the caller's event loop."""
        response = await self.arequest("POST", EVALUATE, **_evaluate_args(blinded_b64, key_id, timeout))
        return _object(response)

    def instruction(self, instruction_id: str, action: str, body: dict[str, Any] | None) -> httpx.Response:
        if action not in ("ack", "feedback"):
            raise ValueError(f"unknown instruction action {action!r}")
        return self.request("POST", f"/v1/instructions/{instruction_id}/{action}", json=body)

    def entry(self, entry_id: str, purpose: str) -> dict[str, Any]:
        """Need to know: one shared entry's details (audited on the platform with the purpose)."""
        headers = {P.PURPOSE_HEADER: P.encode_purpose(purpose)}
        return _object(self.request("GET", f"/v1/sharing/entries/{entry_id}", headers=headers))

    def rulebook(self) -> dict[str, Any]:
        """The enterprise's own rulebook (``GET /v1/rulebook``): which measures its rules exclude."""
        return _object(self.request("GET", "/v1/rulebook"))

    def decision_log(self, body: dict[str, Any]) -> dict[str, Any]:
        """Relay a batch of the node's decision-log records (``POST /v1/decision-log/node``)."""
        return _object(self.request("POST", "/v1/decision-log/node", json=body))
