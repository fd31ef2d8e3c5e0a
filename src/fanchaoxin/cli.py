"""The one command-line entry point, `fcx`: platform administration, serving, and the toolkits."""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from sqlalchemy import select

from fanchaoxin.appeals.cli import appeals_app
from fanchaoxin.blacklist.cli import entries_app
from fanchaoxin.console.cli import console_app
from fanchaoxin.consultation.cli import consultation_app
from fanchaoxin.core import audit, crypto_record, logs, rekey, upgrades, vault
from fanchaoxin.core.auth import proxy_header_options
from fanchaoxin.core.cli import cli_actor, console, database, err, fail, problem_message
from fanchaoxin.core.db import Database, unavailable, utcnow
from fanchaoxin.core.errors import Problem
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.demo import load_demo, print_demo
from fanchaoxin.detect.cli import app as detect_app
from fanchaoxin.node.cli import node_app, witness_cmd
from fanchaoxin.operations.cli import backup_app
from fanchaoxin.operations.cli import restore as restore_cmd
from fanchaoxin.orgs import agreements, service
from fanchaoxin.orgs import cli as orgs_cli
from fanchaoxin.orgs.agreement_cli import agreement_app, agreement_text
from fanchaoxin.orgs.models import ApiKey, Organisation
from fanchaoxin.orgs.rulebook_cli import rulebook_app
from fanchaoxin.sanctions.cli import policy_app
from fanchaoxin.sharing import translog
from fanchaoxin.sharing.cli import sharing_app
from fanchaoxin.sharing.translog_cli import log_app
from fanchaoxin.simulate.cli import app as simulate_app
from fanchaoxin.stats.access_patterns_cli import patterns as audit_patterns
from fanchaoxin.stats.cli import report_app
from fanchaoxin.workflows.cli import jobs_app
from fanchaoxin.workflows.crypto_cli import crypto_app
from fanchaoxin.workflows.jobs import audit_signing_keys

