"""A small fake of the platform's sharing API, for the node's UNIT tests only (no tests in this file).

It serves what docs/sharing.md specifies — keys, signed manifest, snapshot, deltas (410 below the oldest
kept), blinded evaluation (with a 429 switch) and instruction ack/feedback — from feed files written with
``protocol.write_feed_file`` and a real ``oprf.KeyRing``, over a real socket (so a ``fcx node``
subprocess can use it too). The end-to-end test (test_node_e2e.py) runs against the real platform.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from fanchaoxin.sharing import oprf
from fanchaoxin.sharing import protocol as P

# the platform's keys under the profile the suite runs (FCX_CRYPTO_PROFILE): Ed25519, or SM2 under gm
SIGNING = P.SigningKey.generate("s1")
OTHER_SIGNING = P.SigningKey.generate("s9")

DENY_MEASURES = [
    {"code": "deny_new_account", "params": {}},
    {"code": "block_or_delete_account", "params": {}},
]


def record(
    entry_id: str,
    *,
    tags: list[str] = (),  # type: ignore[assignment]
    identifiers: list[str] | None = None,
    status: str = "published",
    measures: list[dict[str, Any]] | None = None,
    subject_kind: str = "individual",
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "entry_id": entry_id,
        "subject_kind": subject_kind,
        "behaviours": ["order_brushing"],
        "role": "organiser",
        "severity": "serious",
        "basis": "platform_rules",
        "status": status,
        "published_at": "2026-01-01T00:00:00+00:00",
        "min_end_on": None,
        "max_end_on": "2099-01-01",
        "parent_entry_id": None,
        "liable_role": None,
        "policy_version": 1,
        "measures": DENY_MEASURES if measures is None else measures,
        "tags": list(tags),
    }
    if identifiers is not None:
        r["identifiers"] = identifiers
        r["subject_name"] = "某某网店"
    return r


class FakePlatform:
    """Feed state + an HTTP server. ``publish``/``revoke`` append events; ``snapshot()`` rebuilds."""

    def __init__(self, key: P.SigningKey = SIGNING) -> None:
        self.key = key
        self.ring = oprf.KeyRing()
        self.ring.derive("k1", b"fake-oprf-seed" * 3, b"k1")
        self.events: list[dict[str, Any]] = []
        self.current: dict[str, dict[str, Any]] = {}
        self.snapshot_seq = 0
        self.snapshot_bytes = b""
        self.oldest_after = 0  # deltas after a seq below this answer 410
        self.requests: list[tuple[str, str, bytes]] = []
        self.instructions: list[tuple[str, str, Any]] = []
        self.quota_429 = 0  # answer this many evaluations with 429 first
        self.down = False  # answer 503 to everything
        self.rulebook: dict[str, Any] | None = None  # GET /v1/rulebook (None: a platform without it, 404)
        self.tamper: Callable[[str, bytes], bytes] | None = None  # (path, body) → body
        self.lock = threading.Lock()
        self.build_snapshot()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- feed ---------------------------------------------------------------------------------------

    def tag(self, type_: str, value: str) -> str:
        return self.ring.tag(oprf.identifier_input(type_, value))

    @property
    def head(self) -> int:
        return len(self.events)

    def append(self, event: str, rec: dict[str, Any]) -> int:
        with self.lock:
            seq = len(self.events) + 1
            self.events.append({"seq": seq, "event": event, "at": "2026-01-01T00:00:00Z", "record": rec})
            if rec["status"] in ("published", "disputed"):
                self.current[rec["entry_id"]] = rec
            else:
                self.current.pop(rec["entry_id"], None)
            return seq

    def publish(self, rec: dict[str, Any]) -> int:
        return self.append("published", rec)

    def revoke(self, entry_id: str) -> int:
        rec = dict(self.current[entry_id], status="revoked")
        return self.append("revoked", rec)

    def build_snapshot(self) -> None:
        with self.lock:
            self.snapshot_seq = self.head
            lines = [{"record": r} for r in self.current.values()]
            self.snapshot_bytes = P.write_feed_file(
                P.SNAPSHOT_FORMAT, {"seq": self.snapshot_seq, "count": len(lines)}, lines, self.key
            )

    def manifest(self) -> dict[str, Any]:
        return P.sign_manifest(
            {
                "head": self.head,
                "generated_at": datetime.now(UTC).isoformat(),
                "snapshot": {
                    "seq": self.snapshot_seq,
                    "count": len(self.current),
                    "digest": self.key.profile.hexdigest(self.snapshot_bytes),
                    "url": f"/v1/sharing/snapshots/{self.snapshot_seq}",
                },
                "oprf_key_ids": [k.key_id for k in self.ring.active()],
                "delta_url": "/v1/sharing/deltas?after={seq}",
            },
            self.key,
        )

    def delta(self, after: int, limit: int = 10_000) -> bytes:
        events = self.events[after : after + limit]
        end = after + len(events)
        return P.write_feed_file(
            P.DELTA_FORMAT, {"from": after, "to": end, "count": len(events)}, events, self.key
        )

    def keys(self) -> dict[str, Any]:
        return {
            "signing": {
                "key_id": self.key.key_id,
                "public_key": P.b64(self.key.public),
                "fingerprint": P.fingerprint(self.key.public),
                "algorithm": self.key.algorithm,
                "crypto_profile": self.key.profile.name,
            },
            "oprf": [
                {"key_id": k.key_id, "public_key": P.b64(k.pk), "active_until": None, "current": i == 0}
                for i, k in enumerate(self.ring.active())
            ],
        }

    # --- HTTP ---------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(
                self, status: int, body: bytes, ctype: str = "application/json", **headers: str
            ) -> None:
                if fake.tamper is not None:
                    body = fake.tamper(self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k.replace("_", "-"), v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, obj: Any, **headers: str) -> None:
                self._send(status, json.dumps(obj).encode(), **headers)

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, b""))
                if fake.down:
                    return self._json(503, {"detail": "down"})
                url = urlparse(self.path)
                if url.path == "/v1/sharing/keys":
                    return self._json(200, fake.keys())
                if url.path == "/v1/sharing/manifest":
                    return self._json(200, fake.manifest())
                if url.path.startswith("/v1/sharing/snapshots/"):
                    return self._send(200, fake.snapshot_bytes, "application/gzip")
                if url.path == "/v1/sharing/deltas":
                    q = parse_qs(url.query)
                    after = int(q["after"][0])
                    if after < fake.oldest_after:
                        return self._json(410, {"status": 410, "detail": "take the snapshot"})
                    limit = int(q.get("limit", ["10000"])[0])
                    return self._send(200, fake.delta(after, limit), "application/gzip")
                if url.path == "/v1/rulebook" and fake.rulebook is not None:
                    return self._json(200, fake.rulebook)
                return self._json(404, {"detail": "not found"})

            def do_POST(self) -> None:
                body = self._body()
                fake.requests.append(("POST", self.path, body))
                if fake.down:
                    return self._json(503, {"detail": "down"})
                if self.path == "/v1/sharing/evaluate":
                    if fake.quota_429 > 0:
                        fake.quota_429 -= 1
                        return self._json(429, {"status": 429, "detail": "quota"}, Retry_After="7")
                    req = json.loads(body)
                    blinded = [base64.b64decode(b) for b in req["blinded"]]
                    kid, evaluated, proof = fake.ring.blind_evaluate(blinded, req.get("key_id"))
                    return self._json(
                        200,
                        {"key_id": kid, "evaluated": [P.b64(e) for e in evaluated], "proof": P.b64(proof)},
                    )
                if self.path.startswith("/v1/instructions/"):
                    parts = self.path.split("/")
                    iid, action = parts[3], parts[4]
                    if iid == "unknown":
                        return self._json(404, {"status": 404, "detail": "no such instruction"})
                    fake.instructions.append((iid, action, json.loads(body) if body else None))
                    return self._json(200, {"id": iid, "status": "acknowledged"})
                return self._json(404, {"detail": "not found"})

        return Handler
