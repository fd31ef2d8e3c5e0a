"""Every queue with a deadline as a Prometheus gauge on ``/metrics`` (#23), so that alerts can be written
(``deploy/prometheus/alerts.yml``).

Counted at scrape time, at most once every ``FCX_METRICS_QUEUE_CACHE_SECONDS`` (a scrape in between gets
the last figures: scrapes from several Prometheus servers, or a tight interval, cannot hammer the
database), each slice's own rule of what is due or overdue:

* the webhook outbox (``sharing.outbox.queue_figures``): deliveries pending, dead, the oldest pending age;
* instructions unacknowledged past their due day (``sanctions.models.Instruction.overdue_where``);
* objections, reports and credit-repair applications open, due soon and overdue (``stats.service.cases``,
  the figures of the statistics page);
* consultation action items open past their due day (``consultation.service.overdue_action_items``);
* enterprise nodes flagged silent and the largest feed lag of a reporting node (``orgs.node_status``);
* the feed head; the decision index's age and whether it is degraded (in the process, no query).

A database that does not answer gives ``fcx_queue_metrics_up 0`` and the last figures, never a failed
scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from fanchaoxin.consultation.service import overdue_action_items
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.db import Database, utcnow
from fanchaoxin.orgs.node_status import NodeStatus
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sharing import changes
from fanchaoxin.sharing.outbox import queue_figures
from fanchaoxin.stats.service import cases

log = logging.getLogger(__name__)

CASE_KINDS = {"objections": "objection", "reports": "report", "repairs": "repair"}

# name → help; labelled families list their label names.
GAUGES: dict[str, str] = {
    "fcx_outbox_pending": "Webhook deliveries waiting to be sent (sharing outbox)",
    "fcx_outbox_dead": "Webhook deliveries dead after their last attempt, waiting for a replay",
    "fcx_outbox_oldest_pending_age_seconds": "Age of the oldest pending webhook delivery (0: none)",
    "fcx_instructions_overdue": "Instructions unacknowledged after their due day",
    "fcx_consultation_action_items_overdue": "Consultation action items open after their due day",
    "fcx_nodes_silent": "Enterprise nodes flagged silent (no status report for too long)",
    "fcx_node_feed_lag_max": "Largest lag (feed events) of a reporting enterprise node behind the feed head",
    "fcx_feed_head_seq": "Sequence number of the newest change-feed event",
    "fcx_decision_index_degraded": "1 while the decision index could not refresh from the database",
    "fcx_decision_index_age_seconds": "Seconds since the decision index last matched the database",
    "fcx_queue_metrics_up": "1 if the last count of the queues reached the database",
}
CASE_GAUGES: dict[str, str] = {
    "fcx_cases_open": "Due-process cases open (objections, reports, repair applications)",
    "fcx_cases_due_soon": "Due-process cases due within 2 working days",
    "fcx_cases_overdue": "Due-process cases past a deadline",
}


def count_queues(database: Database, *, now: datetime | None = None) -> dict[str, Any]:
    """The figures of every queue (one short read transaction)."""
    now = now or utcnow()
    today = china_today(now)
    with database.session() as session:
        outbox = queue_figures(session, now)
        overdue_instructions = session.scalar(
            select(func.count())
            .select_from(Instruction)
            .where(Instruction.overdue_where(today))
        )
        case_blocks = cases(session, today=today)
        action_items = len(overdue_action_items(session, today))
        head = changes.head(session)
        silent = session.scalar(
            select(func.count()).select_from(NodeStatus).where(NodeStatus.silent_since.is_not(None))
        )
        slowest = session.scalar(
            select(func.min(NodeStatus.feed_seq)).where(NodeStatus.silent_since.is_(None))
        )
    return {
        "fcx_outbox_pending": outbox["pending"],
        "fcx_outbox_dead": outbox["dead"],
        "fcx_outbox_oldest_pending_age_seconds": outbox["oldest_pending_age_seconds"],
        "fcx_instructions_overdue": float(overdue_instructions or 0),
        "fcx_consultation_action_items_overdue": float(action_items),
        "fcx_nodes_silent": float(silent or 0),
        "fcx_node_feed_lag_max": float(max(0, head - int(slowest))) if slowest is not None else 0.0,
        "fcx_feed_head_seq": float(head),
        "cases": {
            kind: {
                "fcx_cases_open": float(case_blocks[key]["open"]),
                "fcx_cases_due_soon": float(case_blocks[key]["due_soon"]),
                "fcx_cases_overdue": float(case_blocks[key]["overdue"]),
            }
            for key, kind in CASE_KINDS.items()
        },
    }


class QueueCollector(Collector):
    """The queue gauges, for ``registry.register``. ``index``: the process's decision index holder
    (``degraded``, ``age_seconds()``), read at every scrape; ``clock``: monotonic seconds (tests)."""

    def __init__(
        self,
        database: Database,
        *,
        cache_seconds: float,
        index: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.cache_seconds = cache_seconds
        self.index = index
        self.clock = clock
        self._lock = threading.Lock()
        self._figures: dict[str, Any] | None = None
        self._counted_at = -float("inf")
        self._up = 0.0

    def figures(self) -> tuple[dict[str, Any] | None, float]:
        """The last figures if fresh enough, else counted now (one scrape at a time counts)."""
        with self._lock:
            if self.clock() - self._counted_at >= self.cache_seconds:
                try:
                    self._figures, self._up = count_queues(self.database), 1.0
                except Exception:
                    log.warning(
                        "counting the queues for /metrics failed; serving the last figures", exc_info=True
                    )
                    self._up = 0.0
                self._counted_at = self.clock()
            return self._figures, self._up

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Names only: registering must not query the database.
        for name, text in GAUGES.items():
            yield GaugeMetricFamily(name, text)
        for name, text in CASE_GAUGES.items():
            yield GaugeMetricFamily(name, text, labels=["case"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures, up = self.figures()
        values: dict[str, float] = {"fcx_queue_metrics_up": up}
        if figures is not None:
            values.update({k: v for k, v in figures.items() if k != "cases"})
        # the holder's own figures, where it has them (no query)
        degraded, age = getattr(self.index, "degraded", None), getattr(self.index, "age_seconds", None)
        if degraded is not None:
            values["fcx_decision_index_degraded"] = 1.0 if degraded else 0.0
        if callable(age):
            values["fcx_decision_index_age_seconds"] = float(age())
        for name, text in GAUGES.items():
            if name in values:
                yield GaugeMetricFamily(name, text, value=values[name])
        for name, text in CASE_GAUGES.items():
            family = GaugeMetricFamily(name, text, labels=["case"])
            for kind, block in (figures or {}).get("cases", {}).items():
                family.add_metric([kind], block[name])
            yield family
