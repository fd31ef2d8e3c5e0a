"""Structured logs (#23): JSON lines, identifiers masked in every field, the request id of each request."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.loadgen import wait_until_serving
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fanchaoxin.core import logs
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.requestid import RequestIdMiddleware
from fanchaoxin.stats import queue_metrics

RID = "110101199003071233"
PHONE = "13812345678"
HEX32 = re.compile(r"[0-9a-f]{32}")


def _record(msg: str, args: Any = None, *, name: str = "fanchaoxin.test", **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def _line(record: logging.LogRecord) -> dict[str, Any]:
    logs.RequestIdFilter().filter(record)
    text = logs.JsonFormatter().format(record)
    assert "\n" not in text  # one object per line
    return json.loads(text)


def test_a_json_line_has_time_level_logger_message_request_id_and_extra_fields() -> None:
    with logs.request_context("req-1") as rid:
        line = _line(_record("event %s applied in %d ms", ("published", 3), seq=7, org="电商"))
    assert rid == "req-1"
    assert line["level"] == "INFO" and line["logger"] == "fanchaoxin.test"
    assert line["message"] == "event published applied in 3 ms"
    assert line["request_id"] == "req-1" and line["seq"] == 7 and line["org"] == "电商"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"]), line["time"]
    # outside any request the field says so; an explicit request_id (a node naming the platform's) wins
    assert _line(_record("idle"))["request_id"] is None
    with logs.request_context("sync-1"):
        assert _line(_record("applied", request_id="platform-7"))["request_id"] == "platform-7"


def test_identifiers_are_masked_in_message_arguments_extra_fields_and_traceback() -> None:
    try:
        raise ValueError(f"no subject {RID}")
    except ValueError:
        exc_info = sys.exc_info()
    record = _record(
        "lookup of %s by %s",
        (RID, f"+86{PHONE}"),
        subject={"phones": [PHONE], "email": "zhang.san@example.com"},
        note=f"id {RID}",
    )
    record.exc_info = exc_info
    text = logs.JsonFormatter().format(record)
    assert RID not in text and PHONE not in text and "zhang.san" not in text, text
    line = json.loads(text)
    assert line["message"] == f"lookup of {mask('resident_id', RID)} by +86138******78"
    assert line["subject"] == {"phones": ["+86138******78"], "email": "***@example.com"}
    assert line["note"] == f"id {mask('resident_id', RID)}"
    assert "ValueError: no subject" in line["exception"]


def test_an_access_line_has_its_fields_and_the_request_id() -> None:
    record = _record(
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:50000", "GET", f"/v1/lookup?type=resident_id&value={RID}", "1.1", 404),
        name="uvicorn.access",
    )
    logs.IdentifierMaskFilter().filter(record)
    with logs.request_context("abc"):
        line = _line(record)
    assert line["request_id"] == "abc" and line["method"] == "GET" and line["status"] == 404
    assert line["path"] == f"/v1/lookup?type=resident_id&value={mask('resident_id', RID)}"
    assert "GET /v1/lookup?type=resident_id" in line["message"] and RID not in line["message"]


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("6d92078a82464ba4ae5b76104861e7dc", True),
        ("01HGW2N7EHJ4Q5RDT8K9ZX2Y3M", True),
        ("job-registry-6d92078a", True),
        ("edge.proxy:42", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("-leading-dash", False),
        ("two words", False),
        ('x"}\n{"level":"ERROR"', False),
        ("请求", False),
        (None, False),
    ],
)
def test_well_formed_request_ids(value: str | None, kept: bool) -> None:
    assert logs.well_formed_request_id(value) is kept


def test_job_ids_name_the_job() -> None:
    rid = logs.job_request_id("registry")
    assert rid.startswith("job-registry-") and logs.well_formed_request_id(rid)
    with pytest.raises(ValueError, match="job name"):
        logs.job_request_id("two words")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Lines of the ``fanchaoxin`` loggers as a served process writes them (JSON formatter, filters)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.IdentifierMaskFilter())
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger("fanchaoxin")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def _tiny_app() -> RequestIdMiddleware:
    app = FastAPI()
    log = logging.getLogger("fanchaoxin.tiny")

    @app.get("/sync")
    def in_thread_pool() -> dict[str, Any]:  # a sync route: Starlette's thread pool
        log.info("asked for %s", PHONE)
        return {"seen": logs.current_request_id()}

    @app.get("/async")
    async def on_the_loop() -> dict[str, Any]:
        log.info("asked")
        return {"seen": logs.current_request_id()}

    return RequestIdMiddleware(app)


def test_incoming_request_id_is_kept_and_a_bad_one_replaced(json_lines: io.StringIO) -> None:
    with TestClient(_tiny_app()) as client:
        good = client.get("/sync", headers={"X-Request-ID": "edge-42"})
        assert good.headers["x-request-id"] == "edge-42" and good.json() == {"seen": "edge-42"}
        for bad in ("x" * 65, "two words", "a;b"):
            r = client.get("/async", headers={"X-Request-ID": bad})
            assert (
                HEX32.fullmatch(r.headers["x-request-id"]) and r.json()["seen"] == r.headers["x-request-id"]
            )
        none = client.get("/async")
        assert HEX32.fullmatch(none.headers["x-request-id"])
        assert none.headers["x-request-id"] != r.headers["x-request-id"]
        assert (
            client.get("/missing", headers={"X-Request-ID": "edge-43"}).headers["x-request-id"] == "edge-43"
        )
    lines = [json.loads(x) for x in json_lines.getvalue().splitlines()]
    asked = [x for x in lines if x["logger"] == "fanchaoxin.tiny"]
    assert asked[0]["request_id"] == "edge-42" and PHONE not in asked[0]["message"]
    # each line of a request carries that request's id, each request its own
    assert len(asked) == 5 and all(HEX32.fullmatch(x["request_id"]) for x in asked[1:])
    assert len({x["request_id"] for x in asked}) == 5


def test_logging_config_masks_and_stamps_on_every_handler() -> None:
    config = logs.uvicorn_log_config("json", level="debug")
    assert {"fcx", "default", "access"} <= set(config["handlers"])
    assert all(
        {"fcx_mask_identifiers", "fcx_request_id"} <= set(h["filters"]) for h in config["handlers"].values()
    )
    assert {h["formatter"] for h in config["handlers"].values()} == {"fcx_json"}
    assert config["loggers"]["fanchaoxin"]["level"] == "DEBUG"
    assert config["root"]["handlers"] == ["fcx"] and "uvicorn.access" in config["loggers"]
    text = logs.uvicorn_log_config("text")
    assert "%(request_id)s" in text["formatters"]["access"]["fmt"]
    assert "%(request_id)s" in text["formatters"]["fcx_text"]["format"]
    assert "uvicorn" not in json.dumps(logs.logging_config("text"))  # commands load no server stack
    with pytest.raises(ValueError, match="FCX_LOG_FORMAT"):
        logs.logging_config("xml")


def test_auto_format_is_text_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert logs.resolve_format("auto") == "text"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert logs.resolve_format("auto") == "json"
    assert logs.resolve_format("text") == "text"


def test_queue_gauges_are_counted_at_most_once_per_cache_period(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[int] = []

    def count(_db: Any) -> dict[str, Any]:
        counted.append(1)
        if len(counted) == 3:
            raise httpx.ConnectError("database away")  # any failure: the last figures, up 0
        return {"fcx_outbox_pending": float(len(counted)), "cases": {"objection": {
            "fcx_cases_open": 1.0, "fcx_cases_due_soon": 0.0, "fcx_cases_overdue": 2.0}}}  # fmt: skip

    monkeypatch.setattr(queue_metrics, "count_queues", count)
    now = [100.0]
    collector = queue_metrics.QueueCollector(None, cache_seconds=15, clock=lambda: now[0])  # type: ignore[arg-type]

    def scrape() -> dict[str, float]:
        return {
            f"{s.name}{s.labels.get('case', '')}": s.value
            for family in collector.collect()
            for s in family.samples
        }

    assert scrape()["fcx_outbox_pending"] == 1.0
    now[0] += 10
    first = scrape()
    assert first["fcx_outbox_pending"] == 1.0 and len(counted) == 1  # cached
    assert first["fcx_cases_overdueobjection"] == 2.0 and first["fcx_queue_metrics_up"] == 1.0
    now[0] += 10
    assert scrape()["fcx_outbox_pending"] == 2.0 and len(counted) == 2
    now[0] += 20
    down = scrape()
    assert down["fcx_queue_metrics_up"] == 0.0 and down["fcx_outbox_pending"] == 2.0


def test_fcx_serve_writes_json_lines_with_the_request_id_on_the_access_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {
        **os.environ,
        "FCX_DATABASE_URL": f"sqlite:///{tmp_path / 'fcx.db'}",
        "FCX_LOG_FORMAT": "json",
        "FCX_JOBS_INTERVAL_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    out = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "fanchaoxin", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=out, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/healthz", server, timeout=60)
        r = httpx.get(
            f"{base}/v1/lookup", params={"type": "phone", "value": PHONE}, headers={"X-Request-ID": "ops-1"}
        )
        assert r.headers["x-request-id"] == "ops-1"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        out.close()
    text = (tmp_path / "serve.log").read_text()
    assert PHONE not in text, text
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = [x for x in records if x["logger"] == "uvicorn.access" and x["request_id"] == "ops-1"]
    assert len(access) == 1, text
    assert access[0]["method"] == "GET" and access[0]["path"].startswith("/v1/lookup?type=phone")
    assert access[0]["status"] == 401
    assert {"time", "level", "logger", "message", "request_id"} <= set(records[0])
