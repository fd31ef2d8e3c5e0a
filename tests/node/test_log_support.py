"""A fake of the platform's transparency-log routes (#19) beside the fake feed, for the node's unit tests
(no tests in this file). Built from core.tlog alone, with the leaf format of the interface
(``{"type":"feed","seq":s,"event":<shared record>}``), so the node is tested apart from the platform.

``LogPlatform`` serves ``/v1/log/checkpoint``, ``/v1/log/tile/…`` (hash tiles and entry bundles),
``/v1/log/proof/consistency``, ``/v1/log/proof/inclusion?feed_seq=``, ``/v1/log/key`` and takes
``POST /v1/log/cosignature``. Each API key may be shown its own log (``views``): a split view.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

from fanchaoxin.core import crypto
from fanchaoxin.core import tlog as T
from fanchaoxin.sharing import protocol as P
from tests.node.test_node_support import FakePlatform

ORIGIN = "fanchaoxin.test/log"


class FakeLog:
    """A log: leaves, the tree, the signer; checkpoints at ``published`` (default: the whole tree)."""

    def __init__(self, profile: crypto.Profile | None = None, key: crypto.SigningKey | None = None) -> None:
        self.profile = profile or crypto.active()
        self.key = key or self.profile.generate_signing_key()
        self.signer = T.NoteSigner("fanchaoxin.test/log-key", self.key)
        self.tree = T.MerkleLog(self.profile.digest)
        self.leaves: list[bytes] = []
        self.feed_index: dict[int, int] = {}
        self.published: int | None = None
        self._signed: tuple[str, bytes] = ("", b"")
        self.cosignatures: dict[str, list[str]] = {}  # checkpoint text → cosignature lines served with it

    def copy(self) -> FakeLog:
        other = FakeLog(self.profile, self.key)
        for leaf in self.leaves:
            other.append(leaf)
        return other

    def rotate(self) -> None:
        """A new log key (``fcx log rotate-key``); the checkpoint served stays the old key's until the tree
        grows (the platform signs the next one with the new key)."""
        self.key = self.profile.generate_signing_key()
        self.signer = T.NoteSigner("fanchaoxin.test/log-key", self.key)

    def append(self, leaf: bytes) -> int:
        index = self.tree.append(leaf)
        self.leaves.append(leaf)
        parsed = json.loads(leaf)
        if parsed["type"] == "feed":
            self.feed_index[parsed["seq"]] = index
        return index

    def append_feed(self, line: dict[str, Any]) -> int:
        return self.append(P.canonical_json({"type": "feed", "seq": line["seq"], "event": line["record"]}))

    def append_audit(self, seq: int) -> int:
        return self.append(P.canonical_json({"type": "audit_head", "seq": seq, "hash": "ab" * 32}))

    @property
    def size(self) -> int:
        return self.tree.size if self.published is None else self.published

    def checkpoint(self) -> T.Checkpoint:
        return T.Checkpoint(ORIGIN, self.size, self.tree.root(self.size))

    def note(self) -> bytes:
        cp = self.checkpoint()
        lines = self.cosignatures.get(cp.text(), [])
        if self._signed[0] != cp.text():  # signed once per state, as the platform's job signs it
            self._signed = (cp.text(), T.sign_checkpoint(cp, [self.signer]))
        return self._signed[1] + "".join(lines).encode()

    def add_cosignature(self, note: str, line: str) -> None:
        text, _ = T.split_note(note.encode())
        self.cosignatures.setdefault(text, []).append(line)

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey()

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "origin": ORIGIN,
            "vkey": self.vkey,
            "profile": self.profile.name,
            "hash": self.profile.hash_algorithm,
        }

    def tile(self, path: str) -> bytes | None:
        size = self.size
        if path.startswith("tile/entries/"):
            for n in range((size + T.TILE_WIDTH - 1) // T.TILE_WIDTH):
                width = min(T.TILE_WIDTH, size - n * T.TILE_WIDTH)
                if T.entries_path(n, width) == path:
                    return T.entry_bundle(self.leaves[n * T.TILE_WIDTH : n * T.TILE_WIDTH + width])
            return None
        return dict(self.tree.tiles(size)).get(path)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class LogPlatform(FakePlatform):
    """The fake feed, with every event appended to the log as the platform appends it."""

    def __init__(self, log: FakeLog | None = None) -> None:
        self.log = log or FakeLog()
        self.views: dict[str, FakeLog] = {}  # API key → the log shown to it
        self.log_requests: list[str] = []
        self.posted: list[dict[str, Any]] = []
        self.enrolled: list[dict[str, Any]] = []  # POST /v1/nodes/keys (a department's witness key)
        self.with_log = True
        super().__init__()

    def append(self, event: str, rec: dict[str, Any]) -> int:
        seq = super().append(event, rec)
        self.log.append_feed(self.events[seq - 1])
        return seq

    def manifest(self) -> dict[str, Any]:
        body = dict(super().manifest()["manifest"])
        if self.with_log:
            body["log"] = self.log.manifest_entry()
        return P.sign_manifest(body, self.key)

    def view(self, api_key: str | None) -> FakeLog:
        return self.views.get(api_key or "", self.log)

    def _handler(self):  # type: ignore[no-untyped-def]
        fake = self
        base = super()._handler()

        class Handler(base):  # type: ignore[misc, valid-type]
            # headers and body go out in two writes: without this, delayed ACKs cost 40 ms a response
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if not url.path.startswith("/v1/log/"):
                    return super().do_GET()
                fake.log_requests.append(self.path)
                log = fake.view(self.headers.get("X-API-Key"))
                q = parse_qs(url.query)
                if url.path == "/v1/log/checkpoint":
                    return self._send(200, log.note(), "text/plain; charset=utf-8")
                if url.path == "/v1/log/key":
                    return self._json(
                        200,
                        {
                            "origin": ORIGIN,
                            "profile": log.profile.name,
                            "vkeys": [log.vkey],
                            "hash": log.profile.hash_algorithm,
                        },
                    )
                if url.path == "/v1/log/proof/consistency":
                    old, new = int(q["from"][0]), int(q["to"][0])
                    proof = log.tree.consistency_proof(old, new)
                    return self._json(200, {"from": old, "to": new, "proof": [b64(h) for h in proof]})
                if url.path == "/v1/log/proof/inclusion":
                    seq = int(q["feed_seq"][0])
                    if seq not in log.feed_index:
                        return self._json(404, {"detail": "no leaf for that feed event"})
                    i = log.feed_index[seq]
                    leaf = {"index": i, "leaf": b64(log.leaves[i]), "proof": []}
                    return self._json(200, {"tree_size": log.tree.size, "checkpoint": "", "leaves": [leaf]})
                if url.path.startswith("/v1/log/tile/"):
                    data = log.tile(url.path.removeprefix("/v1/log/"))
                    if data is None:
                        return self._json(404, {"detail": "no such tile"})
                    return self._send(200, data, "application/octet-stream")
                return self._json(404, {"detail": "not found"})

            def do_POST(self) -> None:
                if self.path == "/v1/nodes/keys":
                    body = json.loads(self._body())
                    fake.enrolled.append(body)
                    key_id = P.fingerprint(base64.b64decode(body["public_key"]))
                    return self._json(201, {"key_id": key_id, "label": body.get("label", "")})
                if self.path != "/v1/log/cosignature":
                    return super().do_POST()
                body = json.loads(self._body())
                fake.posted.append(body)
                fake.view(self.headers.get("X-API-Key")).add_cosignature(
                    body["checkpoint"], body["cosignature"]
                )
                return self._json(200, {"accepted": True})

        return Handler
