"""`fcx node serve`: the enterprise node's HTTP API.

* ``POST /v1/decisions`` — the platform's request (``protocol.DecisionRequest``) and response shape, answered
  from the node's in-memory index with no I/O per request, plus ``feed_seq``, ``feed_age_seconds`` and
  ``not_enrolled``; 503 before the first verified sync.
* ``GET /healthz`` (the process is up), ``GET /readyz`` (feed age and platform reachability; 503 before the
  first verified sync — afterwards the node stays ready through a platform outage, answering from its last
  verified copy, and says how old it is).
* ``POST /v1/instructions/{id}/ack`` and ``/feedback`` — relayed to the platform, queued while it is down;
  ``GET /v1/outbox`` lists what waits.
* ``POST /v1/webhooks/feed`` — the platform's feed webhook (``protocol.verify_webhook``): it only wakes the
  sync loop; what is applied always comes from the signed feed.

A background loop syncs every ``sync_interval`` seconds (or at once on a webhook), then swaps the changes
into the index between two requests.

Request ids (#23): every request gets one (``X-Request-ID`` in, or a new one; in the answer's header and
on its lines, ``core.requestid``); a sync, its relays and a status report run under an id of their own,
sent to the platform with their calls. A decision that matches entries logs one line
(``fanchaoxin.node.decisions``) under its request id naming the platform's request ids of the changes
behind those entries, so that an operator can follow one id from the platform's form to this answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from fanchaoxin.core.errors import NotFound, Problem, Unauthenticated, ValidationProblem, install_handlers
from fanchaoxin.core.logs import current_request_id, job_request_id, request_context
from fanchaoxin.core.requestid import RequestIdMiddleware
from fanchaoxin.node import decision_log, hits, relay, status
from fanchaoxin.node.client import PlatformClient, PlatformRefused, PlatformUnavailable
from fanchaoxin.node.live import LiveBatcher, LiveResult, LiveSettings
from fanchaoxin.node.sdk import BadIdentifier, Node, NotSynced, Prepared
from fanchaoxin.node.store import Store, crypto_profile, now
from fanchaoxin.node.sync import PlatformSuspended, SyncRefused, suspension, sync
from fanchaoxin.sharing import protocol as P
from fanchaoxin.sharing.protocol import DecisionRequest, FeedbackIn

log = logging.getLogger("fanchaoxin.node.app")
# One line per matching decision: silenced alone by its level if an operator wants no trace of answers.
decisions_log = logging.getLogger("fanchaoxin.node.decisions")


class NotReady(Problem):
    status = 503
    slug = "node-not-synced"
    title = "The node has not completed a verified sync yet"
    title_zh = "节点尚未完成经验证的同步"


class NodeState:
    def __init__(self, store: Store, node: Node, client: PlatformClient, interval: float) -> None:
        self.store = store
        self.node = node
        self.client = client
        self.interval = interval
        self.wake = asyncio.Event()
        self.platform_ok: bool | None = None
        self.last_error: str | None = None
        self.last_attempt_at: float | None = None
        self.sync_lock = asyncio.Lock()
        self.errors = status.ErrorCounts()  # since the last status report (#16)

    async def sync_once(self) -> None:
        # a request's own id when one asked for it (POST /v1/sync); the relays after it go under it too
        with request_context(current_request_id() or job_request_id("node-sync")):
            await self._sync_once()

    async def _sync_once(self) -> None:
        async with self.sync_lock:
            self.last_attempt_at = now()
            try:
                result = await asyncio.to_thread(sync, self.store, self.client)
                if self.platform_ok is False:
                    log.warning("platform reachable again: caught up to seq %s", result.head_after)
                self.platform_ok, self.last_error = True, None
            except PlatformUnavailable as exc:
                if self.platform_ok is not False:
                    log.warning(
                        "platform unavailable (%s): answering from the last verified copy (seq %s)",
                        exc, self.node.feed_seq,
                    )  # fmt: skip
                self.platform_ok, self.last_error = False, str(exc)
                self.errors.add("sync_failures")
            except PlatformSuspended as exc:  # logged once by sync; the next sync tries again
                self.platform_ok, self.last_error = True, str(exc)
            except SyncRefused as exc:  # already logged by sync
                self.platform_ok, self.last_error = True, str(exc)
                self.errors.add("sync_failures")
            except Exception as exc:
                log.exception("sync failed")
                self.last_error = f"sync failed: {exc}"
                self.errors.add("sync_failures")
            plan = await asyncio.to_thread(self.node.prepare_refresh)
            self.node.commit(plan)  # on the event loop: no request sees half a delta
            if self.platform_ok and not suspension(self.store):
                try:
                    await asyncio.to_thread(relay.flush, self.store, self.client)
                except Exception:
                    log.exception("outbox flush failed")
                    self.errors.add("relay_failures")
            await self.relay_decisions()

    async def flush_decisions(self) -> None:
        try:
            await asyncio.to_thread(self.node.log.flush)
        except Exception:
            log.exception("writing the decision log failed; the records stay queued")

    async def relay_decisions(self) -> None:
        """Write the queued decisions, then send the unsent ones (kept when the platform is down; the
        bound on what is kept applies either way)."""
        await self.flush_decisions()
        try:
            if self.platform_ok:
                await asyncio.to_thread(decision_log.relay, self.store, self.client)
            else:
                await asyncio.to_thread(decision_log.enforce_bound, self.store)
        except Exception:
            log.exception("relaying the decision log failed")
            self.errors.add("relay_failures")

    async def flush_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.flush_decisions()

    async def status_loop(self, every: float) -> None:
        """Report the node's status every ``every`` seconds (#16). A platform that is down or refuses
        costs a log line, never a decision: the report runs in a thread beside the sync loop. The first
        report goes one interval after the start (`fcx node status --report` sends one at once)."""
        while True:
            await asyncio.sleep(every)
            live = self.node.live.stats.evaluated if self.node.live is not None else None
            try:
                with request_context(job_request_id("node-status")):
                    await asyncio.to_thread(status.report, self.store, self.client, interval=every,
                                            errors=self.errors, live_total=live)  # fmt: skip
            except (PlatformUnavailable, PlatformRefused) as exc:
                log.warning("status report not taken: %s", exc)
            except Exception:
                log.exception("status report failed")

    async def loop(self) -> None:
        while True:
            await self.sync_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.interval)
            self.wake.clear()


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        status_code=status,
        media_type="application/json",
    )


MAX_BODY = 2 * 1024 * 1024
_JSON_HEADERS = [(b"content-type", b"application/json")]
# Where FastDecisions hands a refusal to the FastAPI route (an extra key of the ASGI scope).
_REFUSAL = "fcx.refusal"


def token_allowed(expected: bytes | None, headers: Headers) -> bool:
    """Whether the caller sent the node's token: ``Authorization: Bearer <token>``, or ``X-API-Key``."""
    if expected is None:
        return True
    header = headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else headers.get("x-api-key", "")
    # Header values are Latin-1 text: encoding them back gives the bytes the caller sent.
    return secrets.compare_digest(given.strip().encode("latin-1"), expected)