app = typer.Typer(
    help="fanchaoxin (反炒信) — platform, enterprise node and monitoring toolkit.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
org_app = typer.Typer(
    help="Organisations: the platform, departments, participating enterprises.", no_args_is_help=True
)
key_app = typer.Typer(
    help="API keys (shown once, hashed at rest, expiring, revocable) and the data keys that encrypt "
    "personal data at rest (FCX_DATA_KEY_FILE: *-data commands).",
    no_args_is_help=True,
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(org_app, name="org")
app.add_typer(key_app, name="keys")
app.add_typer(key_app, name="key", hidden=True)  # the name before data keys joined the group
app.add_typer(audit_app, name="audit")
audit_app.command("patterns")(audit_patterns)  # #14: unusual patterns of checks (stats.access_patterns)
app.add_typer(entries_app, name="entries")
app.add_typer(jobs_app, name="jobs")
app.add_typer(crypto_app, name="crypto")
app.add_typer(log_app, name="log")  # #19: the transparency log
log_app.command("witness")(witness_cmd)  # a department's witness round, also `fcx node witness`
app.add_typer(policy_app, name="policy")
app.add_typer(appeals_app, name="appeals")
app.add_typer(detect_app, name="detect")
app.add_typer(simulate_app, name="simulate")
app.add_typer(sharing_app, name="sharing")
app.add_typer(node_app, name="node")
app.add_typer(report_app, name="report")
app.add_typer(console_app, name="console")
app.add_typer(agreement_app, name="agreement")  # #22: the information-sharing agreement
app.add_typer(rulebook_app, name="rulebook")  # #22: each enterprise's rulebook
app.add_typer(consultation_app, name="consultation")  # #22: regular consultation (定期会商)
app.add_typer(backup_app, name="backup")  # #23: `fcx backup --to DIR`, verify, list, prune
app.command("restore")(restore_cmd)  # #23: `fcx restore --from DIR`


def _listens_everywhere(host: str) -> bool:
    """0.0.0.0 or :: — listening on every interface, which is no address to open."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def served_url(host: str, port: int) -> str:
    """The URL to open for what `fcx serve --host HOST --port PORT` listens on: the loopback address when
    it listens on every interface, an IPv6 address in brackets."""
    bare = host.strip("[]")
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        return f"http://{host}:{port}"  # a name
    if ip.is_unspecified:
        ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
    return f"http://[{ip}]:{port}" if ip.version == 6 else f"http://{ip}:{port}"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load demo organisations and keys on first start.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (the API is stateless).")] = 1,
) -> None:
    """Upgrade the database, optionally load demo data, and serve the platform API.

    X-Forwarded-For is believed only from FCX_TRUSTED_PROXIES (none by default): the client address is
    what per-address limits count.
    """
    import uvicorn

    try:
        proxies = proxy_header_options(get_settings().trusted_proxies)
    except ValueError as exc:
        fail(str(exc))
    base = served_url(host, port)
    db = database()
    try:
        # The profile first: a ring of the other profile is then explained by the record's clearer words.
        crypto_record.check(db.engine)
        # Before the upgrade: its data migrations seal existing rows under the ring.
        vault.ensure_ring(db.engine)
        db.upgrade()
        crypto_record.check(db.engine)
        if demo:
            print_demo(console, load_demo(db), console_url=f"{base}/console/")
        vault.check_database(db.engine)
    except crypto_record.ProfileMismatch as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except vault.DataKeyError as exc:
        # Nothing is served with a key problem: rows would fail one by one, or new ones be sealed
        # under a key nobody kept.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        err.print("Nothing is served until the data key file is right.")
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    everywhere = " on every interface" if _listens_everywhere(host) else ""
    console.print(
        f"Serving{everywhere} at [bold]{base}/[/]  (console: {base}/console/, API docs: {base}/docs)",
        highlight=False,
        soft_wrap=True,
    )
    uvicorn.run(
        "fanchaoxin.app:create_served_app", factory=True, host=host, port=port, workers=workers, **proxies,
        log_config=logs.uvicorn_log_config(),  # no plain identifiers in the access log (#14)
    )  # fmt: skip


# `fcx db upgrade` exit codes besides 0 (at the target, or nothing would run) — scripts branch on them.
UPGRADE_PENDING = 10  # --check: migrations would run, and the API now serving keeps working through them
UPGRADE_WAITS_FOR_CONTRACT = 11  # some would run only with --contract, once no older worker serves


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Say what would run (each migration, its phase, whether the API now serving keeps "
            "working) and change nothing. Exit 0: nothing would run; 10: migrations would run, all safe "
            "while the running release serves; 11: some need --contract.",
        ),
    ] = False,
    contract: Annotated[
        bool,
        typer.Option(
            "--contract",
            help="Also apply contract steps that the release now serving was not checked against (once "
            "no worker of it runs any more).",
        ),
    ] = False,
) -> None:
    """Create or upgrade the schema (Alembic migrations), without taking the API down.

    Expand steps (they only add) always run.

    A contract step (it removes or tightens) runs when the database is already at the release before the
    one that ships it, the release it was checked against; otherwise the upgrade stops before it (exit
    11) until --contract says no older worker runs. An empty database takes everything.
    """
    db = database()
    try:
        plan = _upgrade_plan(db, revision)
    except (upgrades.ReleasesError, ValueError) as exc:
        fail(escape(str(exc)))
    except Exception as exc:
        if not unavailable(exc):
            raise
        fail(
            f"数据库无法连接 — the database cannot be reached ({db.engine.dialect.name}): "
            f"{type(exc).__name__}"
        )
    _print_plan(plan, db.engine.dialect.name)
    if check:
        if not plan.steps:
            raise typer.Exit(0)
        raise typer.Exit(UPGRADE_PENDING if all(s.safe for s in plan.steps) else UPGRADE_WAITS_FOR_CONTRACT)
    waiting = [] if contract else [i for i, s in enumerate(plan.steps) if not s.safe]
    stop = waiting[0] if waiting else len(plan.steps)
    target = plan.steps[stop - 1].step.revision if stop else None
    try:
        crypto_record.check(db.engine)
        vault.ensure_ring(db.engine)  # the data migrations seal existing rows under the ring
        if target is not None:
            db.upgrade(target)
        crypto_record.check(db.engine)
    except (vault.DataKeyError, crypto_record.ProfileMismatch) as exc:
        fail(str(exc))
    console.print(
        f"数据库已在版本 [bold]{db.current_revision()}[/] — database at revision {db.current_revision()} "
        f"({db.engine.dialect.name})",
        highlight=False,
    )
    if waiting:
        held = plan.steps[stop].step.revision
        err.print(
            f"[bold yellow]未执行[/] 收缩步骤 {held} 及其后的迁移：正在运行的 {plan.running} 未经其检验。"
            f"待旧版本的进程全部停止后，运行 `fcx db upgrade --contract`。\n"
            f"Not run: contract step {held} and what follows it — the running {plan.running} was not "
            "checked against it. Once no worker of it serves, run `fcx db upgrade --contract`.",
            highlight=False,
        )
        raise typer.Exit(UPGRADE_WAITS_FOR_CONTRACT)


@dataclass(frozen=True)
class _PlannedStep:
    step: upgrades.Step
    safe: bool  # the API serving on the database now keeps working once it is applied
    notes: list[str]


@dataclass(frozen=True)
class _UpgradePlan:
    current: str | None
    target: str
    running: str  # the code now serving, in words: a release, or the revision it expects
    steps: list[_PlannedStep]


def _upgrade_plan(db: Database, target: str) -> _UpgradePlan:
    releases = upgrades.load_releases()
    order = {script.revision: i for i, script in enumerate(db.migration_scripts())}
    current = db.current_revision()
    if db.schema_is_newer(current):
        raise ValueError(
            f"数据库版本 {current} 比本程序新（已由更新的发布迁移），无需升级 — the database is at "
            f"{current}, newer than this release knows: a later release migrated it; use that release's fcx"
        )
    scripts = db.pending_revisions(target)
    steps = []
    for script in scripts:
        step = upgrades.step_of(script)
        # What a person should know before running it that the phase does not say (a table lock).
        notes = [str(c) for c in upgrades.changes(script.module) if "locks" in c.detail]
        steps.append(_PlannedStep(step, upgrades.is_safe_for_running(step, order, current, releases), notes))
    released = {r.schema_head: r.version for r in releases}
    if current is None:
        running = "空数据库 (an empty database)"
    elif current in released:
        running = f"发布 {released[current]} (release {released[current]})"
    else:
        running = f"版本 {current} 的代码 (the code of revision {current})"
    return _UpgradePlan(current, scripts[-1].revision if scripts else (current or target), running, steps)


def _print_plan(plan: _UpgradePlan, dialect: str) -> None:
    console.print(
        f"数据库 ({dialect}) 当前版本 {plan.current or '无 (none)'}，运行中：{plan.running} — "
        f"database at {plan.current or 'no revision'}",
        highlight=False,
        soft_wrap=True,
    )
    if not plan.steps:
        console.print("无待执行的迁移 — nothing would run.", highlight=False)
        return
    console.print(
        f"待执行 {len(plan.steps)} 项迁移 — {len(plan.steps)} migration(s) would run:", highlight=False
    )
    for planned in plan.steps:
        keeps = (
            "运行中的 API 继续可用 (keeps working)" if planned.safe else "需 --contract (old API may break)"
        )
        console.print(
            f"  {planned.step.revision}  {upgrades.PHASE_WORDS[planned.step.phase]:<14} {keeps}  "
            f"{escape(planned.step.description)}",
            highlight=False,
            soft_wrap=True,
        )
        for note in planned.notes:
            console.print(f"        注意 note: {escape(note)}", highlight=False, soft_wrap=True)


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision and whether it is current."""
    db = database()
    current, head = db.current_revision(), db.head_revision()
    console.print(
        f"current: {current}  head: {head}  {'(up to date)' if current == head else '(run fcx db upgrade)'}"
    )


@org_app.command("add")
def org_add(
    kind: Annotated[str, typer.Option(help="platform | department | enterprise")],
    name: Annotated[str, typer.Option(help="Registered name.")],
    name_en: Annotated[str | None, typer.Option(help="English name.")] = None,
    uscc: Annotated[str | None, typer.Option(help="统一社会信用代码.")] = None,
    business_type: Annotated[
        list[str] | None,
        typer.Option(
            "--business-type",
            help="Enterprise business type, repeatable: ecommerce, sharing_economy, logistics, social_media, "
            "search_ads, internet_finance.",
        ),
    ] = None,
    agreement_signed: Annotated[
        str | None,
        typer.Option(
            help="Date of an information-sharing agreement signed before versioned agreements (YYYY-MM-DD); "
            "otherwise the enterprise applies and signs (`fcx agreement sign`)."
        ),
    ] = None,
    contact_email: Annotated[
        str | None, typer.Option(help="Where consultation notices and agreement reminders are e-mailed.")
    ] = None,
    declared_users: Annotated[
        int | None, typer.Option(help="Declared number of users (sets quotas).")
    ] = None,
    department_kind: Annotated[str | None, typer.Option(help=orgs_cli.DEPARTMENT_KIND_HELP)] = None,
) -> None:
    """Register an organisation."""
    try:
        kind_v = OrgKind(kind)
    except ValueError:
        fail(f"--kind: {kind!r} is not one of {', '.join(k.value for k in OrgKind)}")
    types = []
    for bt in business_type or []:
        try:
            types.append(BusinessType(bt))
        except ValueError:
            fail(f"--business-type: {bt!r} is not one of {', '.join(b.value for b in BusinessType)}")
    signed = None
    if agreement_signed:
        try:
            signed = date.fromisoformat(agreement_signed)
        except ValueError:
            fail(f"--agreement-signed: {agreement_signed!r} is not a date YYYY-MM-DD")
    db = database()
    try:
        with db.session() as session:
            org = service.create_organisation(
                session,
                cli_actor(),
                kind=kind_v,
                name=name,
                name_en=name_en,
                uscc=uscc,
                business_types=types,
                agreement_signed_on=signed,
                declared_users=declared_users,
                department_kind=department_kind,
                contact_email=contact_email,
            )
            console.print(f"Created {org.kind} [bold]{org.name}[/] id={org.id}")
    except Problem as exc:
        fail(problem_message(exc))


@org_app.command("list")
def org_list() -> None:
    """List organisations."""
    db = database()
    with db.session() as session:
        table = Table("id", "kind", "name", "uscc", "business types / department kind", "agreement")
        orgs = list(session.scalars(select(Organisation).order_by(Organisation.kind, Organisation.name)))
        standings = agreements.standings(session, orgs)
        for o in orgs:
            table.add_row(
                str(o.id),
                o.kind,
                o.name,
                o.uscc or "",
                ", ".join(o.business_types or []) or orgs_cli.department_kind_text(o),
                agreement_text(standings[o.id]) if o.kind == OrgKind.enterprise.value else "",
            )
        console.print(table)


@key_app.command("create")
def key_create(
    org: Annotated[str, typer.Option(help="Organisation id, USCC or exact name.")],
    role: Annotated[str, typer.Option(help="Role of the key.")],
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
    expires_in_days: Annotated[int | None, typer.Option(help="Lifetime in days.")] = None,
) -> None:
    """Create an API key and print it once."""
    try:
        role_v = Role(role)
    except ValueError:
        fail(f"--role: {role!r} is not one of {', '.join(r.value for r in Role if r != Role.public)}")
    db = database()
    try:
        with db.session() as session:
            organisation = service.find_organisation(session, org)
            issued = service.create_key(
                session, cli_actor(), organisation, role_v, label=label, expires_in_days=expires_in_days
            )
            console.print(
                f"API key for {organisation.name} ({role_v.value}), expires {issued.key.expires_at:%Y-%m-%d}:"
            )
            console.print(f"[bold]{issued.secret}[/]")
            console.print("It is shown only now; store it safely.")
    except Problem as exc:
        fail(problem_message(exc))


@key_app.command("list")
def key_list(org: Annotated[str | None, typer.Option(help="Only this organisation.")] = None) -> None:
    """List API keys (never their secrets)."""
    db = database()
    try:
        with db.session() as session:
            stmt = select(ApiKey).order_by(ApiKey.created_at)
            if org:
                stmt = stmt.where(ApiKey.owner_org_id == service.find_organisation(session, org).id)
            table = Table("id", "prefix", "organisation", "role", "label", "expires", "status")
            now = utcnow()
            for k in session.scalars(stmt):
                table.add_row(
                    str(k.id),
                    k.prefix,
                    k.organisation.name,
                    k.role,
                    k.label,
                    f"{k.expires_at:%Y-%m-%d}",
                    k.status(now),
                )
            console.print(table)
    except Problem as exc:
        fail(problem_message(exc))


@key_app.command("revoke")
def key_revoke(
    key: Annotated[str, typer.Argument(help="Key id or prefix.")],
    reason: Annotated[str, typer.Option(help="Why the key is revoked.")],
) -> None:
    """Revoke an API key at once."""
    db = database()
    try:
        with db.session() as session:
            k = service.revoke_key(session, cli_actor(), service.find_key(session, key), reason=reason)
            console.print(f"Revoked key {k.prefix} of {k.organisation.name}")
    except Problem as exc:
        fail(problem_message(exc))


@key_app.command("init-data")
def keys_init_data() -> None:
    """Create the data key ring (FCX_DATA_KEY_FILE) on a platform that holds no encrypted data yet.

    Never overwrites a key file: a lost key cannot be replaced by a new one."""
    path = vault.key_file()
    if path.exists():
        fail(
            f"data key file {path} exists already; it is never overwritten "
            "(add a key with `fcx keys rotate-data`)"
        )
    db = database()
    try:
        first = vault.first_encrypted_row(db.engine)
    finally:
        db.dispose()
    if first is not None:
        fail(
            f"the database holds encrypted data ({first}) sealed under keys a new file would not hold: "
            f"restore {path} from the key backup instead"
        )
    if not vault.write_ring(vault.new_ring(path), exclusive=True):
        fail(f"data key file {path} was created meanwhile by someone else; it is left as it is")
    vault.forget()
    console.print(f"Created data key file [bold]{path}[/] (mode 0600), active key {vault.ring().active}.")
    console.print("Back it up apart from the database: without it the personal data cannot be read.")


@key_app.command("rotate-data")
def keys_rotate_data(
    reencrypt: Annotated[
        bool,
        typer.Option(
            "--reencrypt/--no-reencrypt",
            help="Re-encrypt every row under the new key (batches of 1,000, each its own transaction; "
            "the platform keeps serving). --no-reencrypt only adds the key: new values use it at once.",
        ),
    ] = True,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per transaction.")] = rekey.BATCH_ROWS,
) -> None:
    """Add a new data key, make it active, and re-encrypt the rows sealed under the older keys."""
    db = database()
    try:
        ring = rekey.add_key()
        console.print(f"Data key [bold]{ring.active}[/] added to {ring.path} and made active.")
        if reencrypt:
            _reencrypt(db, batch)
    except vault.DataKeyError as exc:
        fail(str(exc))
    finally:
        db.dispose()


def _reencrypt(db: Database, batch: int) -> None:
    columns = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console, transient=False
    )
    tasks: dict[tuple[str, str], TaskID] = {}

    def show(p: rekey.Progress) -> None:
        key = (p.table, p.column)
        if key not in tasks:
            tasks[key] = columns.add_task(f"{p.table}.{p.column}", total=p.total)
        columns.update(tasks[key], completed=p.done, total=p.total)

    with columns:
        done = rekey.reencrypt(db.engine, batch=batch, on_progress=show)
    total = sum(done.values())
    console.print(
        f"Re-encrypted {total} values under key [bold]{vault.ring().active}[/]"
        + ("." if total else " (none were under an older key).")
    )
    left = rekey.pending(db.engine, vault.ring().active)
    if left:
        console.print(
            f"[yellow]{sum(left.values())} values are still under older keys[/] (changed while this ran): "
            "run `fcx keys rotate-data` again, or see `fcx keys data-status`."
        )


@key_app.command("data-status")
def keys_data_status() -> None:
    """Stored encrypted values per data key, per table and column; and the keys of the ring."""
    db = database()
    try:
        ring = vault.ring(fresh=True)
        usage = vault.key_usage(db.engine)
    except vault.DataKeyError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    console.print(f"Data key file {ring.path}: keys {', '.join(ring.keys)}; active [bold]{ring.active}[/]")
    table = Table("table", "column", "key", "rows")
    for u in usage:
        key = u.key_id if u.key_id is not None else "[red]plain (not encrypted)[/]"
        if u.key_id is not None and u.key_id not in ring.keys:
            key = f"[red]{u.key_id} (missing from the ring)[/]"
        table.add_row(u.table, u.column, key, str(u.rows))
    console.print(table)
    per_key: dict[str, int] = {}
    for u in usage:
        per_key[u.key_id or "plain"] = per_key.get(u.key_id or "plain", 0) + u.rows
    console.print("Rows per key: " + (", ".join(f"{k}: {n}" for k, n in sorted(per_key.items())) or "none"))


@key_app.command("retire-data")
def keys_retire_data(
    key_id: Annotated[str, typer.Argument(help="The data key id to remove (e.g. d1).")],
) -> None:
    """Remove a data key from the ring; refused while any stored value needs it (rows are named)."""
    db = database()
    try:
        ring = rekey.retire(db.engine, key_id)
    except vault.DataKeyError as exc:
        fail(str(exc))
    finally:
        db.dispose()
    console.print(f"Data key {key_id} removed from {ring.path}; keys left: {', '.join(ring.keys)}.")


@audit_app.command("verify")
def audit_verify(
    from_checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--from-checkpoint",
            help="A log checkpoint kept outside the platform (a signed note): the log must extend it.",
        ),
    ] = None,
) -> None:
    """Walk the hash chain and name the first broken link, then check it against the heads committed in
    the transparency log (deleted last events or a rewritten head are caught); exit status 1 if any."""
    db = database()
    note = from_checkpoint.read_bytes() if from_checkpoint is not None else None
    with db.session() as session:
        result = audit.verify(session, trusted_keys=audit_signing_keys())  # pruning checkpoints
        # The digest each period of the chain was hashed with, as the assessor asks (SM3 under 国密).
        hashed = " then ".join(p.profile.hash_algorithm for p in crypto_record.periods(session))
        try:
            log_keys = translog.load_log_keys(create=False)
        except translog.LogError:
            log_keys = None  # no log yet: the chain is checked on its own, and the line below says so
        anchored = (
            translog.verify_audit_anchored(
                session, log_keys, trusted_keys=audit_signing_keys(), checkpoint_note=note
            )
            if log_keys is not None and result.ok
            else None
        )
    if not result.ok:
        err.print(f"[bold red]Audit chain broken at event {result.broken_at}[/]: {result.reason}")
        err.print(f"({result.checked} events before it verified)")
        raise typer.Exit(1)
    pruned = f" ({result.pruned} older events pruned behind a signed checkpoint)" if result.pruned else ""
    console.print(
        f"[green]Audit chain intact[/]: {result.checked} events verified ({hashed or 'SHA-256'}).{pruned}"
    )
    if anchored is None:
        console.print("No transparency log yet: the chain is not anchored (`fcx log init`).")
        return
    if not anchored.ok:
        for problem in anchored.problems:
            err.print(f"[bold red]Not as the transparency log committed it[/]: {escape(problem)}")
        raise typer.Exit(1)
    console.print(
        f"[green]Anchored[/]: the chain holds every one of the {anchored.anchors_checked} heads committed "
        "in the transparency log, and the log verifies against its signed checkpoint.",
        highlight=False,
    )


# Quotas of identifier matching and the enumeration alarm (orgs.budget).
org_app.command("quota")(orgs_cli.quota)
org_app.command("clear-alarm")(orgs_cli.clear_alarm)
org_app.command("set-kind")(orgs_cli.set_kind)


def main() -> None:  # pragma: no cover
    app(sys.argv[1:])
