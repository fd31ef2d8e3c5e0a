"""`fcx node …`: the enterprise node's commands (docs/sharing.md "Node side")."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fanchaoxin.core import logs
from fanchaoxin.core.auth import proxy_header_options
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node import decision_log
from fanchaoxin.node.app import create_node_app
from fanchaoxin.node.client import PlatformClient, PlatformRefused, PlatformUnavailable
from fanchaoxin.node.enroll import EnrollError, enroll, read_rows
from fanchaoxin.node.store import Store, StoreError
from fanchaoxin.node.sync import InitError, SyncRefused, initialise, sync

if TYPE_CHECKING:
    import uvicorn

node_app = typer.Typer(
    help="The enterprise node: follow the signed feed, enrol your users as tags, answer decisions locally.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

STORE_HELP = "The node's SQLite store."
StoreOpt = Annotated[str, typer.Option("--store", envvar="FCX_NODE_STORE", help=STORE_HELP)]
DEFAULT_STORE = "var/node.db"


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("FCX_NODE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logs.install()  # no plain identifiers in the node's logs (#14)


def _store(path: str) -> Store:
    try:
        return Store(path)
    except StoreError as exc:
        _fail(str(exc))


@node_app.command("init")
def init(
    platform: Annotated[str, typer.Option("--platform", help="The platform's base URL.")],
    key: Annotated[str, typer.Option("--key", envvar="FCX_NODE_KEY", help="An enterprise_node API key.")],
    store: StoreOpt = DEFAULT_STORE,
    fingerprint: Annotated[
        str | None,
        typer.Option(
            help="Expected fingerprint of the platform's feed-signing key (from the platform, out of band)."
        ),
    ] = None,
    repin: Annotated[
        bool, typer.Option("--repin", help="Accept a signing key other than the pinned one.")
    ] = False,
) -> None:
    """Fetch the platform's keys, pin its feed-signing key, and write the node's store."""
    try:
        pinned = initialise(store, platform, key, fingerprint=fingerprint, repin=repin)
    except (InitError, PlatformUnavailable, PlatformRefused) as exc:
        _fail(str(exc))
    console.print(f"Node store [bold]{store}[/] initialised for {platform}")
    console.print(f"Pinned feed-signing key {pinned['key_id']}, fingerprint [bold]{pinned['fingerprint']}[/]")
    if fingerprint is None:
        console.print(
            "[yellow]No --fingerprint given: compare this fingerprint with the one the platform publishes "
            "out of band.[/]"
        )


@node_app.command("sync")
def sync_cmd(store: StoreOpt = DEFAULT_STORE) -> None:
    """Bring the store to the platform's head: verify, then apply each file atomically; then relay the
    decision log (the in-process SDK's decisions) to the platform."""
    _logging()
    s = _store(store)
    cfg = s.get_config()
    with PlatformClient(cfg["platform_url"], cfg["api_key"]) as client:
        try:
            result = sync(s, client)
        except SyncRefused as exc:
            _fail(str(exc))
        except PlatformUnavailable as exc:
            decision_log.enforce_bound(s)
            _fail(f"{exc}; the store keeps its last verified copy (seq {s.state()['head']})")
        relayed = decision_log.relay(s, client)
    parts = []
    if result.snapshot is not None:
        parts.append(f"snapshot {result.snapshot}")
    if result.deltas:
        parts.append(f"{result.deltas} delta(s)")
    console.print(
        f"Synced: head {result.head_before} → {result.head_after} "
        f"({', '.join(parts) or 'already up to date'}; {result.events} events)"
    )
    console.print(
        f"Decision log: {relayed['sent']} records relayed to the platform, {relayed['unsent']} waiting"
        + (f", {relayed['refused']} refused (see the log)" if relayed["refused"] else "")
    )


@node_app.command("enroll")
def enroll_cmd(
    csv_path: Annotated[Path, typer.Argument(help="CSV file of your users.", exists=True, dir_okay=False)],
    id_col: Annotated[str, typer.Option("--id-col", help="Column with your own user id.")],
    type_: Annotated[
        str, typer.Option("--type", help="Identifier type of --value-col (phone, resident_id, …).")
    ],
    value_col: Annotated[str, typer.Option("--value-col", help="Column with the identifier.")],
    store: StoreOpt = DEFAULT_STORE,
    key_id: Annotated[
        str | None, typer.Option(help="OPRF key id (default: the platform's current key).")
    ] = None,
    max_wait: Annotated[float, typer.Option(help="Longest total wait for the quota (seconds).")] = 3600.0,
) -> None:
    """Turn your users' identifiers into tags by blinded evaluation; keeps only HMACs and tags."""
    _logging()
    s = _store(store)
    try:
        rows = read_rows(csv_path, id_col, type_, value_col)
    except EnrollError as exc:
        _fail(str(exc))
    columns = (TextColumn("enrolling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("enroll", total=len({c for _r, c in rows}))
        try:
            result = enroll(
                s, rows, key_id=key_id, max_wait=max_wait, progress=lambda n: bar.advance(task, n)
            )
        except (EnrollError, PlatformUnavailable) as exc:
            _fail(str(exc))
    console.print(
        f"Enrolled {result.enrolled} identifiers under key {result.key_id} "
        f"({result.already} already enrolled; {result.rows} rows, {result.batches} batches)"
    )


def server_config(app: Any, host: str, port: int) -> uvicorn.Config:
    """The server of `fcx node serve`. X-Forwarded-For is believed only from FCX_TRUSTED_PROXIES (none by
    default), so that a caller on the same host cannot pass for another address."""
    import uvicorn

    proxies = proxy_header_options(get_settings().trusted_proxies)
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, **proxies)


@node_app.command("serve")
def serve(
    store: StoreOpt = DEFAULT_STORE,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8100,
    sync_interval: Annotated[
        float, typer.Option(envvar="FCX_NODE_SYNC_INTERVAL", help="Seconds between syncs with the platform.")
    ] = 30.0,
    token: Annotated[
        str | None, typer.Option(envvar="FCX_NODE_TOKEN", help="Bearer token callers of this node must send.")
    ] = None,
    port_file: Annotated[
        Path | None, typer.Option(help="Write the bound port to this file once listening (tests, port 0).")
    ] = None,
) -> None:
    """Serve POST /v1/decisions, /readyz and the instruction relay; sync in the background."""
    import uvicorn  # only when serving: the other commands start without the server stack

    _logging()
    _store(store).dispose()
    app = create_node_app(store, sync_interval=sync_interval, token=token)
    try:
        config = server_config(app, host, port)
    except ValueError as exc:
        _fail(str(exc))
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.05)
        bound = server.servers[0].sockets[0].getsockname()[1]
        if port_file is not None:
            tmp = port_file.with_suffix(".tmp")
            tmp.write_text(str(bound))
            tmp.replace(port_file)
        console.print(f"fcx node serving on http://{host}:{bound}")
        await task

    asyncio.run(run())


@node_app.command("status")
def status(store: StoreOpt = DEFAULT_STORE) -> None:
    """Head, feed age, counts, pinned key."""
    s = _store(store)
    state, counts, cfg = s.state(), s.counts(), s.get_config()
    age = f"{time.time() - state['last_sync_at']:.0f} s" if state["last_sync_at"] else "never synced"
    console.print(f"platform {cfg['platform_url']}  signing key {cfg.get('signing_fingerprint')}")
    console.print(f"head {state['head']} (snapshot {state['snapshot_seq']}), last verified sync: {age}")
    console.print(
        f"entries in force {counts['entries_in_force']}, enrolled users {counts['users']} "
        f"({counts['user_tags']} tags), outbox queued {counts['outbox_queued']}, "
        f"decision-log records not yet relayed {counts['decisions_unsent']}"
    )


@node_app.command("webhook-secret")
def webhook_secret(
    secret: Annotated[
        str, typer.Argument(help="The secret the platform showed when the webhook was registered.")
    ],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Store the secret that the platform's feed webhooks are signed with."""
    s = _store(store)
    with s.transaction() as conn:
        s.set_config(conn, webhook_secret=secret)
    console.print("Webhook secret stored.")