def unauthenticated() -> Unauthenticated:
    return Unauthenticated("a valid node token is required (Authorization: Bearer <token>)")


class Decisions:
    """``POST /v1/decisions``: the token checked once, the body validated once (the platform's own wire
    model), the node's answer in the platform's shape plus its feed position. A request naming a
    first-seen identifier waits for its live tag (:class:`~fanchaoxin.node.live.LiveBatcher`: one
    platform call for the first-seen identifiers of all the requests arriving within a few ms)."""

    def __init__(self, node: Node, token: bytes | None) -> None:
        self.node = node
        self.token = token
        self.batcher = LiveBatcher(node.live) if node.live is not None else None

    def answer(self, headers: Headers, raw: bytes) -> bytes | Prepared:
        """The answer's bytes, a :class:`Prepared` request waiting for live tags (:meth:`complete`), or a
        Problem / RequestValidationError refusing the request: in the order token, body, readiness,
        identifiers."""
        if not token_allowed(self.token, headers):
            raise unauthenticated()
        try:
            body = DecisionRequest.model_validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None
        try:
            prepared = self.node.prepare_request(body)
        except NotSynced:
            raise NotReady(
                "The node has no verified copy of the feed yet; retry after its first sync",
                headers={"Retry-After": "5"},
            ) from None
        except BadIdentifier as exc:
            raise P.identifier_problem(exc.given_type, exc, exc.field) from None
        if prepared.first_seen and self.batcher is not None:
            down = self.batcher.live.unavailable_now()
            if down is None:
                return prepared
            # a failure moments ago: the fallback at once, without waiting on the platform again
            return self.encode(self.logged(self.node.finish(prepared, LiveResult({}, down))))
        return self.encode(self.logged(self.node.finish(prepared, None)))

    @staticmethod
    def encode(out: dict[str, Any]) -> bytes:
        return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()

    def logged(self, out: dict[str, Any]) -> dict[str, Any]:
        """``out``, after one line if it matched entries: its verdicts, the entries and the platform's
        request ids of the changes behind them (#23). An answer that matched nothing logs nothing: the
        decision log (node.decision_log) keeps every answer, the lines only what an operator follows."""
        if not decisions_log.isEnabledFor(logging.INFO):
            return out
        results = out.get("results", [out])
        entry_ids = [e for r in results for e in r.get("entry_ids") or ()]
        if not entry_ids:
            return out
        behind = self.node.requests_behind(entry_ids)
        decisions_log.info(
            "decision %s in scene %s: entries %s (changes %s)",
            ",".join(str(r.get("verdict")) for r in results), out.get("scene"), ",".join(entry_ids),
            ",".join(sorted(set(behind.values()))) or "-",
            extra={
                "scene": out.get("scene"),
                "verdicts": [r.get("verdict") for r in results],
                "entry_ids": entry_ids,
                "change_request_ids": sorted(set(behind.values())),
                "feed_seq": out.get("feed_seq"),
            },
        )  # fmt: skip
        return out

    async def complete(self, prepared: Prepared) -> bytes:
        """The answer once the first-seen identifiers have their live tags, or could not get them within
        the live timeout (then the configured fallback)."""
        assert self.batcher is not None
        live = await self.batcher.tags(prepared.first_seen)
        return self.encode(self.logged(self.node.finish(prepared, live)))


