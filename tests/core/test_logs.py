"""No plain identifiers in the server's logs (#14 point 4): the filter, and the real `fcx serve`."""

from __future__ import annotations

import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from bench.loadgen import wait_until_serving

from fanchaoxin.core import logs
from fanchaoxin.core.identifiers import mask

RID = "110101199003071233"
PHONE = "13812345678"


def _access_record(path: str) -> logging.LogRecord:
    # What uvicorn's httptools/h11 protocols log: the formatter unpacks exactly these five arguments.
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:50000", "GET", path, "1.1", 200), None,
    )  # fmt: skip


def test_an_access_record_is_masked_and_keeps_its_shape() -> None:
    uvicorn_logging = pytest.importorskip("uvicorn.logging")
    record = _access_record(
        f"/v1/lookup?type=resident_id&value={RID}&phone=%2B86{PHONE}&e=zhang.san%40example.com"
    )
    assert logs.IdentifierMaskFilter().filter(record) is True
    line = uvicorn_logging.AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(
        record
    )
    assert RID not in line and PHONE not in line and "zhang.san" not in line
    assert mask("resident_id", RID) in line and "***@example.com" in line
    assert line.startswith('127.0.0.1:50000 - "GET /v1/lookup?type=resident_id') and line.endswith(" 200 OK")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"value={RID}", f"value={mask('resident_id', RID)}"),
        ("value=110101199003071234", "value=***"),  # looks like one, fails its check digit
        (f"+86 {PHONE} and 86{PHONE}", "+86138******78 and +86138******78"),
        (f"q=%20{PHONE}", "q=%20+86138******78"),
        ("Zhang.San@Example.com", "***@example.com"),
        ("seq 1700000000123 uscc 91110000600037341L", "seq 1700000000123 uscc 91110000600037341L"),
        ("id 6d92078a-8246-4ba4-ae5b-76104861e7dc", "id 6d92078a-8246-4ba4-ae5b-76104861e7dc"),
    ],
)
def test_mask_text(text: str, expected: str) -> None:
    assert logs.mask_text(text) == expected


def test_other_records_are_masked_in_message_arguments_and_traceback() -> None:
    by_name = logging.LogRecord(
        "fanchaoxin.x", logging.ERROR, __file__, 1, f"lookup of {RID} for %(n)s", ({"n": PHONE},), None
    )
    by_place = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "%s asked %d times", (f"a{PHONE}"[1:], 3), None
    )
    by_name.exc_text = f"ValueError: {PHONE}"
    for record in (by_name, by_place):
        logs.IdentifierMaskFilter().filter(record)
        assert RID not in record.getMessage() and PHONE not in record.getMessage()
    assert PHONE not in by_name.exc_text
    assert by_place.getMessage() == "+86138******78 asked 3 times"


def test_install_covers_uvicorns_loggers_and_root_handlers() -> None:
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logs.install()
        logs.install()  # idempotent
        assert logging.getLogger("uvicorn.access").filters.count(logs._FILTER) == 1
        assert handler.filters == [logs._FILTER]
    finally:
        root.removeHandler(handler)
        for target in (root, *(logging.getLogger(n) for n in logs._LOGGERS)):
            target.removeFilter(logs._FILTER)


def test_uvicorn_log_config_puts_the_filter_on_every_handler() -> None:
    config = logs.uvicorn_log_config()
    assert config["handlers"] and all(
        "fcx_mask_identifiers" in h["filters"] for h in config["handlers"].values()
    )
    # the logging of this test process is put back afterwards (the configuration sets the root's handlers)
    names = ("", "fanchaoxin", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in map(logging.getLogger, names)]
    try:
        logging.config.dictConfig(config)  # a configuration uvicorn can apply in every worker
        assert any(
            isinstance(f, logs.IdentifierMaskFilter)
            for f in logging.getLogger("uvicorn.access").handlers[0].filters
        )
    finally:
        for lg, handlers, level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fcx_serve_access_log_has_no_plain_resident_id(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "FCX_DATABASE_URL": f"sqlite:///{tmp_path / 'fcx.db'}", "PYTHONUNBUFFERED": "1"}
    out = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "fanchaoxin", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=out, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/healthz", server, timeout=60)
        # No key: refused, and the request line is logged all the same.
        httpx.get(f"{base}/v1/lookup", params={"type": "resident_id", "value": RID}, timeout=10)
        httpx.get(f"{base}/v1/lookup", params={"type": "phone", "value": f"+86{PHONE}"}, timeout=10)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        out.close()
    log = (tmp_path / "serve.log").read_text()
    assert "GET /v1/lookup?type=resident_id" in log, log  # the access log is on
    assert RID not in log and PHONE not in log, log
    assert mask("resident_id", RID) in log
