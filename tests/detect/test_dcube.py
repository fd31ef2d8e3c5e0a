"""D-Cube dense blocks (detect/dcube.py) on DuckDB: the paper's peeling by its definition, planted blocks,
the CLI's `--method dcube` and its refusals. Both engines, byte for byte: tests/detect/test_spark_dense.py."""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from fanchaoxin.detect import dcube, fraudar
from fanchaoxin.detect.cli_orders import app
from fanchaoxin.detect.sql import DuckSql
from fanchaoxin.simulate.marketplace import generate
from tests.detect.test_fraudar import planted


def run_duck(edges: list[tuple[str, str]], **kw):
    con = duckdb.connect()
    s, d = zip(*edges, strict=True) if edges else ((), ())
    con.register("fcx_dcube_in", pa.table({"s": pa.array(s, pa.string()), "d": pa.array(d, pa.string())}))
    return dcube.find_blocks(DuckSql(con), **kw)


def brute_blocks(edges, k, measure, policy):
    """D-Cube by its definition: each round peels one side's values of mass ≤ the side's average one by
    one, in ascending mass (ties: the lower id), and measures the block after every single removal."""
    edges = set(edges)
    out = []
    for _ in range(k):
        if not edges:
            break
        whole = (len(edges), len({s for s, _ in edges}), len({d for _, d in edges}))
        b = set(edges)
        best = None
        while b:
            mass = [{}, {}]
            for e in b:
                for side in (0, 1):
                    mass[side][e[side]] = mass[side].get(e[side], 0) + 1
            n, m_b = [len(mass[0]), len(mass[1])], len(b)
            key = dcube._key(measure, m_b, n[0], n[1], whole)
            if best is None or key > best[0]:
                best = (key, frozenset(b))

            def peel(side, mass=mass, n=n, m_b=m_b):
                return sorted((m, v) for v, m in mass[side].items() if m * n[side] <= m_b)

            if policy == "cardinality":
                side = 1 if n[1] >= n[0] else 0
            else:
                keys = []
                for x in (0, 1):
                    p = peel(x)
                    left, nx = m_b - sum(m for m, _ in p), n[x] - len(p)
                    keys.append(dcube._key(measure, left, *((nx, n[1]) if x == 0 else (n[0], nx)), whole))
                side = 1 if keys[1] >= keys[0] else 0
            gone: set = set()
            left, nx = m_b, n[side]
            for m, v in peel(side):
                gone.add(v)
                left, nx = left - m, nx - 1
                key = dcube._key(measure, left, *((nx, n[1]) if side == 0 else (n[0], nx)), whole)
                if key > best[0]:
                    best = (key, frozenset(e for e in b if e[side] not in gone))
            b = {e for e in b if e[side] not in gone}
        block = best[1]
        out.append((sorted({s for s, _ in block}), sorted({d for _, d in block})))
        edges -= block
    return out


def test_equals_the_definition_on_tiny_graphs():
    # one DuckDB run per case; every measure and policy on each graph
    for seed in range(6):
        rng = np.random.default_rng(seed)
        m, n = int(rng.integers(2, 10)), int(rng.integers(2, 10))
        e = int(rng.integers(3, 40))
        edges = sorted(
            {(f"a{x}", f"i{y}") for x, y in zip(rng.integers(0, m, e), rng.integers(0, n, e), strict=True)}
        )
        for measure in dcube.MEASURES:
            for policy in dcube.POLICIES:
                found, _ = run_duck(edges, k=3, measure=measure, policy=policy)
                want = brute_blocks(edges, 3, measure, policy)
                assert [(b.src, b.dst) for b in found.blocks] == want, (seed, measure, policy)


def test_hand_case_block_score_and_evidence():
    # a 3 × 3 biclique, a1 also on two outside items, and a sparse rest
    edges = [(f"a{u}", f"i{i}") for u in (1, 2, 3) for i in (1, 2, 3)] + [("a1", "x1"), ("a1", "x2")]
    edges += [(f"b{j}", f"x{j % 7}") for j in range(40)]
    found, paths = run_duck(edges, k=2, guard=fraudar.Guard(min_lift=1))
    first = found.blocks[0]
    assert first.src == ["a1", "a2", "a3"] and first.dst == ["i1", "i2", "i3"] and first.edges == 9
    assert first.score == 2 * 9 / 6 and first.reported  # ρ_ari = M / ((n1 + n2) / 2)
    ev = {a.account: (a.edges_in_block, a.edges, a.share_in_block) for a in first.accounts}
    assert ev == {"a1": (3, 5, 0.6), "a2": (3, 3, 1.0), "a3": (3, 3, 1.0)}
    g = found.graph
    assert (g.accounts, g.items, g.edges) == (43, 10, 51) and g.density == 2 * 51 / 53
    assert first.density_vs_graph == pytest.approx(first.score / g.density)
    assert paths[0].rounds >= 1 and len(found.blocks) == 2
    assert not set(found.blocks[1].src) & {"a2", "a3"}  # the block's edges were taken


def test_ties_keep_the_first_snapshot_and_blocks_stop_when_no_edges_are_left():
    # two disjoint 2 × 2 bicliques: each as dense as both (ρ_ari 2); no snapshot improves strictly on
    # the whole, so the first block is both, and nothing is left for a second
    edges = [(a, i) for a in ("a1", "a2") for i in ("i1", "i2")]
    edges += [(a, i) for a in ("b1", "b2") for i in ("j1", "j2")]
    found, _ = run_duck(edges, k=5)
    (b,) = found.blocks
    assert b.src == ["a1", "a2", "b1", "b2"] and b.dst == ["i1", "i2", "j1", "j2"] and b.edges == 8
    assert b.score == 2.0


