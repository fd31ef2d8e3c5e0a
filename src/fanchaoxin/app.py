"""The platform's web application (`fcx serve`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from fanchaoxin import __version__
from fanchaoxin.appeals.commitment_views import router as commitments_router
from fanchaoxin.appeals.statement_views import router as statements_router
from fanchaoxin.appeals.views import router as appeals_router
from fanchaoxin.blacklist.views import router as blacklist_router
from fanchaoxin.console import install as install_console
from fanchaoxin.consultation.views import router as consultation_router
from fanchaoxin.core import crypto_record, vault
from fanchaoxin.core.auth import install_authenticator, route_access
from fanchaoxin.core.db import Database, Timeouts, unavailable
from fanchaoxin.core.errors import install_handlers
from fanchaoxin.core.http import BodySizeLimit, Metrics, MetricsMiddleware
from fanchaoxin.core.logs import job_request_id, request_context
from fanchaoxin.core.requestid import RequestIdMiddleware
from fanchaoxin.core.settings import Settings, get_settings
from fanchaoxin.core.views import router as core_router
from fanchaoxin.operations.backup import run_scheduled as run_scheduled_backup
from fanchaoxin.orgs.agreement_views import router as agreements_router
from fanchaoxin.orgs.budget import Budget
from fanchaoxin.orgs.decision_log import DecisionLogWriter
from fanchaoxin.orgs.node_log_views import router as node_log_router
from fanchaoxin.orgs.rulebook_views import router as rulebooks_router
from fanchaoxin.orgs.service import authenticate_key
from fanchaoxin.orgs.views import router as orgs_router
from fanchaoxin.sanctions.index import holder_for
from fanchaoxin.sanctions.receipt_views import router as receipts_router
from fanchaoxin.sanctions.views import active_policy_version
from fanchaoxin.sanctions.views import router as sanctions_router
from fanchaoxin.sharing import outbox as sharing_outbox
from fanchaoxin.sharing.evaluate import EvaluationBuckets
from fanchaoxin.sharing.service import run_jobs as run_sharing_jobs
from fanchaoxin.sharing.translog_views import router as log_router
from fanchaoxin.sharing.views import changes_router
from fanchaoxin.sharing.views import router as sharing_router
from fanchaoxin.stats.access_patterns_views import router as access_patterns_router
from fanchaoxin.stats.coordination_views import router as coordination_router
from fanchaoxin.stats.queue_metrics import QueueCollector
from fanchaoxin.stats.views import router as stats_router
from fanchaoxin.subjects.views import router as subjects_router
from fanchaoxin.workflows.access_views import router as access_log_router
from fanchaoxin.workflows.appeals_views import router as appeals_workflows_router
from fanchaoxin.workflows.jobs import audit_signing_keys, run_appeals_jobs
from fanchaoxin.workflows.jobs import run_jobs as run_registry_jobs
from fanchaoxin.workflows.node_status_views import router as node_status_router
from fanchaoxin.workflows.views import router as workflows_router

log = logging.getLogger(__name__)

# Routes whose bodies may be as large as an upload (bulk submissions, evidence files).
UPLOAD_PATHS: tuple[str, ...] = ("/v1/uploads", "/v1/evidence", "/v1/attachments", "/v1/public/statements")

DESCRIPTION = """
反炒信 — the platform of the joint action against credit hyping (炒信) on e-commerce and
sharing-economy platforms. Every route names the roles that may call it (`x-roles`); errors are
RFC 9457 problem details.
"""


def create_served_app() -> FastAPI:
    """The application as `fcx serve` runs it: with the scheduled jobs loop.

    A data key problem (a missing or malformed key file, a row under a key the ring lacks) stops the
    start here, naming the file or the row: nothing is served (core.vault)."""
    app = create_app(run_jobs=True)
    crypto_record.check(app.state.db.engine)
    vault.check_served(app.state.db.engine)
    return app


def create_app(
    settings: Settings | None = None, db: Database | None = None, *, run_jobs: bool = False
) -> FastAPI:
    settings = settings or get_settings()
    owns_db = db is None
    database = db or Database(
        settings.database_url, echo=settings.database_echo, timeouts=Timeouts.from_settings(settings)
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        worker = None
        app.state.decision_log.start()
        if run_jobs:
            app.state.decision_index.warm_in_background()
        if run_jobs and settings.jobs_interval_seconds > 0:
            worker = threading.Thread(
                target=_jobs_loop,
                args=(database, settings.jobs_interval_seconds, stop),
                daemon=True,
                name="fcx-jobs",
            )
            worker.start()
        yield
        stop.set()
        if worker is not None:
            worker.join(timeout=10)
        # Every decision answered is written before the process goes.
        app.state.decision_log.stop()
        if owns_db:
            database.dispose()

    app = FastAPI(
        title="fanchaoxin 反炒信",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.db = database
    app.state.settings = settings
    app.state.metrics = Metrics()
    install_authenticator(app, authenticate_key)
    # Packed and shared by the host's workers under `fcx serve` (sanctions.packed), unless set otherwise.
    app.state.decision_index = holder_for(database, settings, served=run_jobs)
    # One budget of plain-identifier matching per organisation, and the decision log (orgs.budget,
    # orgs.decision_log): in this process, written in batches by the log's thread.
    app.state.budget = Budget(settings)
    app.state.audit_trusted_keys = audit_signing_keys
    # The daily buckets of blinded evaluation (sharing.evaluate): taken in the process, written by the
    # decision log's flush, so that a node's live evaluation costs the platform no database write.
    app.state.evaluation_buckets = EvaluationBuckets(settings)
    app.state.decision_log = DecisionLogWriter(
        database,
        settings,
        app.state.budget,
        policy_source=active_policy_version,
        shares=[app.state.evaluation_buckets],
    )
    # First of the middleware: innermost, so that the metrics count the 500s and 503s it answers.
    install_handlers(app, unavailable=unavailable, retry_after_seconds=settings.database_retry_after_seconds)

    # Starlette matches routes in order, one by one (about 1 µs a route, several hundred routes): the
    # routes nodes call in their own users' requests come first — the sharing API (blinded evaluation of
    # live tags, the feed), then decisions. No other router serves a path under /v1/sharing.
    routers = (
        sharing_router,
        core_router,
        orgs_router,
        subjects_router,
        blacklist_router,
        sanctions_router,
        appeals_router,
        commitments_router,  # #15: credit commitments made for repair
        statements_router,  # #15: the notice before listing (告知书) and statements (陈述申辩)
        changes_router,
        stats_router,
        workflows_router,
        appeals_workflows_router,
        node_log_router,  # #14: node decision logs, who looked me up, unusual patterns
        node_status_router,  # #16: node status reports, lag, silent nodes
        receipts_router,  # #16: node keys and signed execution receipts of lifts
        access_log_router,
        access_patterns_router,
        log_router,  # #19: the transparency log (checkpoint, tiles, proofs, cosignatures)
        agreements_router,  # #22: the information-sharing agreement
        rulebooks_router,  # #22: each enterprise's rulebook
        consultation_router,  # #22: regular consultation (定期会商)
        coordination_router,  # #22: coordination figures per enterprise
    )
    for router in routers:
        _document_roles(router)
        app.include_router(router)

    # The web console: HTML pages under /console (their own access rules), files under /console/static.
    install_console(app)

    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
    )
    # Outermost (#23): every line of a request, the 413 above included, carries its X-Request-ID.
    app.add_middleware(RequestIdMiddleware)
    # Every queue with a deadline on /metrics, counted at most every few seconds (stats.queue_metrics).
    app.state.metrics.registry.register(
        QueueCollector(
            database, cache_seconds=settings.metrics_queue_cache_seconds, index=app.state.decision_index
        )
    )
    return app


def _jobs_loop(database: Database, interval: int, stop: threading.Event) -> None:
    """Expiry and deadlines while the platform runs; safe in every worker (steps are version-checked)."""
    # Webhook deliveries need seconds, not the jobs interval: their own thread, stopped with this loop.
    sharing_outbox.start_worker(database, stop)
    while not stop.is_set():
        try:
            _run_jobs_once(database)
        except Exception:
            log.exception("scheduled jobs failed; retrying in %s s", interval)
        stop.wait(interval)


def _run_jobs_once(database: Database) -> None:
    # Changes made by a job have no request: each job gets an id of its own, in its lines and in the
    # feed events it writes (#23).
    with request_context(job_request_id("registry")):
        with database.session() as session:
            result = run_registry_jobs(session)
        if result["expired"] or result["notice_ended"]:
            log.info("jobs: %s", result)
    with request_context(job_request_id("appeals")):
        with database.session() as session:
            appeals = run_appeals_jobs(session)
        if any(v for k, v in appeals.items() if k != "today"):
            log.info("appeals jobs: %s", appeals)
    with request_context(job_request_id("sharing")):
        sharing = run_sharing_jobs(database)
        if any(sharing.values()):
            log.info("sharing jobs: %s", sharing)
    # The scheduled backup (#23, operations.backup): once FCX_BACKUP_DIR is set, a set when the newest is
    # FCX_BACKUP_EVERY_HOURS old, then retention; one worker takes it (a lock file), the others skip.
    with request_context(job_request_id("backup")):
        backup = run_scheduled_backup(database, get_settings())
        if backup["backup"]:
            log.info("backup jobs: %s", backup)


def _document_roles(router: APIRouter) -> None:
    """Show each route's access rule in the OpenAPI document (before the router is included)."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            rule = route_access(route)
            if rule is not None:
                roles = sorted(r.value for r in rule.roles)
                route.openapi_extra = {**(route.openapi_extra or {}), "x-roles": roles}
                note = "Who may call: " + ", ".join(roles)
                route.description = f"{route.description}\n\n{note}" if route.description else note
