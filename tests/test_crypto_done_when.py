"""Issue #18 "done when", as an operator meets it: `make run` (fcx serve --demo) under the profile this run
uses, the manifest says the profile, `fcx audit verify` walks a chain hashed with that profile's digest
(SM3 under gm), and a start under the other profile is refused with the way out. `make test` runs this
file under both profiles (it is marked `crypto`); the node's verification of a gm feed is in tests/node."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from bench.loadgen import wait_until_serving

from fanchaoxin.core.audit import event_content
from fanchaoxin.core.crypto import profile
from fanchaoxin.core.settings import get_settings

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fcx(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fanchaoxin", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_demo_under_this_profile_with_its_chain_and_the_other_profile_refused(tmp_path: Path) -> None:
    name = get_settings().crypto_profile
    other = "gm" if name == "international" else "international"
    env = {
        **os.environ,
        "FCX_DATABASE_URL": f"sqlite:///{tmp_path / 'fcx.db'}",
        "FCX_DATA_KEY_FILE": str(tmp_path / "keys" / "data.json"),
        "FCX_SHARING_KEY_DIR": str(tmp_path / "sharing-keys"),
        "FCX_CRYPTO_PROFILE": name,
        "PYTHONUNBUFFERED": "1",
    }
    # The data key file is given explicitly, so it must exist: as an operator would, make it first.
    made = _fcx(["keys", "init-data"], env)
    assert made.returncode == 0, made.stdout + made.stderr
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "fanchaoxin", "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/healthz", server, timeout=90)
        printed = (tmp_path / "serve.log").read_text()
        node_key = re.search(r"enterprise_node\s+(fcx_\S+)", printed)
        assert node_key, printed
        answer = httpx.get(
            f"{base}/v1/sharing/manifest", headers={"Authorization": f"Bearer {node_key[1]}"}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        manifest = answer.json()["manifest"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    assert manifest["crypto_profile"] == name

    checked = _fcx(["audit", "verify"], env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Audit chain intact" in checked.stdout
    assert profile(name).hash_algorithm in checked.stdout

    # The chain really is in this profile's digest: the first event recomputes under it, not the other.
    with sqlite3.connect(tmp_path / "fcx.db") as conn:
        conn.row_factory = sqlite3.Row
        first = conn.execute("SELECT * FROM audit_events ORDER BY id LIMIT 1").fetchone()
    assert first is not None
    chained = (first["prev_hash"] + _content(first)).encode()
    assert profile(name).hexdigest(chained) == first["hash"]
    assert profile(other).hexdigest(chained) != first["hash"]

    refused = _fcx(["serve", "--port", str(_free_port())], {**env, "FCX_CRYPTO_PROFILE": other}, timeout=60)
    assert refused.returncode == 2
    said = " ".join((refused.stdout + refused.stderr).split())
    assert f"created under the '{name}' crypto profile" in said
    assert f"fcx crypto migrate --to {other}" in said


def _content(row: sqlite3.Row) -> str:
    return event_content(
        seq=row["id"],
        at=datetime.fromisoformat(row["at"]),
        actor=row["actor"],
        actor_org_id=uuid.UUID(row["actor_org_id"]) if row["actor_org_id"] else None,
        action=row["action"],
        target_type=row["target_type"],
        target_id=row["target_id"],
        before_digest=row["before_digest"],
        after_digest=row["after_digest"],
        detail=json.loads(row["detail"] or "{}"),
    )
