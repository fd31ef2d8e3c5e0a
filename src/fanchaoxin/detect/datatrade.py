"""泄露倒卖个人信息 personal-data trade: leaked identifiers in use, and staff pulling customer data (#20).

Two sides of the same trade, each from the files an enterprise already has (docs/detect-datatrade.md):

**Leaked identifiers in use** (registrations and/or orders). A phone number or resident ID (as the
enterprise keeps it: plain or hashed) that many *unrelated* accounts register with or ship to has
been bought. For each identifier used by at least ``min_unrelated`` accounts, the accounts using it are
linked when they share a registration device or IP (an IP or device registered by more than
``max_shared`` accounts in the whole file links nothing: carrier NAT, campus Wi-Fi) or a delivery
address used with that identifier (a household, an office). The linked groups are the *clusters*.
The cluster of the earliest registration with the identifier — or, from orders alone, the cluster
that ships to it most — is the **possible owner**: a victim, never a subject, and not counted. The
identifier is flagged when at least ``min_unrelated`` other clusters use it; each account of those
clusters becomes one finding (subject: that account). The identifier itself is never a subject
and is shown masked (phone ``+86 138******78``; a hash by its first 6 characters).

**Staff pulling customer data** (access log + staff directory). Per staff account and day the
distinct customers accessed *without a relationship* (no ticket or order id on any access of that
customer that day) are compared with the median of the same role in the same team that day (the
role that day when the team has fewer than 3 on duty; the role over the month when the role has
fewer than 3): a whole team's surge (Double 11) moves its own baseline. Flagged:

- ``excess_access`` — unrelated customer-days above the peers' medians summed over the month
  ≥ ``min_excess`` and ≥ ``excess_ratio`` × the peers' sum (slow pulling adds up; bursts too);
- ``night_access`` — the same for customers accessed in off-hours (``night_start``–``night_end``);
- ``export_beyond_role`` — export rows of a role that does not export (fewer than
  ``export_role_share`` of its members export at all, or not in ``export_roles`` when given)
  ≥ ``min_export_rows``; in an exporting role, ≥ ``export_ratio`` × the role's median and
  ≥ ``min_export_rows``;
- ``leak_source`` (needs registrations or orders too) — the staff account accessed, before their
  first misuse, at least ``min_victims`` possible owners of flagged identifiers, and at least
  ``victim_ratio`` × what its number of customers accessed predicts (a data broker whose access
  volume is normal).

Scores: every finding's score is the largest of its rule ratios (measure over threshold), so a
finding scores ≥ 1 and 2 means twice what the rule needs.

Engines (#21): every join, window and aggregation is SQL text in DuckDB's dialect, run through
fanchaoxin.detect.sql (`DuckSql` on one machine, `SparkSql` on a cluster), the same text on both, so
``--engine duckdb`` and ``--engine spark`` give the same findings. What stays in Python runs on the
driver over reduced rows only: the linking of the accounts of the *candidate* identifiers (those with
at least ``min_unrelated`` accounts; their uses and those accounts' devices and IPs) and the per-staff
rules over one summary row per staff account.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from fanchaoxin.core.identifiers import IdentifierError, mask
from fanchaoxin.detect import io
from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.sql import DuckSql, Sql

__all__ = [
    "ACCESS_COLUMNS",
    "DETECTOR_IDENTIFIERS",
    "DETECTOR_STAFF",
    "ORDER_COLUMNS",
    "REGISTRATION_COLUMNS",
    "STAFF_COLUMNS",
    "Inputs",
    "Params",
    "detect",
    "load_inputs",
    "mask_identifier",
]

DETECTOR_IDENTIFIERS = "data-trade-identifiers"
DETECTOR_STAFF = "data-trade-staff"
BEHAVIOUR = "personal_data_trade"

# (required, optional) columns per file, by the names the detector reads
REGISTRATION_COLUMNS = (("account", "registered_at"), ("phone", "id_hash", "device_id", "ip"))
ORDER_COLUMNS = (("buyer", "receiver_phone", "order_time"), ("receiver_address_hash",))
ACCESS_COLUMNS = (("staff", "customer", "action", "rows", "event_time"), ("role", "ticket_id"))
STAFF_COLUMNS = (("staff", "role"), ("team",))
EXPORT_ACTIONS = ("export", "download", "bulk_export")


@dataclass
class Params:
    """The thresholds (docs/detect-datatrade.md says why each default)."""

    min_unrelated: int = 3
    max_shared: int = 20
    min_excess: int = 100
    excess_ratio: float = 3.0
    night_start: int = 22
    night_end: int = 6
    min_export_rows: int = 200
    export_ratio: float = 10.0
    export_role_share: float = 0.5
    export_roles: tuple[str, ...] | None = None
    min_victims: int = 8
    victim_ratio: float = 3.0


@dataclass
class Inputs:
    """The files that were given, readable by their SQL names through `sql` (DuckDB's or Spark's):
    ``dt_reg_file``, ``dt_orders``, ``dt_access``, ``dt_staff`` — the required columns and the optional
    ones present, under the detector's names. The relation fields hold the file as read (a DuckDB
    relation or a Spark DataFrame; None where a file was not given)."""

    sql: Sql
    registrations: Any = None
    orders: Any = None
    access: Any = None
    staff: Any = None
    rows: dict[str, int] = field(default_factory=dict)
    optional: dict[str, list[str]] = field(default_factory=dict)  # file → optional columns present

    def close(self) -> None:
        """Release what the engine keeps for this run (Spark: the cached temporary tables)."""
        close = getattr(self.sql, "close", None)
        if close is not None:
            close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read(
    sql: Sql,
    view: str,
    source: str | Path,
    spec: tuple[tuple[str, ...], tuple[str, ...]],
    *,
    types: Mapping[str, str],
    nullable: Sequence[str],
    columns: Mapping[str, str],
    timezone: str,
    spark: Any,
) -> tuple[Any, list[str], list[str]]:
    """Read a file (io.read_table, or engines.spark_read_table on Spark: the same types and checks)
    and make it readable as `view` with the detector's column names; (the file as read, the optional
    columns it has, the view's columns)."""
    required, optional = spec
    if spark is None:
        assert isinstance(sql, DuckSql)
        rel = io.read_table(
            Path(source),
            required,
            types=types,
            nullable=nullable,
            con=sql.con,
            columns=columns or None,
            timezone=timezone,
        )
    else:
        from fanchaoxin.detect import engines  # noqa: PLC0415 - only a Spark job needs it

        rel = engines.spark_read_table(
            spark,
            str(source),
            required,
            types=types,
            nullable=nullable,
            allow_empty=False,
            columns=columns or None,
            timezone=timezone,
            epoch_time=False,
            rest=True,
        )
    have = set(rel.columns)
    picks = [f"{_q(c)}" for c in required]
    present = []
    for name in optional:
        # DuckDB's reader renames a mapped column to the detector's name; Spark's keeps the file's
        source = (name if name in have else columns.get(name)) if spark is None else columns.get(name, name)
        if source in have:
            picks.append(f"CAST({_q(source)} AS VARCHAR) AS {_q(name)}")
            present.append(name)
    sql.table(f"{view}_src", rel)
    sql.run(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {', '.join(picks)} FROM {view}_src")
    return rel, present, [*required, *present]


def load_inputs(
    *,
    registrations: str | Path | None = None,
    orders: str | Path | None = None,
    access_log: str | Path | None = None,
    staff: str | Path | None = None,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    timezone: str = "Asia/Shanghai",
    con: duckdb.DuckDBPyConnection | None = None,
    spark: Any = None,
) -> Inputs:
    """Read and validate the given files (io.read_table: errors name the file, row and column).

    `columns` maps a file key (``registrations``, ``orders``, ``access_log``, ``staff``) to that file's
    {detector name: file column} mapping. With `spark` (a SparkSession) the files are read on Spark
    (any path Spark reads, or ``table:NAME``) and the detection runs there; else on DuckDB (`con`, or
    a fresh connection).
    """
    if spark is not None:
        from fanchaoxin.detect.sql import SparkSql  # noqa: PLC0415 - only a Spark job needs it

        sql: Sql = SparkSql(spark)
    else:
        sql = DuckSql(con if con is not None else io.connect())
    cols = columns or {}
    inp = Inputs(sql=sql)
    if registrations is not None:
        inp.registrations, inp.optional["registrations"], have = _read(
            sql,
            "dt_reg_file",
            registrations,
            REGISTRATION_COLUMNS,
            types={"account": "VARCHAR", "registered_at": "TIMESTAMP"},
            nullable=(),
            columns=cols.get("registrations", {}),
            timezone=timezone,
            spark=spark,
        )
        present = inp.optional["registrations"]
        if "phone" not in present and "id_hash" not in present:
            raise io.InputError(
                f"{registrations}: a registrations file needs a phone or an id_hash column (or both); "
                f"the file has {', '.join(have)}",
                path=registrations,
                column="phone",
            )
    if orders is not None:
        inp.orders, inp.optional["orders"], _ = _read(
            sql,
            "dt_orders",
            orders,
            ORDER_COLUMNS,
            types={"buyer": "VARCHAR", "receiver_phone": "VARCHAR", "order_time": "TIMESTAMP"},
            nullable=("receiver_phone",),
            columns=cols.get("orders", {}),
            timezone=timezone,
            spark=spark,
        )
    if access_log is not None:
        inp.access, inp.optional["access_log"], _ = _read(
            sql,
            "dt_access",
            access_log,
            ACCESS_COLUMNS,
            types={
                "staff": "VARCHAR",
                "customer": "VARCHAR",
                "action": "VARCHAR",
                "rows": "BIGINT",
                "event_time": "TIMESTAMP",
            },
            nullable=("customer", "rows"),
            columns=cols.get("access_log", {}),
            timezone=timezone,
            spark=spark,
        )
    if staff is not None:
        inp.staff, inp.optional["staff"], _ = _read(
            sql,
            "dt_staff",
            staff,
            STAFF_COLUMNS,
            types={"staff": "VARCHAR", "role": "VARCHAR"},
            nullable=(),
            columns=cols.get("staff", {}),
            timezone=timezone,
            spark=spark,
        )
    if inp.access is not None and inp.staff is None and "role" not in inp.optional["access_log"]:
        raise io.InputError(
            f"{access_log}: the staff analysis compares each staff account with its role: give --staff "
            "(staff, role, team) or a role column in the access log",
            path=access_log,
            column="role",
        )
    given = [
        (name, view)
        for name, view in (
            ("registrations", "dt_reg_file"),
            ("orders", "dt_orders"),
            ("access", "dt_access"),
            ("staff", "dt_staff"),
        )
        if getattr(inp, name) is not None
    ]
    if given:  # one query (on Spark one round of jobs) for every file's rows
        counts = sql.rows("SELECT " + ", ".join(f"(SELECT count(*) FROM {view})" for _, view in given))[0]
        inp.rows = {name: int(n) for (name, _), n in zip(given, counts, strict=True)}
    return inp


# ------------------------------------------------------------------------------------------ masking


def _time(t: Any) -> str:
    """A time as evidence shows it (the report and the submission read ``YYYY-MM-DD HH:MM:SS``)."""
    return str(t)[:19]


def mask_identifier(kind: str, value: str) -> str:
    """How an identifier is shown: the platform's mask when it is a plain phone or resident ID, else a
    hash's first 6 characters. Never the raw value: the inputs hold personal data."""
    try:
        return mask("phone" if kind == "phone" else "resident_id", value)
    except IdentifierError:
        return value[:6] + "…" if len(value) > 8 else "***"


# regexp_matches anchored at both ends: DuckDB's full match, Spark's RLIKE (sqlglot writes it so)
_PHONE_SQL = (
    "CASE WHEN regexp_matches(regexp_replace({c}, '[\\s()+-]', '', 'g'), '^(0086|86)?1[3-9][0-9]{{9}}$') "
    "THEN right(regexp_replace({c}, '[\\s()+-]', '', 'g'), 11) ELSE nullif(trim({c}), '') END"
)


def _phone(col: str) -> str:
    """SQL: a phone in any of its written forms as its 11 digits (a hash is kept as given)."""
    return _PHONE_SQL.format(c=col)


# ------------------------------------------------------------------------------------ identifiers


class _Links:
    """Union-find over string keys."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        p = self.parent.setdefault(x, x)
        while p != self.parent[p]:
            self.parent[p] = self.parent[self.parent[p]]
            p = self.parent[p]
        self.parent[x] = p
        return p

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class _Flagged:
    kind: str
    value: str
    subjects: dict[str, str]  # account → cluster label
    clusters: int  # unrelated clusters besides the possible owner
    accounts: int  # accounts using the identifier, owner included
    owner_accounts: list[str]
    first_misuse: Any
    uses: dict[str, list[tuple[str, Any]]]  # account → [(via, time)]


def _identifier_uses(inp: Inputs) -> bool:
    """Table ``dt_uses`` of every use of an identifier: (kind, value, account, via, t, address).

    Each file is read once here (a CSV is parsed again by every query on it): the registrations into
    ``dt_reg`` (phones normalised), which the linking reads again, and the orders straight into the
    uses. DuckDB keeps both under its memory cap and spills beyond it; Spark caches them (memory and
    disk).
    """
    sql = inp.sql
    parts = []
    if inp.registrations is not None:
        present = inp.optional["registrations"]
        cols = ["account", "registered_at"]
        cols.append(f"{_phone('phone')} AS phone" if "phone" in present else "CAST(NULL AS VARCHAR) AS phone")
        cols += [
            f"nullif(trim({c}), '') AS {c}" if c in present else f"CAST(NULL AS VARCHAR) AS {c}"
            for c in ("id_hash", "device_id", "ip")
        ]
        sql.run(f"CREATE OR REPLACE TEMP TABLE dt_reg AS SELECT {', '.join(cols)} FROM dt_reg_file")
        parts.append(
            "SELECT 'phone' AS kind, phone AS value, account, 'registration' AS via, registered_at AS t, "
            "CAST(NULL AS VARCHAR) AS address FROM dt_reg"
        )
        parts.append(
            "SELECT 'resident_id', id_hash, account, 'registration', registered_at, CAST(NULL AS VARCHAR) "
            "FROM dt_reg"
        )
    if inp.orders is not None:
        addr = (
            "receiver_address_hash"
            if "receiver_address_hash" in inp.optional["orders"]
            else "CAST(NULL AS VARCHAR)"
        )
        # named as the first part names them: from orders alone this part is the first
        parts.append(
            f"SELECT 'phone' AS kind, {_phone('receiver_phone')} AS value, buyer AS account, 'order' AS via, "
            f"order_time AS t, {addr} AS address FROM dt_orders"
        )
    if not parts:
        return False
    sql.run(
        "CREATE OR REPLACE TEMP TABLE dt_uses AS SELECT * FROM ("
        + " UNION ALL ".join(parts)
        + ") AS u WHERE value IS NOT NULL"
    )
    return True


def _flag_identifiers(inp: Inputs, p: Params, stats: dict[str, Any]) -> list[_Flagged]:
    if not _identifier_uses(inp):
        return []
    sql = inp.sql
    # Only identifiers with enough distinct accounts can be flagged (an aggregation by identifier,
    # distributed on Spark): what that keeps (households, victims) is small enough to link in Python.
    sql.run(
        "CREATE OR REPLACE TEMP TABLE dt_cand_uses AS SELECT u.kind, u.value, u.account, u.via, u.t, "
        "u.address FROM dt_uses u SEMI JOIN (SELECT kind, value FROM dt_uses GROUP BY kind, value "
        f"HAVING count(DISTINCT account) >= {int(p.min_unrelated)}) c "
        "ON u.kind = c.kind AND u.value = c.value"
    )
    # a total order (ties broken by every column): the linking below reads the uses in it
    rows = sql.rows(
        "SELECT kind, value, account, via, t, address FROM dt_cand_uses "
        "ORDER BY kind, value, t, account, via, address"
    )
    stats["identifiers_with_enough_accounts"] = len({(r[0], r[1]) for r in rows})
    attrs: dict[str, list[str]] = defaultdict(list)
    if inp.registrations is not None:
        present = inp.optional["registrations"]
        keys = [k for k in ("device_id", "ip") if k in present]
        if keys:
            # a device or IP registered by many accounts (carrier NAT, campus Wi-Fi) links nothing
            shared = " UNION ALL ".join(
                f"SELECT account, '{k[0]}:' || {k} AS attr FROM dt_reg "
                f"WHERE {k} IS NOT NULL AND trim({k}) <> ''"
                for k in keys
            )
            for account, attr in sql.rows(
                f"WITH a AS ({shared}), busy AS (SELECT attr FROM a GROUP BY attr "
                f"HAVING count(DISTINCT account) > {int(p.max_shared)}), "
                "d AS (SELECT DISTINCT account FROM dt_cand_uses) "
                "SELECT a.account, a.attr FROM a SEMI JOIN d ON a.account = d.account "
                "ANTI JOIN busy b ON a.attr = b.attr ORDER BY a.account, a.attr"
            ):
                attrs[account].append(attr)
    groups: dict[tuple[str, str], list[tuple[str, str, Any, str | None]]] = defaultdict(list)
    for kind, value, account, via, t, address in rows:
        groups[(kind, value)].append((account, via, t, address))
    flagged: list[_Flagged] = []
    for (kind, value), uses in groups.items():
        links = _Links()
        for account, _via, _t, address in uses:
            links.find("u:" + account)
            for a in attrs.get(account, ()):
                links.union("u:" + account, a)
            if address:
                links.union("u:" + account, "a:" + address)
        regs = [u for u in uses if u[1] == "registration"]
        if regs:
            owner = links.find("u:" + regs[0][0])  # uses are in time order
        else:
            per_cluster: dict[str, int] = defaultdict(int)
            for account, *_ in uses:
                per_cluster[links.find("u:" + account)] += 1
            owner = max(per_cluster, key=lambda c: per_cluster[c])  # first max: the earliest on a tie
        clusters = {links.find("u:" + u[0]) for u in uses} - {owner}
        if len(clusters) < p.min_unrelated:
            continue
        subjects: dict[str, str] = {}
        owner_accounts: list[str] = []
        by_account: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        first_misuse = None
        for account, via, t, _address in uses:
            c = links.find("u:" + account)
            if c == owner:
                if account not in owner_accounts:
                    owner_accounts.append(account)
                continue
            subjects[account] = c
            by_account[account].append((via, t))
            first_misuse = t if first_misuse is None else min(first_misuse, t)
        flagged.append(
            _Flagged(
                kind,
                value,
                subjects,
                len(clusters),
                len({u[0] for u in uses}),
                owner_accounts,
                first_misuse,
                by_account,
            )
        )
    stats["identifiers_flagged"] = len(flagged)
    return flagged


def _identifier_findings(flagged: list[_Flagged], p: Params) -> list[Finding]:
    per_account: dict[str, list[_Flagged]] = defaultdict(list)
    for f in flagged:
        for account in f.subjects:
            per_account[account].append(f)
    findings = []
    for account, fs in per_account.items():
        fs = sorted(fs, key=lambda f: (-f.clusters, f.kind, f.value))
        idents = []
        times = []
        for f in fs:
            uses = f.uses[account]
            times += [t for _, t in uses]
            others = sorted(a for a in f.subjects if a != account)
            idents.append(
                {
                    "identifier_kind": f.kind,
                    "identifier": mask_identifier(f.kind, f.value),
                    "unrelated_clusters": f.clusters,
                    "accounts_using": f.accounts,
                    "used_as": sorted({via for via, _ in uses}),
                    "uses_by_this_account": len(uses),
                    # a count only: the owner is a victim, and evidence travels to the platform
                    "possible_owner_accounts_excluded": len(f.owner_accounts),
                    "other_accounts": others[:20],
                    "other_accounts_total": len(others),
                }
            )
        top = fs[0]
        via = "registered with" if "registration" in fs[0].uses[account][0] else "shipped to"
        more = f" (+{len(fs) - 1} more leaked identifier(s))" if len(fs) > 1 else ""
        findings.append(
            Finding(
                detector=DETECTOR_IDENTIFIERS,
                behaviour=BEHAVIOUR,
                subject_kind="platform_account",
                subject_ids=[account],
                score=round(top.clusters / p.min_unrelated, 4),
                summary=(
                    f"account {account} {via} {top.kind} {idents[0]['identifier']}, which "
                    f"{top.clusters} unrelated groups of accounts use{more}"
                ),
                evidence={
                    "rule": "leaked_identifier",
                    "account": account,
                    "identifiers": idents,
                    "first_seen": _time(min(times)),
                    "last_seen": _time(max(times)),
                },
            )
        )
    findings.sort(key=lambda f: (-f.score, f.subject_ids[0]))
    return findings


# ------------------------------------------------------------------------------------------ staff


_STAFF_SUMMARY = (
    "staff",
    "role",
    "team",
    "events",
    "customer_days",
    "unrelated_days",
    "night_days",
    "exports",
    "export_rows",
    "active_days",
    "first_seen",
    "last_seen",
    "excess",
    "expected",
    "night_excess",
    "night_expected",
    "peak_day",
    "peak_unrelated",
    "peak_peer",
    "customers",
)


def _staff_findings(inp: Inputs, p: Params, flagged: list[_Flagged], stats: dict[str, Any]) -> list[Finding]:
    sql = inp.sql
    assert inp.access is not None
    acc_opt = inp.optional["access_log"]
    ticket = "nullif(trim(ticket_id), '') IS NOT NULL" if "ticket_id" in acc_opt else "false"
    night = (
        f"(hour(event_time) >= {int(p.night_start)} OR hour(event_time) < {int(p.night_end)})"
        if p.night_start > p.night_end
        else f"(hour(event_time) >= {int(p.night_start)} AND hour(event_time) < {int(p.night_end)})"
    )
    exports = ", ".join(f"'{a}'" for a in EXPORT_ACTIONS)
    # min, not any_value: the same role on both engines when a log gives a staff account several
    log_role = "min(role)" if "role" in acc_opt else "CAST(NULL AS VARCHAR)"
    # The one pass over the log (a CSV is parsed again by every query on it): per staff, day and
    # customer (NULL for exports without one) whether any access had a ticket, whether any was at
    # night, the exports. The aggregation spills to disk beyond DuckDB's memory cap; on Spark it is
    # the one shuffle of the log, by staff (and day and customer).
    sql.run(
        f"""CREATE OR REPLACE TEMP TABLE dt_pairs AS
        SELECT staff, CAST(event_time AS DATE) AS day, customer, count(*) AS events,
               bool_or(NOT is_export) AS accessed, bool_or(NOT is_export AND {ticket}) AS related,
               bool_or(NOT is_export AND {night}) AS night,
               min(event_time) FILTER (WHERE NOT is_export) AS first_access,
               count(*) FILTER (WHERE is_export) AS exports,
               coalesce(sum(coalesce("rows", 1)) FILTER (WHERE is_export), 0) AS export_rows,
               min(event_time) AS first_seen, max(event_time) AS last_seen, {log_role} AS log_role
        FROM (SELECT *, lower(trim(action)) IN ({exports}) AS is_export FROM dt_access) AS a
        GROUP BY staff, CAST(event_time AS DATE), customer"""
    )
    if inp.staff is not None:
        team = "team" if "team" in inp.optional["staff"] else "CAST(NULL AS VARCHAR)"
        # staff missing from the directory keep the role the log gives them (if it gives one); a
        # staff account listed twice: the least role and team (the same on both engines)
        directory = f"""
            WITH d AS (SELECT staff, min(role) AS role, min({team}) AS team FROM dt_staff GROUP BY staff)
            SELECT staff, role, team FROM d UNION ALL
            SELECT p.staff, min(p.log_role), CAST(NULL AS VARCHAR)
            FROM dt_pairs p ANTI JOIN d ON p.staff = d.staff
            WHERE p.log_role IS NOT NULL GROUP BY p.staff"""
    else:
        directory = (
            "SELECT staff, min(log_role) AS role, CAST(NULL AS VARCHAR) AS team FROM dt_pairs GROUP BY staff"
        )
    sql.run(f"CREATE OR REPLACE TEMP VIEW dt_dir AS {directory}")  # read once, by dt_sd
    sql.run(
        """CREATE OR REPLACE TEMP TABLE dt_sd AS
        SELECT p.staff, p.day, sum(p.events) AS events, sum(p.exports) AS exports,
               sum(p.export_rows) AS export_rows, min(p.first_seen) AS first_seen,
               max(p.last_seen) AS last_seen,
               count(*) FILTER (WHERE p.customer IS NOT NULL AND p.accessed) AS customers,
               count(*) FILTER (WHERE p.customer IS NOT NULL AND p.accessed AND NOT p.related) AS unrelated,
               count(*) FILTER (WHERE p.customer IS NOT NULL AND p.night AND NOT p.related)
                   AS night_unrelated,
               count(*) FILTER (WHERE p.customer IS NOT NULL AND p.night) AS night_customers,
               min(d.role) AS role, min(d.team) AS team
        FROM dt_pairs p JOIN dt_dir d ON p.staff = d.staff GROUP BY p.staff, p.day"""
    )
    # only accesses of a customer's record count as accessing that customer
    sql.run(
        "CREATE OR REPLACE TEMP VIEW dt_seen AS SELECT staff, customer, first_access FROM dt_pairs "
        "WHERE customer IS NOT NULL AND accessed"
    )
    # the peers' median for each staff-day: same role and team that day, else same role that day,
    # else the role's staff-days over the month (each needs at least 3 staff)
    sql.run(
        """CREATE OR REPLACE TEMP TABLE dt_peer AS
        WITH tm AS (SELECT role, team, day, median(unrelated) AS u, median(night_unrelated) AS n,
                           count(*) AS k FROM dt_sd WHERE team IS NOT NULL GROUP BY role, team, day),
             rm AS (SELECT role, day, median(unrelated) AS u, median(night_unrelated) AS n, count(*) AS k
                    FROM dt_sd GROUP BY role, day),
             ro AS (SELECT role, median(unrelated) AS u, median(night_unrelated) AS n
                    FROM dt_sd GROUP BY role)
        SELECT s.staff, s.day, s.unrelated, s.night_unrelated,
               CASE WHEN tm.k >= 3 THEN tm.u WHEN rm.k >= 3 THEN rm.u ELSE ro.u END AS peer_u,
               CASE WHEN tm.k >= 3 THEN tm.n WHEN rm.k >= 3 THEN rm.n ELSE ro.n END AS peer_n
        FROM dt_sd s LEFT JOIN tm ON s.role = tm.role AND s.team = tm.team AND s.day = tm.day
        JOIN rm ON s.role = rm.role AND s.day = rm.day JOIN ro ON s.role = ro.role"""
    )
    # one row per staff account (the sums of halves and whole numbers are exact in doubles, in any
    # order); the peak day is the largest excess, the earliest such day on a tie
    per_staff = sql.rows(
        """WITH x AS (
            SELECT staff, sum(greatest(unrelated - peer_u, 0)) AS excess, sum(peer_u) AS expected,
                   sum(greatest(night_unrelated - peer_n, 0)) AS night_excess, sum(peer_n) AS night_expected
            FROM dt_peer GROUP BY staff),
        pk AS (
            SELECT staff, day, unrelated, peer_u,
                   row_number() OVER (PARTITION BY staff ORDER BY unrelated - peer_u DESC, day) AS k
            FROM dt_peer WHERE unrelated - peer_u IS NOT NULL),
        s AS (
            SELECT staff, min(role) AS role, min(team) AS team, sum(events) AS events,
                   sum(customers) AS customer_days, sum(unrelated) AS unrelated_days,
                   sum(night_customers) AS night_days, sum(exports) AS exports,
                   sum(export_rows) AS export_rows, count(*) AS active_days,
                   min(first_seen) AS first_seen, max(last_seen) AS last_seen
            FROM dt_sd GROUP BY staff),
        c AS (SELECT staff, count(DISTINCT customer) AS customers FROM dt_seen GROUP BY staff)
        SELECT s.staff, s.role, s.team, s.events, s.customer_days, s.unrelated_days, s.night_days,
               s.exports, s.export_rows, s.active_days, s.first_seen, s.last_seen,
               x.excess, x.expected, x.night_excess, x.night_expected,
               pk.day, pk.unrelated, pk.peer_u, c.customers
        FROM s JOIN x ON s.staff = x.staff LEFT JOIN pk ON s.staff = pk.staff AND pk.k = 1
        LEFT JOIN c ON s.staff = c.staff ORDER BY s.staff"""
    )
    staff_rows = [dict(zip(_STAFF_SUMMARY, r, strict=True)) for r in per_staff]
    stats["staff_accounts"] = len(staff_rows)

    # which roles export: given, or most of their members export at all
    by_role: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in staff_rows:
        by_role[r["role"]].append(r)
    role_export: dict[str, dict[str, Any]] = {}
    for role, members in by_role.items():
        exporters = sorted(m["export_rows"] for m in members if m["exports"])
        share = len(exporters) / len(members)
        exporting = role in p.export_roles if p.export_roles is not None else share >= p.export_role_share
        median = exporters[len(exporters) // 2] if exporters else 0
        if exporters and len(exporters) % 2 == 0:
            median = (exporters[len(exporters) // 2 - 1] + exporters[len(exporters) // 2]) / 2
        role_export[role] = {
            "exports_by_role": exporting,
            "members": len(members),
            "members_exporting": len(exporters),
            "median_export_rows": median,
        }
    stats["roles"] = role_export

    victims = _victim_counts(inp, flagged, stats)
    findings = []
    for r in staff_rows:
        reasons: dict[str, float] = {}
        expected = float(r["expected"] or 0)
        excess = float(r["excess"] or 0)
        if excess >= p.min_excess and excess >= p.excess_ratio * expected:
            reasons["excess_access"] = min(
                excess / p.min_excess, excess / max(p.excess_ratio * expected, 1e-9)
            )
        n_exp = float(r["night_expected"] or 0)
        n_excess = float(r["night_excess"] or 0)
        if n_excess >= p.min_excess and n_excess >= p.excess_ratio * n_exp:
            reasons["night_access"] = min(
                n_excess / p.min_excess, n_excess / max(p.excess_ratio * n_exp, 1e-9)
            )
        norm = role_export[r["role"]]
        rows = float(r["export_rows"] or 0)
        if rows >= p.min_export_rows:
            if not norm["exports_by_role"]:
                reasons["export_beyond_role"] = rows / p.min_export_rows
            elif rows >= p.export_ratio * norm["median_export_rows"]:
                reasons["export_beyond_role"] = min(
                    rows / p.min_export_rows, rows / max(p.export_ratio * norm["median_export_rows"], 1e-9)
                )
        v = victims.get(r["staff"])
        if v is not None:
            seen, predicted = v
            if seen >= p.min_victims and seen >= p.victim_ratio * predicted:
                reasons["leak_source"] = min(
                    seen / p.min_victims, seen / max(p.victim_ratio * predicted, 1e-9)
                )
        if not reasons:
            continue
        findings.append(_staff_finding(r, reasons, norm, victims.get(r["staff"]), p))
    findings.sort(key=lambda f: (-f.score, f.subject_ids[0]))
    return findings


def _small_table(sql: Sql, name: str, customers: list[str], times: list[Any]) -> None:
    """The possible owners (customer, first misuse) — a few per flagged identifier, made on the driver
    — as table `name` of the engine."""
    if isinstance(sql, DuckSql):
        table = pa.table(
            {"customer": pa.array(customers, pa.string()), "misuse": pa.array(times, pa.timestamp("us"))}
        )
        sql.table(name, sql.con.from_arrow(table))
    else:
        spark = sql.spark  # type: ignore[attr-defined]
        df = spark.createDataFrame(
            list(zip(customers, times, strict=True)), "customer STRING, misuse TIMESTAMP_NTZ"
        )
        sql.table(name, df)


def _victim_counts(
    inp: Inputs, flagged: list[_Flagged], stats: dict[str, Any]
) -> dict[str, tuple[int, float]]:
    """staff → (possible owners of flagged identifiers accessed before their misuse, the number predicted)."""
    owners: dict[str, Any] = {}
    for f in flagged:
        for a in f.owner_accounts:
            if f.first_misuse is not None and (a not in owners or f.first_misuse < owners[a]):
                owners[a] = f.first_misuse
    if not owners:
        return {}
    sql = inp.sql
    ordered = sorted(owners.items())
    _small_table(sql, "dt_victims", [c for c, _ in ordered], [t for _, t in ordered])
    # one query: per staff account (owners seen before their misuse, customers seen), and with every
    # row the customers in the log and the owners among them
    per_staff = sql.rows(
        """WITH c AS (SELECT staff, customer, min(first_access) AS first_access FROM dt_seen
                      GROUP BY staff, customer)
        SELECT c.staff, count(v.customer) FILTER (WHERE c.first_access < v.misuse), count(*),
               (SELECT count(DISTINCT customer) FROM dt_seen),
               (SELECT count(*) FROM dt_victims v SEMI JOIN dt_seen p ON v.customer = p.customer)
        FROM c LEFT JOIN dt_victims v ON c.customer = v.customer GROUP BY c.staff"""
    )
    total, in_log = (int(per_staff[0][3]), int(per_staff[0][4])) if per_staff else (0, 0)
    stats["possible_owners_of_flagged_identifiers"] = len(owners)
    stats["possible_owners_in_access_log"] = in_log
    if not total:
        return {}
    rate = in_log / total
    return {staff: (int(seen), int(customers) * rate) for staff, seen, customers, _, _ in per_staff}


def _staff_finding(
    r: dict[str, Any],
    reasons: dict[str, float],
    role: dict[str, Any],
    victims: tuple[int, float] | None,
    p: Params,
) -> Finding:
    customer_days = int(r["customer_days"] or 0)
    unrelated = int(r["unrelated_days"] or 0)
    evidence: dict[str, Any] = {
        "rule": "staff_access",
        "staff": r["staff"],
        "role": r["role"],
        "team": r["team"],
        "reasons": sorted(reasons, key=lambda k: -reasons[k]),
        "records_viewed": int(r["customers"] or 0),
        "customer_days": customer_days,
        "unrelated_customer_days": unrelated,
        "peer_median_unrelated_customer_days": round(float(r["expected"] or 0), 1),
        "excess_unrelated_customer_days": round(float(r["excess"] or 0), 1),
        "off_hours_share": round((r["night_days"] or 0) / customer_days, 4) if customer_days else 0.0,
        "no_relationship_share": round(unrelated / customer_days, 4) if customer_days else 0.0,
        "excess_off_hours_unrelated": round(float(r["night_excess"] or 0), 1),
        "peer_median_off_hours_unrelated": round(float(r["night_expected"] or 0), 1),
        "exports": int(r["exports"] or 0),
        "export_rows": int(r["export_rows"] or 0),
        "role_exports": role["exports_by_role"],
        "role_median_export_rows": role["median_export_rows"],
        "active_days": int(r["active_days"]),
        "events": int(r["events"]),
        "first_seen": _time(r["first_seen"]),
        "last_seen": _time(r["last_seen"]),
    }
    if r["peak_day"] is not None:
        evidence["peak_day"] = {
            "day": str(r["peak_day"]),
            "unrelated_customers": int(r["peak_unrelated"]),
            "peer_median": float(r["peak_peer"]),
        }
    if victims is not None:
        evidence["victims_accessed_before_misuse"] = victims[0]
        evidence["victims_predicted"] = round(victims[1], 2)
    parts = []
    if "excess_access" in reasons or "night_access" in reasons:
        parts.append(
            f"{unrelated:,} customer-days without a ticket against a peer median of "
            f"{evidence['peer_median_unrelated_customer_days']:,}"
        )
    if "night_access" in reasons:
        parts.append(f"{evidence['excess_off_hours_unrelated']:,.0f} extra at night")
    if "export_beyond_role" in reasons:
        if role["exports_by_role"]:
            norm = f"role median {role['median_export_rows']:,.0f}"
        else:
            norm = (
                f"a role that does not export: {role['members_exporting']} of {role['members']} members "
                "export"
            )
        parts.append(f"exported {evidence['export_rows']:,} rows in {evidence['exports']} export(s) ({norm})")
    if "leak_source" in reasons and victims is not None:
        parts.append(
            f"accessed {victims[0]} customers before their identifiers were misused "
            f"({victims[1]:.1f} expected)"
        )
    return Finding(
        detector=DETECTOR_STAFF,
        behaviour=BEHAVIOUR,
        subject_kind="platform_account",
        subject_ids=[r["staff"]],
        score=round(max(reasons.values()), 4),
        summary=f"staff {r['staff']} ({r['role']}): " + "; ".join(parts),
        evidence=evidence,
    )


# ------------------------------------------------------------------------------------------ run


def detect(
    inp: Inputs, params: Params | None = None, *, progress: Callable[[str], None] | None = None
) -> tuple[list[Finding], dict[str, Any]]:
    """Run every analysis the given inputs allow; (findings, what ran and what it counted)."""
    p = params or Params()
    step = progress or (lambda _s: None)
    stats: dict[str, Any] = {}
    ran: dict[str, str] = {}
    findings: list[Finding] = []
    flagged: list[_Flagged] = []
    if inp.registrations is not None or inp.orders is not None:
        step("leaked identifiers")
        flagged = _flag_identifiers(inp, p, stats)
        found = _identifier_findings(flagged, p)
        findings += found
        src = " and ".join(
            n for n, r in (("registrations", inp.registrations), ("orders", inp.orders)) if r is not None
        )
        ran["leaked_identifiers"] = f"ran on {src}: {len(found)} accounts"
    else:
        ran["leaked_identifiers"] = "skipped: needs --registrations and/or --orders"
    if inp.access is not None:
        step("staff access")
        found = _staff_findings(inp, p, flagged, stats)
        findings += found
        leak = "with" if flagged else "without"
        ran["staff_access"] = (
            f"ran on the access log ({leak} the leak-source rule): {len(found)} staff accounts"
        )
    else:
        ran["staff_access"] = "skipped: needs --access-log (and --staff or a role column)"
    return findings, {"analyses": ran, "stats": stats, "parameters": asdict(p)}
