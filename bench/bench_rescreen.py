"""Continuous re-screening benchmark (issue #16): 1,000,000 enrolled users against a 10,000-event delta.

    .venv/bin/python -m bench.bench_rescreen [--users 1000000] [--entries 100000] [--delta 10000] [--runs 5]

Setup (not timed unless said): a node store with `--entries` entries in force (a snapshot, as in
bench_node.py), `--users` enrolled users written as `fcx node enroll` leaves them (HMAC + tag; 1% of them
listed by an entry of the snapshot), then one full reconciliation (timed: what a snapshot, or the first
apply after an enrolment, costs). Then a delta of `--delta` events (60% new publications, half of them
naming an enrolled user's tag; 20% disputes and 20% revocations of existing entries, half of those of
entries that concern an enrolled user), and:

1. the re-screening step of `sync.apply_delta` alone (`hits.rescreen_delta`: the delta's tags looked up
   in the users' tag index, the state of its entries read, the hits appended), inside a transaction
   rolled back after each run so every run starts from the same store — median and spread of `--runs`;
   target ≤ 5 s;
2. one real `sync.apply_delta` (entries + re-screening + commit), for the whole apply's figure.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.bench_node import KEY, fake_tag, make_record, new_store, rss_mb
from fanchaoxin.node import hits
from fanchaoxin.node.sdk import id_hmac
from fanchaoxin.node.store import ENTRY_COLUMNS, IN_FORCE_STATUSES, Store, entry_row
from fanchaoxin.node.sync import apply_delta, apply_snapshot, read_feed
from fanchaoxin.sharing import protocol as P

MARKS = ", ".join("?" * len(ENTRY_COLUMNS.split(",")))


def enroll_users(store: Store, records: list[dict], users: int, rng: random.Random) -> list[str]:
    """Users as `fcx node enroll` leaves them; 1% listed by a snapshot entry. Returns their tags."""
    secret = P.unb64(store.get_config()["node_secret"], "secret")
    tags = []
    rows = []
    for j in range(users):
        tag = records[rng.randrange(len(records))]["tags"][0] if j % 100 == 0 else fake_tag(rng)
        tags.append(tag)
        rows.append(
            (id_hmac(secret, f"phone:+86{13_000_000_000 + j}"), "k1", f"u{j}", "phone", tag, time.time())
        )
    with store.transaction() as conn:
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO node_users(id_hmac, key_id, user_ref, id_type, tag, enrolled_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        store.set_config(conn, users_version="bench")
    return tags


def make_delta(
    head: int, records: list[dict], hit_entries: list[dict], user_tags: list[str], n: int, rng: random.Random
) -> bytes:
    events = []
    for k in range(n):
        roll = k % 10
        if roll < 6:  # a new publication, half of them of an enrolled user
            tags = [rng.choice(user_tags) if k % 2 else fake_tag(rng), fake_tag(rng)]
            r, event = make_record(len(records) + k, rng, tags=tags), "published"
        else:  # a dispute or revocation, half of them of an entry that concerns an enrolled user
            pool = hit_entries if k % 2 and hit_entries else records
            r = dict(pool[rng.randrange(len(pool))], status="disputed" if roll < 8 else "revoked")
            event = r["status"]
        events.append({"seq": head + k + 1, "event": event, "at": "2026-02-01T00:00:00Z", "record": r})
    return P.write_feed_file(P.DELTA_FORMAT, {"from": head, "to": head + n, "count": n}, events, KEY)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--delta", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-rescreen-"))
    try:
        store = new_store(tmp / "node.db")
        t = time.perf_counter()
        records = [make_record(i, rng) for i in range(args.entries)]
        data = P.write_feed_file(
            P.SNAPSHOT_FORMAT,
            {"seq": args.entries, "count": args.entries},
            ({"record": r} for r in records),
            KEY,
        )
        apply_snapshot(store, read_feed(data, KEY.public, P.SNAPSHOT_FORMAT))
        print(f"setup: snapshot of {args.entries:,} entries applied in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        user_tags = enroll_users(store, records, args.users, rng)
        print(f"setup: {args.users:,} users enrolled (HMAC + tag rows) in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        with store.transaction() as conn:
            full = hits.rescreen_all(conn, feed_seq=args.entries, cfg=store.get_config(conn))
        print(
            f"FULL RECONCILIATION {args.users:,} users × {args.entries:,} entries (after a snapshot or an "
            f"enrolment): {time.perf_counter() - t:.2f} s, {full.hit:,} hits"
        )
        with store.read() as conn:
            listed = {e for (e,) in conn.exec_driver_sql("SELECT DISTINCT entry_id FROM node_hit_state")}
        hit_entries = [r for r in records if r["entry_id"] in listed]

        head = store.state()["head"]
        data = make_delta(head, records, hit_entries, user_tags, args.delta, rng)
        feed = read_feed(data, KEY.public, P.DELTA_FORMAT)
        last = {line["record"]["entry_id"]: (int(line["seq"]), line["record"]) for line in feed.records}
        changed = {eid: rec for eid, (_s, rec) in last.items()}
        rows = [entry_row(s, r, r.get("status") in IN_FORCE_STATUSES) for s, r in last.values()]
        times = []
        result = hits.Rescreened()
        for _ in range(args.runs):
            with store.engine.connect() as conn:
                conn.execution_options(fcx_write=True)
                transaction = conn.begin()
                conn.exec_driver_sql(
                    f"INSERT OR REPLACE INTO node_entries({ENTRY_COLUMNS}) VALUES ({MARKS})", rows
                )
                cfg = store.get_config(conn)
                t = time.perf_counter()
                result = hits.rescreen_delta(conn, changed, feed_seq=head + args.delta, cfg=cfg)
                times.append(time.perf_counter() - t)
                transaction.rollback()  # the next run starts from the same store
        print(
            f"RE-SCREENING {args.users:,} enrolled users × a {args.delta:,}-event delta "
            f"({len(changed):,} entries): median {statistics.median(times) * 1000:.0f} ms "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {args.runs} runs; target ≤ 5 s); "
            f"{result.hit:,} hit, {result.changed:,} changed, {result.lifted:,} lifted"
        )
        t = time.perf_counter()
        apply_delta(store, feed)
        print(
            f"apply_delta with re-screening (entries + hits, one commit): {time.perf_counter() - t:.2f} s; "
            f"peak RSS {rss_mb():,.0f} MB"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