class FastDecisions:
    """``POST /v1/decisions`` as a bare ASGI wrapper in front of the FastAPI app.

    Every decision request is judged here, without routing, dependency injection or middleware. An
    answer is sent from here; a refusal goes to the FastAPI route in the scope, which raises it so that
    the app's exception handlers give the platform's exact problem answer. Every other path goes
    straight to FastAPI."""

    def __init__(self, app: FastAPI, decisions: Decisions) -> None:
        self.app = app
        self.decisions = decisions
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/decisions" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                problem = json.dumps({"type": "https://fanchaoxin.org/problems/payload-too-large",
                                      "title": "Request body too large", "status": 413}).encode()  # fmt: skip
                headers = [*_JSON_HEADERS, (b"content-length", str(len(problem)).encode())]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": problem})
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        try:
            answer = self.decisions.answer(Headers(scope=scope), raw)
        except (Problem, RequestValidationError) as exc:
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": raw, "more_body": False}
                return await receive()

            await self.app({**scope, _REFUSAL: exc}, replay, send)
            return
        if not isinstance(answer, bytes):
            answer = await self.decisions.complete(answer)
        headers = [*_JSON_HEADERS, (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


def create_node_app(
    store_path: str,
    *,
    sync_interval: float = 30.0,
    token: str | None = None,
    sync_loop: bool = True,
    log_flush_seconds: float = 0.5,
    status_interval: float = status.REPORT_INTERVAL,
    live: LiveSettings | bool | None = None,
    hits_webhook: str | None = None,
    hits_webhook_secret: str | None = None,
) -> RequestIdMiddleware:
    """``live``: live-tag settings (default: the store's config, ``fcx node init``); False: off."""
    store = Store(store_path)
    cfg = store.get_config()
    node = Node(store, refresh_seconds=None, live=live)
    client = PlatformClient(cfg["platform_url"], cfg["api_key"])

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = NodeState(store, node, client, sync_interval)
        app.state.node_state = state
        task = asyncio.create_task(state.loop()) if sync_loop else None
        flusher = asyncio.create_task(state.flush_loop(log_flush_seconds))
        # status reports (#16) go with the sync loop: a node that does not sync has nothing to report
        reports = sync_loop and status_interval > 0
        reporter = asyncio.create_task(state.status_loop(status_interval)) if reports else None
        # re-screening hits to the enterprise's own system (#16): its own task, so a slow or failing
        # webhook never holds up a sync
        hooks_url = hits_webhook or cfg.get("hits_webhook_url")
        hooks = None
        if hooks_url:
            secret = hits.webhook_secret(cfg, hits_webhook_secret)
            hooks = asyncio.create_task(hits.webhook_loop(store, hooks_url, secret))
        try:
            yield
        finally:
            for t in (task, flusher, reporter, hooks):
                if t is not None:
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
            await state.flush_decisions()  # nothing answered is left unrecorded
            if judge.batcher is not None:
                await judge.batcher.close()
            if node.live is not None:
                await asyncio.to_thread(node.live.close)  # the live tags still queued are written
            client.close()
            store.dispose()

    app = FastAPI(
        title="fcx node",
        summary="The enterprise node: decisions from the verified shared feed (issue #5)",
        lifespan=lifespan,
    )
    install_handlers(app)
    app.state.node = node
    app.state.store = store
    expected = token.encode() if token else None
    judge = Decisions(node, expected)

    def check_token(request: Request) -> None:
        if not token_allowed(expected, request.headers):
            raise unauthenticated()

    @app.post("/v1/decisions", summary="decide(identifiers, scene), from the last verified feed")
    async def decisions(request: Request) -> Response:
        refusal: Problem | RequestValidationError | None = request.scope.get(_REFUSAL)
        if refusal is not None:
            raise refusal
        # Only the bare app (FastDecisions' .app) gets here with a request nobody has judged yet.
        answer = judge.answer(request.headers, await request.body())
        if not isinstance(answer, bytes):
            answer = await judge.complete(answer)
        return Response(answer, media_type="application/json")

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> Response:
        return _json({"status": "ok"})

    def readiness() -> dict[str, Any]:
        state: NodeState | None = getattr(app.state, "node_state", None)
        return {
            "ready": node.last_sync_at is not None,
            "feed_seq": node.feed_seq,
            "feed_age_seconds": node.feed_age_seconds(),
            "last_sync_at": node.last_sync_at,
            "platform_reachable": None if state is None else state.platform_ok,
            "last_error": None if state is None else state.last_error,
            # why the platform refuses this enterprise the feed (its sharing agreement), if it does
            "suspended": suspension(store),
            "entries_in_force": len(node.index),
            "enrolled_identifiers": len(node.users),
        }

    @app.get("/readyz", summary="Ready once a verified sync has completed; states the feed's age")
    async def readyz() -> Response:
        body = readiness()
        return _json(body, 200 if body["ready"] else 503)

    @app.post("/v1/sync", summary="Sync with the platform now")
    async def sync_now(request: Request) -> Response:
        check_token(request)
        await request.app.state.node_state.sync_once()
        return _json(readiness())

    async def _relay(
        request: Request, instruction_id: str, action: str, body: dict[str, Any] | None
    ) -> Response:
        status, answer = await asyncio.to_thread(relay.relay, store, client, instruction_id, action, body)
        if status >= 400:
            return JSONResponse(answer, status_code=status, media_type="application/problem+json")
        return _json(answer, status)

    @app.post(
        "/v1/instructions/{instruction_id}/ack",
        summary="Acknowledge (relayed; queued if the platform is down)",
    )
    async def ack(instruction_id: str, request: Request) -> Response:
        check_token(request)
        return await _relay(request, instruction_id, "ack", None)

    @app.post("/v1/instructions/{instruction_id}/feedback", summary="Report execution (relayed; queued)")
    async def feedback(instruction_id: str, request: Request, body: FeedbackIn) -> Response:
        check_token(request)
        return await _relay(
            request, instruction_id, "feedback", body.model_dump(mode="json", exclude_unset=True)
        )

    @app.get(
        "/v1/entries/{entry_id}",
        summary="Need to know: details of an entry this node holds (fetched from the platform, audited)",
    )
    async def entry_details(entry_id: str, request: Request) -> Response:
        check_token(request)
        try:
            purpose = P.decode_purpose(request.headers.get("x-fcx-purpose"))
        except UnicodeDecodeError:
            purpose = ""
        if not purpose:
            raise ValidationProblem(
                "Say why you need this entry in the X-FCX-Purpose header",
                errors=[{"in": "header", "field": "X-FCX-Purpose", "type": "missing", "message": "required"}],
            )
        if not node.matches(entry_id):
            raise NotFound(
                f"Entry {entry_id} is not in force here or concerns none of this node's enrolled users: "
                "details are for a match only"
            )
        try:
            answer = await asyncio.to_thread(client.entry, entry_id, purpose)
        except PlatformRefused as exc:
            return JSONResponse(exc.problem, status_code=exc.status, media_type="application/problem+json")
        return _json(answer)

    @app.get("/v1/decision-log", summary="The newest decisions this node recorded (tags only), sent or not")
    async def decisions_recorded(request: Request, limit: int = 100) -> Response:
        check_token(request)
        await request.app.state.node_state.flush_decisions()
        limit = max(1, min(limit, 1000))
        return _json({"items": await asyncio.to_thread(decision_log.listing, store, limit=limit)})

    @app.get("/v1/hits", summary="Re-screening: enrolled users newly hit, changed or lifted, after a cursor")
    async def hits_after(request: Request, after: int = 0, limit: int = 100) -> Response:
        check_token(request)
        try:
            page = await asyncio.to_thread(hits.listing, store, after=after, limit=limit)
        except hits.CursorAhead as exc:
            raise ValidationProblem(
                str(exc),
                errors=[{"in": "query", "field": "after", "type": "cursor_ahead",
                         "message": f"beyond the newest hit ({exc.head})"}],
            ) from None  # fmt: skip
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            raise ValidationProblem(
                str(exc), errors=[{"in": "query", "field": field, "type": "value_error", "message": message}]
            ) from None
        return _json(page)

    @app.get("/v1/outbox", summary="Relayed instruction messages: queued, sent, refused")
    async def outbox(request: Request, status: str | None = None) -> Response:
        check_token(request)
        return _json({"items": await asyncio.to_thread(relay.listing, store, status)})

    @app.post("/v1/webhooks/feed", summary="The platform's feed webhook: wakes the sync loop")
    async def webhook(request: Request) -> Response:
        raw = await request.body()
        cfg = store.get_config()
        secret = cfg.get("webhook_secret")
        if not secret:
            raise NotReady("no webhook secret configured (fcx node webhook-secret)")

        def seen(event_id: str) -> bool:
            with store.transaction() as conn:
                row = conn.exec_driver_sql(
                    "INSERT OR IGNORE INTO node_webhook_events(event_id, received_at) VALUES (?, ?)",
                    (event_id, now()),
                )
                return row.rowcount == 0

        try:
            event_id = await asyncio.to_thread(
                P.verify_webhook,
                secret.encode(),
                request.headers,
                raw,
                seen=seen,
                profile=crypto_profile(cfg),
            )
        except P.ProtocolError as exc:
            log.error("refused webhook: %s", exc)
            raise Unauthenticated(str(exc)) from None
        state: NodeState = request.app.state.node_state
        state.wake.set()
        return _json({"accepted": event_id})

    # Outermost: the fast decision path too answers with its request id and logs under it.
    return RequestIdMiddleware(FastDecisions(app, judge))