@pytest.mark.parametrize("measure", ["ari", "susp"])
def test_finds_a_planted_camouflaged_ring(measure):
    r, c, ring_r, ring_c = planted()
    found, paths = run_duck([(f"a{x:05d}", f"i{y:05d}") for x, y in zip(r.tolist(), c.tolist(), strict=True)],
                            measure=measure)  # fmt: skip
    (b,) = found.blocks
    got = {int(x[1:]) for x in b.src}
    assert got >= ring_r  # every ring member
    assert {int(x[1:]) for x in b.dst} >= ring_c
    if measure == "ari":
        assert got == ring_r and b.lift > 20
    assert paths[0].rounds <= 20  # peeling below the average at once: few rounds


def _truth(sim: Path) -> tuple[set[str], set[str]]:
    users, products = set(), set()
    with (sim / "truth_edges.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            (users if row["node_kind"] == "user" else products).add(row["node_id"])
    return users, products


def test_cli_finds_the_simulators_planted_block(tmp_path):
    generate(tmp_path / "sim", seed=5, scale=1.0)
    users, products = _truth(tmp_path / "sim")
    out, rj = tmp_path / "blocks.json", tmp_path / "r.json"
    args = [
        "dense-blocks",
        "-i",
        str(tmp_path / "sim" / "edges.csv"),
        "--src",
        "userid",
        "--dst",
        "productid",
    ]
    args += [
        "-o",
        str(out),
        "-k",
        "2",
        "--method",
        "dcube",
        "--behaviour",
        "fake_review",
        "--report-json",
        str(rj),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "ρ_ari=" in res.output
    blocks = json.loads(out.read_text(encoding="utf-8"))
    first = set(blocks[0]["src"])
    assert first >= users and len(first & users) / len(first) >= 0.8  # recall 1, precision ≥ 0.8
    assert set(blocks[0]["dst"]) >= products
    report = json.loads(rj.read_text(encoding="utf-8"))
    meta = report["meta"]
    assert meta["method"] == "dcube" and meta["density_measure"] == "ari" and meta["policy"] == "cardinality"
    assert len(meta["rounds"]) == 2 and all(0 < r <= 30 for r in meta["rounds"])
    f = report["findings"][0]
    assert f["evidence"]["method"] == {"method": "dcube", "density_measure": "ari", "policy": "cardinality"}
    assert "D-Cube ρ_ari" in f["summary"]


def test_fraudar_stays_the_default_and_its_answer_unchanged(tmp_path):
    r, c, _, _ = planted(seed=2, m=500, n=150, e=3000, size=(15, 10), density=0.9)
    lines = ["buyer,shop"] + [f"b{x:04d},{y:03d}" for x, y in zip(r.tolist(), c.tolist(), strict=True)]
    src = tmp_path / "edges.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "blocks.json"
    res = CliRunner().invoke(
        app, ["dense-blocks", "-i", str(src), "--src", "buyer", "--dst", "shop", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    found = fraudar.detect_dense_blocks(str(src), "buyer", "shop", guard=fraudar.Guard())
    assert (
        out.read_text(encoding="utf-8")
        == json.dumps(fraudar.block_records(found.blocks), ensure_ascii=False) + "\n"
    )


def test_refusals_before_any_work(tmp_path):
    out = tmp_path / "o.json"
    base = ["dense-blocks", "-i", str(tmp_path / "nothere.csv"), "--src", "a", "--dst", "b", "-o", str(out)]
    res = CliRunner().invoke(app, [*base, "--engine", "spark"])
    assert res.exit_code == 2
    assert "FRAUDAR's greedy peeling is sequential" in res.output and "--method dcube" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(app, [*base, "--density", "susp"])
    assert res.exit_code == 2 and "--density belong(s) to --method dcube" in res.output
    res = CliRunner().invoke(app, [*base, "--method", "dcube", "--policy", "random"])
    assert res.exit_code == 2 and "unknown --policy 'random'" in res.output
    res = CliRunner().invoke(app, [*base, "--method", "dcube"])
    assert res.exit_code == 2 and "nothere.csv: no such file" in res.output
    assert not out.exists()


def test_missing_column_on_duckdb(tmp_path):
    src = tmp_path / "e.csv"
    src.write_text("user,item\nu1,i1\n", encoding="utf-8")
    res = CliRunner().invoke(
        app,
        [
            "dense-blocks",
            "-i",
            str(src),
            "--src",
            "user",
            "--dst",
            "ip",
            "-o",
            str(tmp_path / "o"),
            "--method",
            "dcube",
        ],
    )
    assert res.exit_code == 2 and "ip" in res.output and str(src) in res.output


def test_density_measures():
    whole = (100, 20, 30)
    assert dcube.density("ari", 12, 3, 4, whole) == 2 * 12 / 7
    assert dcube.density("geo", 12, 3, 4, whole) == pytest.approx(12 / 12**0.5)
    assert dcube.density("susp", 100, 20, 30, whole) == pytest.approx(0.0, abs=1e-9)  # the graph itself
    assert dcube.density("susp", 12, 3, 4, whole) > 0
    assert dcube.density("ari", 0, 3, 4, whole) == -1.0
    assert dcube._key("geo", 12, 3, 4, whole) == Fraction(144, 12)
