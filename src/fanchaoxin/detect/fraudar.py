"""Dense blocks in a bipartite graph — FRAUDAR (Hooi et al., KDD 2016) — for 炒信 rings.

A ring of accounts that brush orders (刷单) or write fake reviews (虚假评价) for the same set of shops or
products makes a dense block in the account × item graph, even when every member also adds
"camouflage" edges to popular items. FRAUDAR finds it by greedy peeling:

- Edge weight = column weight ``1 / log(deg(dst) + 5)``, deg counted on the whole current graph, so
  edges to popular items (where camouflage goes) count little.
- ``g(S) = f(S) / |S|``: f = sum of the weights of the edges inside S, |S| = number of src nodes +
  number of dst nodes in S.
- Start from the whole graph and repeatedly remove the node whose removal lowers f the least (its
  weighted degree inside S); remember the prefix of removals after which g was highest; that set is
  the block and its g the score ("density").
- K blocks: after each block, the edges inside it (src ∈ block × dst ∈ block) are removed and the
  next block is searched on what is left, with weights recomputed on it.

Semantics follow the reference code (rgmining-fraudar ``fraudar/export/greedy.py``,
``logWeightedAveDegree`` + ``detectMultiple``), checked against it:

- the graph is **binary**: a repeated (src, dst) edge counts once (the reference builds its matrix
  with ``M > 0``);
- ties are broken the reference's way: the smallest weighted degree first, a src node before a dst
  node at equal degree, then the lower index (our indices are the ids' sorted order). Degrees are
  summed in exact fixed point, so a tie is a tie; the reference sums floats in whatever order scipy
  leaves a row in, and a last-bit difference can send its peeling down another path (on random
  small graphs the two agree on the great majority; where they differ, it is such a tie);
- the score reported is the reference's ``bestAveScore``, g of the best prefix, strict improvement;
- nodes left without edges (after earlier blocks) are never part of a block — in the reference they
  are peeled first at no cost, which only raises g, so leaving them out gives the same blocks. When
  no edge is left, no further block is reported (the reference would return every node with score 0).

Speed. The peeling keeps a binary heap with lazy deletion (`heapq`): a node's key only ever
decreases, so each decrease pushes a new entry and outdated entries are skipped when popped. With
adjacency in flat lists this is one push per edge and O(|E| log |E|) in all, against the reference's
pure-Python min-tree walk for every edge endpoint.

Where FRAUDAR fits. It is made for camouflaged dense blocks in account × item graphs: review rings
(reviewer × product), lockstep likes or follows, accounts sharing devices or IPs. It is the wrong tool
for order brushing in a buyer × shop graph: a brushing shop is one item with a handful of buyers, no
block at all (on the Shopee orders the densest block held 3 brushing shops of 12); the Shopee rule
(detect/brushing.py, `fcx detect order-brushing`) finds them exactly.

Guard (#20). Greedy peeling always returns *some* block, and after the dense ones are taken it returns
whatever is left: on a real user × IP graph the 4th block was 7,326 users × 5,104 IPs, the whole graph,
no denser than the graph itself. So every block is checked (`Guard`) before it can become a finding:

- its edge density (edges / (accounts × items)) must be at least `min_lift` times the whole graph's
  (``lift``; rings score tens to hundreds, blocks made of the rest of the graph about 1–2);
- its FRAUDAR density g must be at least the whole graph's (``density_vs_graph`` ≥ 1: a block FRAUDAR
  itself rates below the graph as a whole is no dense block);
- it holds at most `max_accounts` accounts and at most `max_account_share` of the graph's accounts.

A block that fails is kept in the output with the reasons (``refused``) and never becomes a finding, so
it is never submitted. Each block carries per-account evidence: the account's edges inside the block,
the share of all its edges that lie inside, and, when the edges have times, the first and last of them.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.io import InputError, read_table
from fanchaoxin.detect.options import DEFAULT_TIMEZONE

__all__ = [
    "AccountEvidence",
    "Block",
    "DenseBlocks",
    "Graph",
    "Guard",
    "block_records",
    "dense_blocks",
    "detect_dense_blocks",
    "find_blocks",
    "findings_from",
    "peel",
    "refused_summary",
]

DETECTOR = "dense-blocks"


@dataclass
class AccountEvidence:
    """One account of a block: how much of what it did lies inside the block, and when."""

    account: Any  # node index (dense_blocks) or the id as read (detect_dense_blocks)
    edges_in_block: int  # distinct (account, item) edges inside the block
    edges: int  # the account's distinct edges in the whole graph
    share_in_block: float  # edges_in_block / edges
    first_seen: str | None = None  # first and last time of its edges inside the block (with --time)
    last_seen: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "account": self.account,
            "edges_in_block": self.edges_in_block,
            "edges": self.edges,
            "share_in_block": round(self.share_in_block, 6),
        }
        if self.first_seen is not None:
            out |= {"first_seen": self.first_seen, "last_seen": self.last_seen}
        return out


@dataclass
class Block:
    """One dense block: src and dst node indices (or ids), its density score and its edge count.

    `edge_density` is edges / (|src| × |dst|); `lift` that over the whole graph's; `density_vs_graph`
    the score over the whole graph's FRAUDAR density. `refused` lists why the guard refused the block
    (empty: it is reported).
    """

    src: list
    dst: list
    score: float
    edges: int
    edge_density: float = math.nan
    lift: float = math.nan
    density_vs_graph: float = math.nan
    accounts: list[AccountEvidence] = field(default_factory=list)
    first_seen: str | None = None
    last_seen: str | None = None
    refused: list[str] = field(default_factory=list)

    @property
    def reported(self) -> bool:
        return not self.refused


@dataclass(frozen=True)
class Graph:
    """The whole input graph, which the blocks are measured against."""

    accounts: int  # src nodes with at least one edge
    items: int  # dst nodes with at least one edge
    edges: int  # distinct (src, dst) edges
    rows: int  # input rows (repeated edges and times included)
    edge_density: float  # edges / (accounts × items)
    density: float  # FRAUDAR's g of the whole graph (column weights on the whole graph)
    # what `density` is, in the guard's reasons (D-Cube's graphs carry its average mass, detect/dcube.py)
    density_name: str = "FRAUDAR density"


@dataclass(frozen=True)
class Guard:
    """What a block must be to become a finding (see the module docstring)."""

    min_lift: float = 5.0
    max_accounts: int = 1000
    max_account_share: float = 0.5

    def reasons(self, block: Block, graph: Graph) -> list[str]:
        """Why `block` is refused, one line per failed check; empty when it passes."""
        out = []
        n = len(block.src)
        if not block.lift >= self.min_lift:
            out.append(
                f"density lift {block.lift:.3g} < {self.min_lift:g}: edge density {block.edge_density:.3g} "
                f"against the graph's {graph.edge_density:.3g}"
            )
        if not block.density_vs_graph >= 1:
            out.append(
                f"{graph.density_name} {block.score:.4g} below the whole graph's {graph.density:.4g}: "
                "no denser than the graph itself"
            )
        if n > self.max_accounts:
            out.append(f"{n:,} accounts > {self.max_accounts:,} (the most a block may hold)")
        if n > self.max_account_share * graph.accounts:
            out.append(
                f"{n:,} accounts are {n / max(graph.accounts, 1):.0%} of the graph's {graph.accounts:,} "
                f"(> {self.max_account_share:.0%}): a population, not a ring"
            )
        return out


@dataclass
class DenseBlocks:
    """What `detect_dense_blocks` found: the graph and its blocks, refused ones included, in order."""

    graph: Graph
    blocks: list[Block]

    # iterable as the list of blocks detect_dense_blocks returned before #20 (bench/bench_detectors.py)
    def __iter__(self) -> Iterator[Block]:
        return iter(self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)


def _column_weights(cols: np.ndarray, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Column weights 1/log(deg + 5) (the reference's, deg on the whole current graph) and degrees."""
    deg = np.bincount(cols, minlength=n_cols)
    return 1.0 / np.log(deg + 5.0), deg


