"""Issue #5 "done when": a platform, two enterprise nodes and a department receiver as separate processes.

* a published entry reaches all of them within seconds (nodes by sync + webhook, the department by webhook);
* each enterprise matches only its own enrolled users;
* the platform never receives a plain identifier from a node: every request the nodes send goes through a
  recording proxy in this test, and no enrolled (or listed) phone or ID number appears in any of them;
* a tampered feed is refused (the proxy corrupts node A's deltas: A refuses, keeps its copy, then catches up);
* a node keeps deciding through a platform outage (the platform process is stopped) and catches up after
  the restart; instruction feedback sent during the outage is queued and delivered afterwards;
* a revocation lifts everywhere.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.orgs import service as org_service
from tests.blacklist.registry_helpers import RID_A, RID_B

pytestmark = pytest.mark.slow

PHONE_X, PHONE_Y, PHONE_A2, PHONE_W = "13800138000", "13700001111", "13911112222", "13600002222"
SCENE = "account_registration"
WAIT = 60.0  # generous upper bound for "within seconds" on a loaded 2-core machine


def _wait(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, OSError, ValueError, KeyError):
            last = check()
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Proxy:
    """Records every request the nodes send to the platform (method, path, body) and forwards it.
    ``tamper(api_key, path, body)`` may rewrite responses (the tampered-feed step)."""

    def __init__(self) -> None:
        self.upstream: str | None = None
        self.records: list[tuple[str, str, str, bytes]] = []
        self.tamper: Callable[[str, str, bytes], bytes] | None = None
        self.http = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                key = self.headers.get("X-API-Key", "")
                proxy.records.append((self.command, self.path, key, body))
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                try:
                    if proxy.upstream is None:
                        raise httpx.ConnectError("platform stopped")
                    r = proxy.http.request(
                        self.command, proxy.upstream + self.path, content=body, headers=headers
                    )
                    status, content, ctype = r.status_code, r.content, r.headers.get("content-type", "")
                    extra = {k: v for k, v in r.headers.items() if k.lower() in ("retry-after", "etag")}
                except httpx.TransportError:
                    status, content, ctype, extra = 502, b'{"detail":"bad gateway"}', "application/json", {}
                if proxy.tamper is not None and status == 200:
                    content = proxy.tamper(key, self.path, content)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(content)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.http.close()


RECEIVER = textwrap.dedent(
    """
    import json, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from fanchaoxin.sharing import protocol as P

    port_file, secret_file, out_file = sys.argv[1:4]
    seen = set()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                secret = open(secret_file).read().strip().encode()
                event_id = P.verify_webhook(secret, self.headers, body, seen=lambda e: e in seen)
            except (P.ProtocolError, OSError) as exc:
                with open(out_file, "a") as fh:
                    fh.write(json.dumps({"refused": str(exc)}) + "\\n")
                self.send_response(401); self.send_header("Content-Length", "0"); self.end_headers()
                return
            seen.add(event_id)
            with open(out_file, "a") as fh:
                fh.write(json.dumps({"event_id": event_id, "body": json.loads(body)}) + "\\n")
            self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    open(port_file + ".tmp", "w").write(str(srv.server_address[1]))
    import os; os.replace(port_file + ".tmp", port_file)
    srv.serve_forever()
    """
)


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.platform: subprocess.Popen | None = None
        self.platform_url = ""
        self.env = dict(
            os.environ,
            FCX_DATABASE_URL=f"sqlite:///{tmp / 'platform.db'}",
            FCX_SHARING_KEY_DIR=str(tmp / "keys"),
            FCX_JOBS_INTERVAL_SECONDS="2",
            FCX_SHARING_DELIVER_INTERVAL_SECONDS="0.3",
            FCX_SHARING_WEBHOOK_BACKOFF_BASE_SECONDS="0.5",
            FCX_SHARING_TAG_WORKERS="1",
            FCX_SHARING_WEBHOOK_ALLOW_PRIVATE="true",  # the receivers listen on 127.0.0.1 in this test
            FCX_NODE_LOG_LEVEL="INFO",
        )
        self.proxy = Proxy()

    # processes
    def start_platform(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        log = (self.tmp / "platform.log").open("ab")
        self.platform = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "fanchaoxin.app:create_served_app",
             "--fd", str(sock.fileno()), "--log-level", "warning"],
            env=self.env, pass_fds=[sock.fileno()], stdout=log, stderr=log,
        )  # fmt: skip
        sock.close()
        self.platform_url = f"http://127.0.0.1:{port}"
        _wait("the platform", lambda: httpx.get(self.platform_url + "/healthz", timeout=2).status_code == 200)
        self.proxy.upstream = self.platform_url

    def stop_platform(self) -> None:
        assert self.platform is not None
        self.proxy.upstream = None
        self.platform.terminate()
        self.platform.wait(30)

    def fcx(self, *args: str) -> str:
        r = subprocess.run(
            [sys.executable, "-m", "fanchaoxin", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def spawn(self, name: str, args: list[str]) -> tuple[subprocess.Popen, str]:
        port_file = self.tmp / f"{name}.port"
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=log)
        self.procs.append(proc)
        port = _wait(f"{name} to listen", lambda: port_file.exists() and int(port_file.read_text()))
        return proc, f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for p in [*self.procs, self.platform]:
            if p is not None and p.poll() is None:
                p.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(10)
                if p.poll() is None:
                    p.kill()
        self.proxy.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def _setup_orgs(url: str) -> dict[str, dict[Role, str]]:
    db = Database(url)
    db.upgrade()
    actor = Actor("test:e2e")
    keys: dict[str, dict[Role, str]] = {}

    def org(name: str, kind: OrgKind, roles: list[Role], **kw: Any) -> None:
        with db.session() as s:
            o = org_service.create_organisation(s, actor, kind=kind, name=name, **kw)
            keys[name] = {r: org_service.create_key(s, actor, o, r).secret for r in roles}

    org("平台", OrgKind.platform, [Role.platform_admin, Role.platform_reviewer])
    for name in ("甲电商", "乙电商"):
        org(name, OrgKind.enterprise, [Role.enterprise_operator, Role.enterprise_node],
            business_types=[BusinessType.ecommerce], agreement_signed_on=date(2017, 1, 1), declared_users=1000)  # fmt: skip
    org("某市场监管局", OrgKind.department, [Role.department_officer], department_kind="market_regulation")
    db.dispose()
    return keys


def _person(rid: str, phone: str) -> dict[str, Any]:
    return {
        "subject": {
            "kind": "individual",
            "name": "张小三",
            "identifiers": [{"type": "resident_id", "value": rid}, {"type": "phone", "value": phone}],
        },
        "behaviours": ["order_brushing"],
        "role": "organizer",
        "severity": "serious",
        "basis": "judicial_decision",
        "document_number": "(2026)京0105刑初123号",
        "issuing_authority": "北京市朝阳区人民法院",
        "facts": "组织刷单。",
    }


def test_platform_two_nodes_and_a_department_end_to_end(cluster: Cluster) -> None:
    tmp = cluster.tmp
    keys = _setup_orgs(cluster.env["FCX_DATABASE_URL"])
    h = lambda org, role: {"X-API-Key": keys[org][role]}  # noqa: E731
    cluster.start_platform()
    api = httpx.Client(base_url=cluster.platform_url, timeout=60)

    def publish(body: dict[str, Any]) -> str:
        r = api.post("/v1/entries", json=body, headers=h("甲电商", Role.enterprise_operator))
        assert r.status_code == 201, r.text
        e = r.json()
        for action in ("start_review", "publish"):
            r = api.post(f"/v1/entries/{e['id']}/transitions", json={"action": action, "reason": "", "version": e["version"]},
                         headers=h("平台", Role.platform_reviewer))  # fmt: skip
            assert r.status_code == 200, r.text
            e = r.json()
        return e["id"]

    fp = api.get("/v1/sharing/keys", headers=h("平台", Role.platform_admin)).json()["signing"]["fingerprint"]

    # the department receiver
    secret_file = tmp / "dept.secret"
    secret_file.write_text("")
    received = tmp / "dept.jsonl"
    (tmp / "receiver.py").write_text(RECEIVER)
    _, dept_url = cluster.spawn("dept", [sys.executable, str(tmp / "receiver.py"), str(tmp / "dept.port"),
                                          str(secret_file), str(received)])  # fmt: skip
    r = api.post(
        "/v1/sharing/webhooks",
        json={"url": f"{dept_url}/hook"},
        headers=h("某市场监管局", Role.department_officer),
    )
    assert r.status_code == 201, r.text
    secret_file.write_text(r.json()["secret"])

    # two enterprise nodes, each with its own store and users, talking to the platform through the proxy
    nodes: dict[str, str] = {}
    users = {"甲电商": [("a1", PHONE_X), ("a2", PHONE_A2), ("a3", PHONE_W)], "乙电商": [("b1", PHONE_Y)]}
    for name, store in (("甲电商", "a"), ("乙电商", "b")):
        path = str(tmp / f"node_{store}.db")
        cluster.fcx("node", "init", "--platform", cluster.proxy.url, "--key", keys[name][Role.enterprise_node],
                    "--store", path, "--fingerprint", fp)  # fmt: skip
        csv_path = tmp / f"users_{store}.csv"
        csv_path.write_text("user_id,phone\n" + "".join(f"{u},{p}\n" for u, p in users[name]))
        out = cluster.fcx("node", "enroll", str(csv_path), "--id-col", "user_id", "--type", "phone",
                          "--value-col", "phone", "--store", path)  # fmt: skip
        assert f"Enrolled {len(users[name])} identifiers" in out
        _, url = cluster.spawn(f"node_{store}", [
            sys.executable, "-m", "fanchaoxin", "node", "serve", "--store", path, "--port", "0",
            "--port-file", str(tmp / f"node_{store}.port"), "--sync-interval", "1"])  # fmt: skip
        nodes[name] = url
        r = api.post(
            "/v1/sharing/webhooks",
            json={"url": f"{url}/v1/webhooks/feed"},
            headers=h(name, Role.enterprise_node),
        )
        assert r.status_code == 201, r.text
        cluster.fcx("node", "webhook-secret", r.json()["secret"], "--store", path)
        _wait(f"{name}'s node ready", lambda u=url: httpx.get(f"{u}/readyz").status_code == 200)

    def decide(name: str, phone: str) -> dict[str, Any]:
        r = httpx.post(f"{nodes[name]}/v1/decisions", timeout=10,
                       json={"scene": SCENE, "identifiers": [{"type": "phone", "value": phone}]})  # fmt: skip
        assert r.status_code == 200, r.text
        return r.json()

    def dept_events() -> list[dict[str, Any]]:
        if not received.exists():
            return []
        return [json.loads(line) for line in received.read_text().splitlines()]

    # 1. a published entry reaches everyone within seconds; each enterprise matches only its own users
    x = publish(_person(RID_A, PHONE_X))
    y = publish(_person(RID_B, PHONE_Y))
    _wait("node A matches X", lambda: x in decide("甲电商", PHONE_X)["entry_ids"])
    _wait("node B matches Y", lambda: y in decide("乙电商", PHONE_Y)["entry_ids"])
    a_x = decide("甲电商", PHONE_X)
    assert a_x["verdict"] != "allow" and a_x["feed_seq"] >= 2 and a_x["feed_age_seconds"] is not None
    # B's user, not enrolled at A: A evaluates its tag live (#16), once, and matches it too
    a_y = decide("甲电商", PHONE_Y)
    assert y in a_y["entry_ids"] and a_y["live_tag"] == "evaluated" and a_y["not_enrolled"] == []
    assert decide("甲电商", PHONE_Y)["live_tag"] == "cached"
    assert x in decide("乙电商", PHONE_X)["entry_ids"]
    assert decide("甲电商", PHONE_A2)["verdict"] == "allow"
    ev = _wait("the department receives X and Y in full", lambda: (
        {e["body"]["record"]["entry_id"]: e["body"] for e in dept_events() if "body" in e}
        if {x, y} <= {e["body"]["record"]["entry_id"] for e in dept_events() if "body" in e} else None))  # fmt: skip
    assert PHONE_X in json.dumps(
        ev[x], ensure_ascii=False
    )  # departments see plain identifiers (their role may)

    # need to know: node A fetches the details of its match (audited on the platform), not of others'
    r = httpx.get(
        f"{nodes['甲电商']}/v1/entries/{x}", headers={"X-FCX-Purpose": "support check of a match"}, timeout=30
    )
    assert r.status_code == 200 and r.json()["entry"]["id"] == x, r.text
    assert httpx.get(f"{nodes['乙电商']}/v1/entries/{x}", headers={"X-FCX-Purpose": "x"}).status_code == 404

    # 2. a tampered feed is refused: the proxy corrupts node A's deltas
    def corrupt(key: str, path: str, body: bytes) -> bytes:
        if key == keys["甲电商"][Role.enterprise_node] and "/v1/sharing/deltas" in path:
            raw = gzip.decompress(body)
            return gzip.compress(raw.replace(b'"serious"', b'"minor"'))
        return body

    cluster.proxy.tamper = corrupt
    z = publish({**_person(RID_A, PHONE_A2), "subject": {"kind": "individual", "name": "李四",
                 "identifiers": [{"type": "phone", "value": PHONE_A2}]}})  # fmt: skip
    _wait("node B gets Z", lambda: decide("乙电商", PHONE_Y)["feed_seq"] >= 3)
    _wait("node A refuses the tampered delta", lambda: "refused delta" in (tmp / "node_a.log").read_text())
    ready_a = httpx.get(f"{nodes['甲电商']}/readyz").json()
    assert ready_a["feed_seq"] == 2 and "signature does not verify" in (ready_a["last_error"] or "")
    assert decide("甲电商", PHONE_A2)["verdict"] == "allow"  # nothing of the forged delta applied
    cluster.proxy.tamper = None
    _wait("node A catches up after the tampering stops", lambda: z in decide("甲电商", PHONE_A2)["entry_ids"])

    # 3. the platform goes down: nodes keep deciding from their verified copy, then catch up
    instr = api.get(
        "/v1/instructions", params={"entry_id": x}, headers=h("甲电商", Role.enterprise_node)
    ).json()
    instruction_ids = [i["id"] for i in instr["instructions"] if i["status"] != "acknowledged"]
    assert instruction_ids, instr  # publication addressed instructions to 甲电商 (ecommerce)
    cluster.stop_platform()
    _wait(
        "node A notices the outage",
        lambda: httpx.get(f"{nodes['甲电商']}/readyz").json()["platform_reachable"] is False,
    )
    during = decide("甲电商", PHONE_X)
    assert during["verdict"] == a_x["verdict"] and x in during["entry_ids"]
    assert httpx.get(f"{nodes['乙电商']}/readyz").status_code == 200
    r = httpx.post(f"{nodes['甲电商']}/v1/instructions/{instruction_ids[0]}/ack")
    assert r.status_code == 202 and r.json()["queued"] is True
    cluster.start_platform()
    api = httpx.Client(base_url=cluster.platform_url, timeout=60)
    w = publish({**_person(RID_B, PHONE_W), "subject": {"kind": "individual", "name": "王五",
                 "identifiers": [{"type": "phone", "value": PHONE_W}]}})  # fmt: skip
    _wait("node A catches up after the restart", lambda: w in decide("甲电商", PHONE_W)["entry_ids"])
    _wait("the queued ack reaches the platform", lambda: any(
        i["id"] == instruction_ids[0] and i["acknowledged_at"]
        for i in api.get("/v1/instructions", params={"entry_id": x},
                         headers=h("甲电商", Role.enterprise_node)).json()["instructions"]))  # fmt: skip

    # 4. a revocation lifts everywhere
    e = api.get(f"/v1/entries/{x}", headers=h("平台", Role.platform_reviewer)).json()
    r = api.post(f"/v1/entries/{x}/transitions", json={"action": "revoke", "reason": "撤销", "version": e["version"]},
                 headers=h("平台", Role.platform_reviewer))  # fmt: skip
    assert r.status_code == 200, r.text
    _wait("node A lifts X", lambda: decide("甲电商", PHONE_X)["verdict"] == "allow")
    _wait(
        "the department hears of the revocation",
        lambda: any(
            e.get("body", {}).get("event") == "revoked" and e["body"]["record"]["entry_id"] == x
            for e in dept_events()
        ),
    )
    assert y in decide("乙电商", PHONE_Y)["entry_ids"]

    # the wire: nothing the nodes sent to the platform carries a plain identifier
    sent = cluster.proxy.records
    assert any(p == "/v1/sharing/evaluate" for _m, p, _k, _b in sent)
    blob = b"\n".join(m.encode() + b" " + p.encode() + b" " + b for m, p, _k, b in sent)
    for value in (PHONE_X, PHONE_Y, PHONE_A2, PHONE_W, RID_A, RID_B):
        for form in (value, "+86" + value, value[-8:]):
            assert form.encode() not in blob, f"{form} reached the platform"
    assert b"phone:" not in blob and b"resident_id:" not in blob
