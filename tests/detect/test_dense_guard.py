"""`fcx detect dense-blocks` guarded (#20): blocks made of the rest of the graph are refused, never submitted.

On a real user × IP graph the 4th FRAUDAR block was 7,326 users × 5,104 IPs — the whole graph, no denser
than the graph itself — and would have been submitted. Here a simulated graph of that kind (every user on
one to three IPs drawn at random, plus three planted rings of accounts sharing a few IPs) gives the same:
asked for 4 blocks, FRAUDAR returns the rings and then most of the graph.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.core.roles import Role
from fanchaoxin.detect import fraudar
from fanchaoxin.detect import submit as S

runner = CliRunner()


def user_ip_graph(
    seed: int,
    users: int = 3000,
    ips: int = 2000,
    rings: tuple[tuple[int, int], ...] = ((25, 6), (20, 5), (30, 8)),
    density: float = 0.8,
) -> tuple[np.ndarray, np.ndarray, int, int, set[int]]:
    """Users on 1–3 random IPs each, and rings of users sharing a few IPs (each pair present at `density`)."""
    rng = np.random.default_rng(seed)
    r = np.repeat(np.arange(users), rng.integers(1, 4, users))
    c = rng.integers(0, ips, len(r))
    members, hubs = rng.permutation(users), rng.permutation(ips)
    rr, cc, ring_members = [r], [c], set()
    a = b = 0
    for m, n in rings:
        br, bc = members[a : a + m], hubs[b : b + n]
        a, b = a + m, b + n
        mask = rng.random((m, n)) < density
        rr.append(np.repeat(br, n)[mask.ravel()])
        cc.append(np.tile(bc, m)[mask.ravel()])
        ring_members |= set(br.tolist())
    return np.concatenate(rr), np.concatenate(cc), users, ips, ring_members


def test_the_fourth_block_of_a_user_ip_graph_is_most_of_the_graph_and_is_refused():
    r, c, m, n, ring = user_ip_graph(4)
    unguarded = fraudar.dense_blocks(r, c, m, n, k=4)
    assert len(unguarded) == 4 and not any(b.refused for b in unguarded)  # no guard: all four are "found"
    rest = unguarded[3]
    assert len(rest.src) > 0.5 * m and rest.lift < 2  # the finding: a population, not a ring

    found, _, _ = fraudar.find_blocks(r, c, m, n, k=4, guard=fraudar.Guard())
    assert [b.src for b in found.blocks] == [b.src for b in unguarded]  # the guard changes no block
    *rings, rest = found.blocks
    for b in rings:
        assert b.reported and b.lift > 100 and b.density_vs_graph > 1
        assert len(set(b.src) & ring) >= 0.9 * len(b.src)
    assert not rest.reported
    reasons = " | ".join(rest.refused)
    assert "density lift" in reasons and "< 5" in reasons
    assert "> 1,000" in reasons and "a population, not a ring" in reasons

    findings = fraudar.findings_from(found.blocks, behaviour="malicious_registration", src="user", dst="ip")
    assert [f.evidence["block"] for f in findings] == [1, 2, 3]
    assert set().union(*(f.subject_ids for f in findings)) == {str(x) for b in rings for x in b.src}
    (summary,) = fraudar.refused_summary(found.blocks)
    assert summary["block"] == 4 and summary["accounts"] == len(rest.src) and summary["refused_because"]


def test_a_block_no_denser_than_the_graph_by_fraudar_is_refused():
    # After the rings and the bulk are taken, what is left makes small blocks that FRAUDAR itself rates
    # below the whole graph: a high edge-density lift alone does not make them rings.
    r, c, m, n, _ = user_ip_graph(2, users=800, ips=500, rings=((10, 5), (8, 4), (12, 5)), density=0.9)
    blocks = fraudar.dense_blocks(r, c, m, n, k=6, guard=fraudar.Guard())
    low = [b for b in blocks if b.density_vs_graph < 1]
    assert low and all(not b.reported and any("FRAUDAR density" in x for x in b.refused) for b in low)


def test_guard_options_refuse_by_size_and_lift():
    r, c, m, n, _ = user_ip_graph(4)
    (b,) = fraudar.dense_blocks(r, c, m, n, k=1, guard=fraudar.Guard(max_accounts=5))
    assert not b.reported and any("> 5 (the most" in x for x in b.refused)
    (b,) = fraudar.dense_blocks(r, c, m, n, k=1, guard=fraudar.Guard(min_lift=1e6))
    assert not b.reported and any("density lift" in x for x in b.refused)
    (b,) = fraudar.dense_blocks(r, c, m, n, k=1, guard=fraudar.Guard(max_account_share=0.001))
    assert not b.reported and any("of the graph's 3,000" in x for x in b.refused)
    (b,) = fraudar.dense_blocks(r, c, m, n, k=1, guard=fraudar.Guard())
    assert b.reported


def test_per_account_evidence_counts_edges_inside_and_their_times(tmp_path: Path):
    # Accounts a1–a3 on items i1–i3 (all 9 pairs); a1 also on x1, x2 (outside), a2 on i1 twice (a repeat).
    rows = [(f"a{u}", f"i{i}", f"2024-03-0{u} 1{i}:00:00") for u in (1, 2, 3) for i in (1, 2, 3)]
    rows += [("a1", "x1", "2024-01-01 00:00:00"), ("a1", "x2", "2024-01-02 00:00:00")]
    rows += [("a2", "i1", "2024-03-09 08:00:00")]
    rows += [(f"b{k}", f"x{k % 7}", "2024-02-01 00:00:00") for k in range(40)]
    p = tmp_path / "edges.csv"
    p.write_text("user,item,ts\n" + "".join(f"{a},{b},{t}\n" for a, b, t in rows), encoding="utf-8")
    found = fraudar.detect_dense_blocks(str(p), "user", "item", time="ts", guard=fraudar.Guard())
    (b,) = found.blocks
    assert b.src == ["a1", "a2", "a3"] and b.dst == ["i1", "i2", "i3"] and b.edges == 9 and b.reported
    ev = {a.account: a for a in b.accounts}
    assert (ev["a1"].edges_in_block, ev["a1"].edges, ev["a1"].share_in_block) == (3, 5, 0.6)
    assert (ev["a2"].edges_in_block, ev["a2"].edges, ev["a2"].share_in_block) == (3, 3, 1.0)
    assert (ev["a1"].first_seen, ev["a1"].last_seen) == ("2024-03-01 11:00:00", "2024-03-01 13:00:00")
    # the repeated edge's later time counts: it is an edge inside the block
    assert (ev["a2"].first_seen, ev["a2"].last_seen) == ("2024-03-02 11:00:00", "2024-03-09 08:00:00")
    assert (b.first_seen, b.last_seen) == ("2024-03-01 11:00:00", "2024-03-09 08:00:00")
    assert found.graph.accounts == 43 and found.graph.rows == len(rows)


def _edges_csv(path: Path, seed: int = 2) -> tuple[Path, set[int]]:
    r, c, _, _, ring = user_ip_graph(seed, users=800, ips=500, rings=((10, 5), (8, 4), (12, 5)), density=0.9)
    lines = "".join(
        f"u{x:04d},10.0.{y // 250}.{y % 250}\n" for x, y in zip(r.tolist(), c.tolist(), strict=True)
    )
    path.write_text("user_id,ip\n" + lines, encoding="utf-8")
    return path, ring


def test_cli_writes_refused_blocks_with_reasons_and_per_account_evidence(tmp_path: Path):
    edges, _ = _edges_csv(tmp_path / "e.csv")
    out, rj, rh = tmp_path / "blocks.json", tmp_path / "r.json", tmp_path / "r.html"
    args = ["detect", "dense-blocks", "-i", str(edges), "--col", "src=user_id", "--dst", "ip", "-o", str(out)]
    res = runner.invoke(
        app,
        [
            *args,
            "-k",
            "4",
            "--behaviour",
            "malicious_registration",
            "--report-json",
            str(rj),
            "--report-html",
            str(rh),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "block 4 refused, not a finding and never submitted" in res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [d["status"] for d in doc] == ["reported"] * 3 + ["refused"]
    assert doc[3]["refused_because"] and all(not d["refused_because"] for d in doc[:3])
    acc = doc[0]["accounts"][0]
    assert (
        set(acc) == {"account", "edges_in_block", "edges", "share_in_block"}
        and acc["account"] in doc[0]["src"]
    )
    report = json.loads(rj.read_text(encoding="utf-8"))
    assert [f["evidence"]["block"] for f in report["findings"]] == [1, 2, 3]
    assert {f["behaviour"] for f in report["findings"]} == {"malicious_registration"}
    (refused,) = report["meta"]["refused_blocks"]
    assert refused["block"] == 4 and refused["accounts"] == len(doc[3]["src"])
    assert "a population, not a ring" in rh.read_text(encoding="utf-8")  # the reason, in the HTML too


def test_cli_behaviour_is_never_assumed(tmp_path: Path):
    edges, _ = _edges_csv(tmp_path / "e.csv")
    out = tmp_path / "blocks.json"
    base = ["detect", "dense-blocks", "-i", str(edges), "--src", "user_id", "--dst", "ip", "-o", str(out)]
    submit = ["--submit", "--platform", "http://testserver", "--key", "k", "--account-namespace", "ns"]
    res = runner.invoke(app, [*base, *submit])
    assert res.exit_code == 2 and not out.exists()
    assert "--submit need(s) --behaviour" in res.output
    assert "fake_review" in res.output and "malicious_registration" in res.output  # the choices, named
    res = runner.invoke(app, [*base, "--report-json", str(tmp_path / "r.json")])
    assert res.exit_code == 2 and "--behaviour" in res.output
    res = runner.invoke(app, [*base, "--behaviour", "brushing"])
    assert res.exit_code == 2 and "order_brushing" in res.output
    res = runner.invoke(app, base)  # the blocks alone need no behaviour
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())[0]["status"] == "reported"


def test_cli_columns_given_twice_or_missing(tmp_path: Path):
    edges, _ = _edges_csv(tmp_path / "e.csv")
    base = ["detect", "dense-blocks", "-i", str(edges), "-o", str(tmp_path / "b.json")]
    res = runner.invoke(app, [*base, "--src", "user_id", "--col", "src=ip", "--dst", "ip"])
    assert res.exit_code == 2 and "--src 'user_id' and --col src=ip name different columns" in res.output
    res = runner.invoke(app, [*base, "--src", "user_id"])
    assert res.exit_code == 2 and "--dst (or --col dst=COLUMN)" in res.output
    res = runner.invoke(app, [*base, "--src", "user_id", "--dst", "ip", "--col", "item=ip"])
    assert res.exit_code == 2 and "reads no column 'item'" in res.output
    res = runner.invoke(app, [*base, "--col", "src=user_id", "--col", "dst=ip", "--time", "ip"])
    assert res.exit_code == 2 and "different columns" in res.output and "Traceback" not in res.output


@pytest.fixture
def platform(client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(S, "open_client", lambda url: contextlib.nullcontext(client))
    monkeypatch.delenv("FCX_PLATFORM_URL", raising=False)
    monkeypatch.delenv("FCX_API_KEY", raising=False)
    return client


def test_refused_blocks_are_never_submitted(tmp_path: Path, platform: Any, world: Any):
    edges, _ = _edges_csv(tmp_path / "e.csv")
    out = tmp_path / "blocks.json"
    ent = world.enterprise("设备关联监测企业")
    key = ent.keys[Role.enterprise_operator]
    args = [
        "detect",
        "dense-blocks",
        "-i",
        str(edges),
        "--src",
        "user_id",
        "--dst",
        "ip",
        "-o",
        str(out),
        "-k",
        "4",
    ]
    args += ["--behaviour", "malicious_registration", "--submit", "--platform", "http://testserver"]
    res = runner.invoke(app, [*args, "--key", key, "--account-namespace", "ns"])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    reported = {x for d in doc if d["status"] == "reported" for x in d["src"]}
    refused_only = {x for d in doc if d["status"] == "refused" for x in d["src"]} - reported
    assert doc[3]["status"] == "refused" and len(refused_only) > 400
    resp = platform.get("/v1/entries", params={"limit": 1000}, headers=ent.headers(Role.enterprise_operator))
    assert resp.status_code == 200, resp.text
    entries = resp.json()["entries"]
    assert {e["behaviours"][0] for e in entries} == {"malicious_registration"}
    reviewer = world.platform().headers(Role.platform_reviewer)
    sent = set()
    for e in entries:
        d = platform.get(f"/v1/entries/{e['id']}", params={"reveal": "true"}, headers=reviewer)
        assert d.status_code == 200, d.text
        sent |= {i["value"] for i in d.json()["subject"]["identifiers"]}
        assert "edges_in_block=" in d.json()["facts"]  # the account's own numbers, for the reviewer
    assert sent == {f"ns:{x}" for x in reported}