def _fixed_point(w: np.ndarray, deg: np.ndarray, n_edges: int) -> tuple[np.ndarray, float]:
    """Weights as integers w × 2^k (rounded) and the scale 2^k.

    k ≤ 40 (weights to ~1e-12), and small enough that any node's weighted degree stays below 2^53
    (so float64 `bincount` sums of them are exact) and the total below 2^62.
    """
    top = float(np.max(w * deg)) if len(deg) else 1.0
    bits = min(
        40, int(np.floor(np.log2(2.0**53 / max(top, 1.0)))), int(np.floor(np.log2(2.0**62 / max(n_edges, 1))))
    )
    scale = float(2**bits)
    return np.rint(w * scale).astype(np.int64), scale


def _int_bincount(keys: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    # exact: every partial sum is a node's (part of its) weighted degree, < 2^53 by _fixed_point
    return np.bincount(keys, weights=weights, minlength=n).astype(np.int64)


class _Cores:
    """τ-cores of one graph for a rising τ: the largest node set in which every node's weighted degree
    is ≥ τ, found by removing, round after round, every node below τ (vectorised).

    Cores are nested (C_τ' ⊆ C_τ for τ' > τ), so each τ goes on from the core of the last one. Each
    node's edges are listed once (CSR), so a round costs the edges of the nodes it removes, not the
    whole graph: the bulk of a million-edge graph falls away over dozens of rounds.
    """

    def __init__(self, u: np.ndarray, v: np.ndarray, ew: np.ndarray, delta: np.ndarray) -> None:
        self.u, self.v, self.ew = u, v, ew
        self.delta = delta.copy()
        self.live = np.ones(len(u), dtype=bool)
        self.f = int(ew.sum())  # total edge weight inside the current core
        n_edges, n_nodes = len(u), len(delta)
        # rows (u) all come before columns (v) in the node space, so u's order then v's is the CSR order;
        # the rows usually arrive sorted already (edges are built sorted by (row, col))
        by_u = np.arange(n_edges) if bool(np.all(u[1:] >= u[:-1])) else np.argsort(u)
        self.edge_of = np.concatenate([by_u, np.argsort(v)])
        counts = np.bincount(u, minlength=n_nodes) + np.bincount(v, minlength=n_nodes)
        self.indptr = np.concatenate([[0], np.cumsum(counts)])

    def size(self) -> int:
        return int(np.count_nonzero(self.delta))

    def shrink_to(self, tau: int) -> None:
        n_edges, n_nodes = len(self.u), len(self.delta)
        while True:
            low = np.flatnonzero((self.delta < tau) & (self.delta > 0))
            if not len(low):
                return
            starts, lens = self.indptr[low], self.indptr[low + 1] - self.indptr[low]
            # the positions starts[i] … starts[i] + lens[i] - 1 of every low node, in one array
            pos = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
            e = self.edge_of[pos]
            is_low = np.zeros(n_nodes, dtype=bool)
            is_low[low] = True
            # an edge between two low nodes is listed under both: keep it under its row only
            e = e[self.live[e] & ((pos < n_edges) | ~is_low[self.u[e]])]
            self.live[e] = False
            w = self.ew[e]
            self.f -= int(w.sum())
            self.delta -= _int_bincount(self.u[e], w, n_nodes) + _int_bincount(self.v[e], w, n_nodes)
            self.delta[low] = 0


def _start_set(
    u: np.ndarray, v: np.ndarray, ew: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where the greedy peeling may start without changing its result: a dense enough core.

    Peeling by smallest weighted degree passes through every τ-core C_τ (until it is reached, the node
    removed always lies outside it: some outside node is below τ, every core node is ≥ τ); it has no
    memory, so from C_τ on it runs as if started there. And if g(C_τ) ≥ τ, every earlier set had a
    strictly lower g (adding back a node of degree < τ to a set with g ≥ τ lowers g), so the best
    prefix — the block — is found by peeling C_τ alone. Cores shrink as τ grows; τ climbs a ladder
    (×5/4 from the average g) and the last τ with g(C_τ) ≥ τ wins. On graphs with a planted ring this
    leaves a few thousand edges of a million for the exact, sequential part.
    """
    cores = _Cores(u, v, ew, delta)
    best_live, best_delta = cores.live.copy(), delta
    tau = cores.f // max(cores.size(), 1)
    while tau > 0:
        cores.shrink_to(tau)
        c_size, c_f = cores.size(), cores.f
        if c_size == 0:
            break
        if c_f >= tau * c_size:  # g(C_τ) ≥ τ: a valid start
            best_live, best_delta = cores.live.copy(), cores.delta.copy()
        tau = max(tau + 1, tau * 5 // 4, c_f // c_size if c_f >= tau * c_size else 0)
    return best_live, best_delta


def peel(
    rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, *, prune: bool = True
) -> tuple[np.ndarray, np.ndarray, float]:
    """One FRAUDAR block of the binary graph given by unique edges (rows[i], cols[i]).

    Returns (row indices, col indices, score g), indices sorted. Weighted degrees are kept in exact
    fixed point (weights rounded to ~2^-40): mathematically equal degrees then compare equal, so ties
    are broken by the rule (rows first, lower index) and not by floating-point noise, which in the
    reference depends on the order scipy happens to sum a row in. `prune` starts the peeling at a
    core that provably leads to the same block (see `_start_set`); False peels the whole graph.
    """
    m = int(n_rows)
    n_nodes = m + int(n_cols)
    w_real, deg = _column_weights(cols, n_cols)
    w_int, scale = _fixed_point(w_real, deg, len(rows))
    ew = w_int[cols]
    # One node space: rows are 0..m-1, cols m..m+n-1; an edge's weight is its column's weight, and
    # removing either end lowers the other's weighted degree by it.
    u = rows.astype(np.int64)
    v = cols.astype(np.int64) + m
    delta = _int_bincount(u, ew, n_nodes) + _int_bincount(v, ew, n_nodes)
    if prune:
        live, delta = _start_set(u, v, ew, delta)
        u, v, ew = u[live], v[live], ew[live]

    # Heap keys are single ints  delta << B | node: ints compare much faster than tuples, and the
    # order is (delta, node), i.e. the reference's tie rule (rows before cols, then lower index).
    nb = max(n_nodes, 1).bit_length()
    mask = (1 << nb) - 1
    uu = np.concatenate([u, v])
    order = np.argsort(uu, kind="stable")
    adj = np.concatenate([v, u])[order].tolist()
    adj_w = [x << nb for x in np.concatenate([ew, ew])[order].tolist()]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(uu, minlength=n_nodes))]).tolist()

    nodes_in = np.flatnonzero(delta > 0)
    key = [0] * n_nodes
    heap = []
    for d, x in zip(delta[nodes_in].tolist(), nodes_in.tolist(), strict=True):
        k = (d << nb) | x
        key[x] = k
        heap.append(k)
    heapq.heapify(heap)
    alive = bytearray(n_nodes)
    for x in nodes_in.tolist():
        alive[x] = 1

    rows_left = int(np.count_nonzero(nodes_in < m))
    cols_left = len(nodes_in) - rows_left
    size = rows_left + cols_left
    cur = int(ew.sum())
    # g compared exactly as fractions: cur/size > best_cur/best_size ⇔ cur·best_size > best_cur·size
    best_cur, best_size = cur, max(size, 1)
    best_k = 0
    removed: list[int] = []
    pop, push = heapq.heappop, heapq.heappush
    while rows_left and cols_left:
        k = pop(heap)
        x = k & mask
        if k != key[x] or not alive[x]:
            continue  # an outdated entry: the node was removed or its degree has dropped since
        alive[x] = 0
        removed.append(x)
        cur -= k >> nb
        if x < m:
            rows_left -= 1
        else:
            cols_left -= 1
        a, b = indptr[x], indptr[x + 1]
        for y, wy in zip(adj[a:b], adj_w[a:b], strict=True):
            if alive[y]:
                ky = key[y] - wy
                key[y] = ky
                push(heap, ky)
        size -= 1
        if cur * best_size > best_cur * size:
            best_cur, best_size = cur, size
            best_k = len(removed)

    keep = np.zeros(n_nodes, dtype=bool)
    keep[nodes_in] = True
    keep[np.asarray(removed[:best_k], dtype=np.int64)] = False
    nodes = np.flatnonzero(keep)
    return nodes[nodes < m], nodes[nodes >= m] - m, best_cur / best_size / scale


def _unique_edges(rows: np.ndarray, cols: np.ndarray, n_cols: int) -> np.ndarray:
    """The distinct edges as sorted keys row × n_cols + col (a repeated edge counts once)."""
    key = np.sort(np.asarray(rows, dtype=np.int64) * n_cols + np.asarray(cols, dtype=np.int64))
    if len(key):  # np.unique, but sorting is several times faster than its hash path here
        key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return key


def _whole_graph(keys: np.ndarray, n_rows: int, n_cols: int, n_input_rows: int) -> Graph:
    r, c = keys // n_cols, keys % n_cols
    accounts = int(np.count_nonzero(np.bincount(r, minlength=n_rows)))
    col_deg = np.bincount(c, minlength=n_cols)
    items = int(np.count_nonzero(col_deg))
    w = 1.0 / np.log(col_deg + 5.0)
    nodes = accounts + items
    return Graph(
        accounts=accounts,
        items=items,
        edges=len(keys),
        rows=n_input_rows,
        edge_density=len(keys) / (accounts * items) if nodes else math.nan,
        density=float(w[c].sum()) / nodes if nodes else math.nan,
    )


def find_blocks(
    rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, k: int = 1, guard: Guard | None = None
) -> tuple[DenseBlocks, np.ndarray, np.ndarray]:
    """Up to `k` blocks on integer-coded edges, measured against the whole graph and, given a `guard`,
    checked by it; blocks hold node indices and per-account evidence (without times).

    Also returns the distinct edges' sorted keys (row × n_cols + col) and, for each, the 1-based number
    of the block that took it (0: none), from which callers add what the edges carry (times).
    """
    keys = _unique_edges(rows, cols, n_cols)
    graph = _whole_graph(keys, n_rows, n_cols, len(rows))
    r, c = keys // n_cols, keys % n_cols
    row_deg = np.bincount(r, minlength=n_rows)
    label = np.zeros(len(keys), dtype=np.int32)
    live = np.arange(len(keys))  # positions in `keys` of the edges not yet taken by a block
    out: list[Block] = []
    for number in range(1, k + 1):
        if len(live) == 0:
            break
        br, bc, score = peel(r[live], c[live], n_rows, n_cols)
        in_r = np.zeros(n_rows, dtype=bool)
        in_r[br] = True
        in_c = np.zeros(n_cols, dtype=bool)
        in_c[bc] = True
        inside = in_r[r[live]] & in_c[c[live]]
        taken = live[inside]
        label[taken] = number
        live = live[~inside]  # the next block is searched without this block's edges
        edges = len(taken)
        in_block = np.bincount(r[taken], minlength=n_rows)[br]
        density = edges / (len(br) * len(bc))
        block = Block(
            br.tolist(),
            bc.tolist(),
            score,
            edges,
            edge_density=density,
            lift=density / graph.edge_density,
            density_vs_graph=score / graph.density,
            accounts=[
                AccountEvidence(a, e, t, e / t)
                for a, e, t in zip(br.tolist(), in_block.tolist(), row_deg[br].tolist(), strict=True)
            ],
        )
        if guard is not None:
            block.refused = guard.reasons(block, graph)
        out.append(block)
    return DenseBlocks(graph, out), keys, label


def dense_blocks(
    rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, k: int = 1, guard: Guard | None = None
) -> list[Block]:
    """Up to `k` blocks on integer-coded edges (duplicates allowed, counted once), as index lists."""
    return find_blocks(rows, cols, n_rows, n_cols, k, guard)[0].blocks


def _sorted_codes(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    enc = pc.dictionary_encode(arr)
    order = pc.sort_indices(enc.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[enc.indices.to_numpy(zero_copy_only=False)], enc.dictionary.take(pa.array(order))


def _fmt_epoch(seconds: int) -> str:
    # epoch() of a naive TIMESTAMP counts its wall time as UTC: formatting in UTC gives it back
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _add_times(
    found: DenseBlocks,
    keys: np.ndarray,
    label: np.ndarray,
    s_code: np.ndarray,
    d_code: np.ndarray,
    n_cols: int,
    seconds: np.ndarray,
) -> None:
    """First and last time of each account's edges inside its block (every input row of those edges)."""
    row_block = label[np.searchsorted(keys, s_code * n_cols + d_code)]
    for number, block in enumerate(found.blocks, 1):
        sel = np.flatnonzero(row_block == number)
        accounts = np.asarray(block.src, dtype=np.int64)  # sorted indices
        pos = np.searchsorted(accounts, s_code[sel])
        t = seconds[sel]
        first = np.full(len(accounts), np.iinfo(np.int64).max)
        last = np.full(len(accounts), np.iinfo(np.int64).min)
        np.minimum.at(first, pos, t)
        np.maximum.at(last, pos, t)
        for ev, lo, hi in zip(block.accounts, first.tolist(), last.tolist(), strict=True):
            ev.first_seen, ev.last_seen = _fmt_epoch(lo), _fmt_epoch(hi)
        if len(t):
            block.first_seen, block.last_seen = _fmt_epoch(int(t.min())), _fmt_epoch(int(t.max()))


def detect_dense_blocks(
    path: str,
    src: str,
    dst: str,
    *,
    k: int = 1,
    time: str | None = None,
    guard: Guard | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    con: duckdb.DuckDBPyConnection | None = None,
) -> DenseBlocks:
    """Read an edge list (CSV/Parquet) and return `k` blocks with ids as read (text).

    `src`, `dst` and `time` are the file's columns; `time` (optional) gives each account's first and
    last time inside its block, read in `timezone` where a time has no offset.
    """
    names = [src, dst] + ([time] if time is not None else [])
    if len(set(names)) < len(names):
        same = next(x for x in names if names.count(x) > 1)
        raise InputError(f"--src, --dst and --time must name different columns; {same!r} is given twice")
    types = {src: "VARCHAR", dst: "VARCHAR"} | ({time: "TIMESTAMP"} if time is not None else {})
    rel = read_table(path, names, types=types, timezone=timezone, con=con)
    q = {x: '"' + x.replace('"', '""') + '"' for x in names}
    cols = f"{q[src]} AS s, {q[dst]} AS d" + (f", CAST(epoch({q[time]}) AS BIGINT) AS t" if time else "")
    table = rel.select(cols).to_arrow_table().combine_chunks()
    s_code, s_ids = _sorted_codes(table.column("s").chunk(0))
    d_code, d_ids = _sorted_codes(table.column("d").chunk(0))
    found, keys, label = find_blocks(s_code, d_code, len(s_ids), len(d_ids), k, guard)
    if time is not None:
        seconds = table.column("t").to_numpy()
        _add_times(found, keys, label, s_code, d_code, len(d_ids), seconds)
    for b in found.blocks:
        b.src = s_ids.take(pa.array(b.src, type=pa.int64())).to_pylist()
        b.dst = d_ids.take(pa.array(b.dst, type=pa.int64())).to_pylist()
        for ev, account in zip(b.accounts, b.src, strict=True):
            ev.account = account
    return found


def block_records(blocks: list[Block]) -> list[dict[str, Any]]:
    """The blocks as blocks.json has them: every block in the order found, refused ones with reasons."""
    out = []
    for i, b in enumerate(blocks, 1):
        rec: dict[str, Any] = {
            "block": i,
            "status": "reported" if b.reported else "refused",
            "refused_because": b.refused,
            "src": b.src,
            "dst": b.dst,
            "score": b.score,
            "edges": b.edges,
            "edge_density": b.edge_density,
            "lift": b.lift,
            "density_vs_graph": b.density_vs_graph,
        }
        if b.first_seen is not None:
            rec |= {"first_seen": b.first_seen, "last_seen": b.last_seen}
        rec["accounts"] = [a.to_dict() for a in b.accounts]
        out.append(rec)
    return out


def refused_summary(blocks: list[Block]) -> list[dict[str, Any]]:
    """The refused blocks in a few numbers each (for the reports' run table; ids stay in blocks.json)."""
    return [
        {
            "block": i,
            "accounts": len(b.src),
            "items": len(b.dst),
            "edges": b.edges,
            "lift": round(b.lift, 4),
            "density_vs_graph": round(b.density_vs_graph, 4),
            "refused_because": b.refused,
        }
        for i, b in enumerate(blocks, 1)
        if not b.reported
    ]


def findings_from(
    blocks: list[Block],
    *,
    behaviour: str,
    src: str,
    dst: str,
    density_name: str = "FRAUDAR density",
    method: dict[str, Any] | None = None,
) -> list[Finding]:
    """One `Finding` per reported block (refused blocks make none); the src accounts are the subjects,
    the dst items and each account's numbers are evidence. `block` is the block's number in the order
    found, refused ones counted. `density_name` names the score in the summary and `method` (D-Cube's
    measure and policy, detect/dcube.py) is added to the evidence when given."""
    out = []
    for i, b in enumerate(blocks, 1):
        if not b.reported:
            continue
        evidence: dict[str, Any] = {
            "block": i,
            "src_column": src,
            "dst_column": dst,
            "src": [str(x) for x in b.src],
            "dst": [str(x) for x in b.dst],
            "edges": b.edges,
            "density": b.score,
            "edge_density": b.edge_density,
            "lift": b.lift,
            "density_vs_graph": b.density_vs_graph,
        }
        if b.first_seen is not None:
            evidence |= {"first_seen": b.first_seen, "last_seen": b.last_seen}
        if method is not None:
            evidence["method"] = method
        evidence["accounts"] = [a.to_dict() | {"account": str(a.account)} for a in b.accounts]
        out.append(
            Finding(
                detector=DETECTOR,
                behaviour=behaviour,
                subject_kind="platform_account",
                subject_ids=[str(x) for x in b.src],
                score=b.score,
                summary=(
                    f"dense block {i}: {len(b.src)} {src} × {len(b.dst)} {dst}, {b.edges} edge(s), "
                    f"{density_name} {b.score:.3f}, {b.lift:.3g}× the graph's edge density"
                ),
                evidence=evidence,
            )
        )
    return out
