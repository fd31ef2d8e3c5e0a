"""`fcx node …`: the enterprise node's commands (docs/sharing.md "Node side")."""

from __future__ import annotations

import asyncio
import json
import logging
import logging.config
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fanchaoxin.core import logs
from fanchaoxin.core.auth import proxy_header_options
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node import decision_log, hits, logcheck, relay
from fanchaoxin.node import status as node_status
from fanchaoxin.node.app import create_node_app
from fanchaoxin.node.client import PlatformClient, PlatformRefused, PlatformUnavailable
from fanchaoxin.node.enroll import CHUNK, EnrollError, enroll_file, resume_marker
from fanchaoxin.node.live import FALLBACKS, LiveSettings
from fanchaoxin.node.store import Store, StoreError
from fanchaoxin.node.sync import InitError, SyncRefused, initialise, suspension, sync

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
# Live tags for first-seen identifiers (#16): kept in the store's config by `init`, overridden by `serve`.
LiveOpt = Annotated[
    bool | None,
    typer.Option("--live-tags/--no-live-tags", help="Tag first-seen identifiers live (default on)."),
]
FallbackOpt = Annotated[
    str | None,
    typer.Option(
        "--live-fallback",
        envvar="FCX_NODE_LIVE_FALLBACK",
        help=f"Without a live tag: {' or '.join(FALLBACKS)} (restricts in sensitive scenes).",
    ),
]
SensitiveOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--sensitive-scene",
        help="A scene where fail_closed restricts (repeatable; default account_registration, "
        "internet_finance, courier_hiring).",
    ),
]
LiveTimeoutOpt = Annotated[
    float | None,
    typer.Option("--live-timeout", help="Longest wait for a live evaluation (s, default 2)."),
]
HitsWebhookOpt = Annotated[
    str | None,
    typer.Option(
        "--hits-webhook",
        envvar="FCX_NODE_HITS_WEBHOOK",
        help="Your system's URL that re-screening hits are posted to (signed, X-FCX-Hits-Signature).",
    ),
]
HitsSecretOpt = Annotated[
    str | None,
    typer.Option(
        "--hits-webhook-secret",
        envvar="FCX_NODE_HITS_WEBHOOK_SECRET",
        help="Key of the hits webhook's HMAC signature (HMAC-SHA256, or HMAC-SM3 under the gm profile; "
        "default: the node secret).",
    ),
]


def _live_settings(
    base: LiveSettings,
    enabled: bool | None,
    fallback: str | None,
    scenes: list[str] | None,
    timeout: float | None,
) -> LiveSettings:
    try:
        return base.but(
            enabled=enabled, fallback=fallback, sensitive_scenes=frozenset(scenes) if scenes else None,
            timeout=timeout,
        )  # fmt: skip
    except ValueError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _log_level() -> str:
    return os.environ.get("FCX_NODE_LOG_LEVEL", "INFO").upper()


def _logging() -> None:
    # The platform's log configuration (#23): FCX_LOG_FORMAT json or text, request ids, identifiers
    # masked (#14) on every handler. Like basicConfig, nothing is replaced where logging is already set
    # up (a program that embeds the node, a test run): there the filters are added to its handlers.
    if not logging.getLogger().handlers:
        try:
            logging.config.dictConfig(logs.logging_config(level=_log_level()))
        except ValueError as exc:
            _fail(str(exc))
    logs.install()


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
    expect_profile: Annotated[
        str | None,
        typer.Option(
            "--expect-profile",
            help="The crypto profile the platform must run: international or gm (国密: SM2/SM3/SM4). "
            "Init is refused, with the reason, if its manifest states the other.",
        ),
    ] = None,
    node_label: Annotated[
        str, typer.Option("--node-label", help="Names this node's receipt key on the platform (host, site).")
    ] = "",
    new_node_key: Annotated[
        bool,
        typer.Option("--new-node-key", help="Make and enrol a new receipt-signing key (after a revocation)."),
    ] = False,
    hits_webhook: HitsWebhookOpt = None,
    hits_webhook_secret: HitsSecretOpt = None,
    business_type: Annotated[
        list[str] | None,
        typer.Option(
            "--business-type",
            help="Your business type (repeatable): hits name the measures it implements (default: all).",
        ),
    ] = None,
    live_tags: LiveOpt = None,
    live_fallback: FallbackOpt = None,
    sensitive_scene: SensitiveOpt = None,
    live_timeout: LiveTimeoutOpt = None,
) -> None:
    """Fetch the platform's keys, pin its feed-signing key, and write the node's store; make the node's
    own receipt-signing key and enrol it with the platform (execution receipts, #16)."""
    try:
        pinned = initialise(
            store, platform, key, fingerprint=fingerprint, repin=repin, hits_webhook=hits_webhook,
            hits_webhook_secret=hits_webhook_secret, business_types=business_type,
            expect_profile=expect_profile,
        )  # fmt: skip
    except (InitError, PlatformUnavailable, PlatformRefused) as exc:
        _fail(str(exc))
    console.print(f"Node store [bold]{store}[/] initialised for {platform}")
    console.print(f"Pinned feed-signing key {pinned['key_id']}, fingerprint [bold]{pinned['fingerprint']}[/]")
    console.print(f"Crypto profile [bold]{pinned['crypto_profile']}[/] (from the platform's signed manifest)")
    if fingerprint is None:
        console.print(
            "[yellow]No --fingerprint given: compare this fingerprint with the one the platform publishes "
            "out of band.[/]"
        )
    s = _store(store)
    live = _live_settings(
        LiveSettings.from_config(s.get_config()), live_tags, live_fallback, sensitive_scene, live_timeout
    )
    with s.transaction() as conn:
        s.set_config(conn, **live.config_values())
    s.dispose()
    console.print(
        f"Live tags {'on' if live.enabled else 'off'}: {live.fallback} "
        f"(sensitive scenes {', '.join(sorted(live.sensitive_scenes))}), timeout {live.timeout:g} s"
    )
    _enrol_node_key(_store(store), platform, key, label=node_label, new=new_node_key)


def _enrol_node_key(s: Store, platform: str, api_key: str, *, label: str, new: bool) -> None:
    """The node's receipt-signing key: made if missing, enrolled with the platform. A failed enrolment
    does not undo the init: feedback is relayed unsigned until `fcx node init` enrols the key."""
    node_key, made = relay.ensure_node_key(s, new=new)
    console.print(f"{'Made' if made else 'Kept'} node receipt key [bold]{node_key.key_id}[/]")
    try:
        with PlatformClient(platform, api_key) as client:
            relay.enrol_node_key(s, client, label=label)
    except (PlatformUnavailable, PlatformRefused, relay.NodeKeyError) as exc:
        console.print(
            f"[yellow]Node receipt key not enrolled ({exc}): feedback is relayed without a signed receipt "
            "until `fcx node init` is run again.[/]"
        )
    else:
        console.print("Node receipt key enrolled: feedback now carries signed execution receipts.")
    finally:
        s.dispose()


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
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Start from the first row, not after what an interrupted run kept."),
    ] = False,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, max=100_000, help="Rows evaluated and committed together.")
    ] = CHUNK,
) -> None:
    """Turn your users' identifiers into tags by blinded evaluation; keeps only HMACs and tags. The file
    is streamed chunk by chunk, each chunk committed: run again after an interruption to resume."""
    _logging()
    s = _store(store)
    columns = (
        TextColumn("enrolling"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("enroll", total=None)
        try:
            result = enroll_file(
                s, csv_path, id_col, type_, value_col, restart=restart, key_id=key_id, max_wait=max_wait,
                chunk_size=chunk_size, progress=lambda n: bar.advance(task, n),
                on_total=lambda n: bar.update(task, total=n),
            )  # fmt: skip
        except (EnrollError, PlatformUnavailable) as exc:
            _fail(f"{exc}" + _resume_hint(s))
        except KeyboardInterrupt:
            _fail("interrupted" + _resume_hint(s))
    resumed = f", resumed after row {result.resumed_after}" if result.resumed_after else ""
    console.print(
        f"Enrolled {result.enrolled} identifiers under key {result.key_id} "
        f"({result.already} already enrolled; {result.rows} rows{resumed}; {result.chunks} chunks, "
        f"{result.batches} evaluation batches; waited {result.waited_seconds:.0f} s for the quota; "
        f"{result.seconds:.1f} s, {result.rows_per_second:,.0f} rows/s)"
    )


def _resume_hint(s: Store) -> str:
    marker = resume_marker(s)
    if marker and marker.get("row"):
        return f"; rows up to {marker['row']} are committed: run the same command again to resume"
    return ""


def server_config(app: Any, host: str, port: int) -> uvicorn.Config:
    """The server of `fcx node serve`. X-Forwarded-For is believed only from FCX_TRUSTED_PROXIES (none by
    default), so that a caller on the same host cannot pass for another address."""
    import uvicorn

    proxies = proxy_header_options(get_settings().trusted_proxies)
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False,
        log_config=logs.uvicorn_log_config(level=_log_level()), **proxies,
    )  # fmt: skip


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
    status_interval: Annotated[
        float,
        typer.Option(
            envvar="FCX_NODE_STATUS_INTERVAL",
            help="Seconds between status reports to the platform (0: none).",
        ),
    ] = node_status.REPORT_INTERVAL,
    hits_webhook: HitsWebhookOpt = None,
    hits_webhook_secret: HitsSecretOpt = None,
    live_tags: LiveOpt = None,
    live_fallback: FallbackOpt = None,
    sensitive_scene: SensitiveOpt = None,
    live_timeout: LiveTimeoutOpt = None,
) -> None:
    """Serve POST /v1/decisions, /readyz and the instruction relay; sync in the background; post
    re-screening hits to --hits-webhook (or the one `fcx node init` stored). The live-tag options
    override the store's config (`fcx node init`) for this process."""
    import uvicorn  # only when serving: the other commands start without the server stack

    _logging()
    s = _store(store)
    live = _live_settings(
        LiveSettings.from_config(s.get_config()), live_tags, live_fallback, sensitive_scene, live_timeout
    )
    s.dispose()
    app = create_node_app(
        store, sync_interval=sync_interval, token=token, status_interval=status_interval,
        hits_webhook=hits_webhook, hits_webhook_secret=hits_webhook_secret, live=live,
    )  # fmt: skip
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
def status(
    store: StoreOpt = DEFAULT_STORE,
    report: Annotated[
        bool,
        typer.Option("--report", help="Also send one status report to the platform now (as `serve` does)."),
    ] = False,
) -> None:
    """Head, feed age, counts, pinned key; with --report, the platform's view of this node's lag."""
    s = _store(store)
    state, counts, cfg = s.state(), s.counts(), s.get_config()
    age = f"{time.time() - state['last_sync_at']:.0f} s" if state["last_sync_at"] else "never synced"
    console.print(
        f"platform {cfg['platform_url']}  signing key {cfg.get('signing_fingerprint')}  "
        f"crypto profile {cfg.get('crypto_profile') or 'international'}"
    )
    console.print(f"head {state['head']} (snapshot {state['snapshot_seq']}), last verified sync: {age}")
    console.print(
        f"entries in force {counts['entries_in_force']}, enrolled users {counts['users']} "
        f"({counts['user_tags']} tags), outbox queued {counts['outbox_queued']}, "
        f"decision-log records not yet relayed {counts['decisions_unsent']}"
    )
    suspended = suspension(s)
    if suspended:
        err.print(f"[bold red]sync stopped[/]: {escape(suspended)} (the store keeps its last verified copy)")
    log_st = logcheck.status(s)
    if log_st["size"] is not None or log_st["events_waiting"]:
        console.print(
            f"transparency log: size {log_st['size']} verified, events checked up to feed seq "
            f"{log_st['checked_up_to_feed_seq']}, {log_st['events_waiting']} waiting for a checkpoint"
        )
    if log_st["alarm"]:
        err.print(f"[bold red]transparency log alarm[/]: {escape(log_st['alarm'])}")
    if report:
        with PlatformClient(cfg["platform_url"], cfg["api_key"]) as client:
            try:
                answer = node_status.report(s, client)
            except (PlatformUnavailable, PlatformRefused) as exc:
                _fail(f"status report not taken: {exc}")
        console.print(
            f"Status reported as node {answer.get('node_id')}: platform feed head {answer.get('feed_head')}, "
            f"lag {answer.get('lag')} events"
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


@node_app.command("hits")
def hits_cmd(
    store: StoreOpt = DEFAULT_STORE,
    after: Annotated[int, typer.Option("--after", min=0, help="Show the hits numbered above this.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=hits.PAGE_MAX, help="At most this many.")] = 100,
) -> None:
    """Re-screening: your enrolled users that the feed newly hit, changed or lifted (the worklist that
    GET /v1/hits pages and the hits webhook posts)."""
    s = _store(store)
    try:
        page = hits.listing(s, after=after, limit=limit)
    except ValueError as exc:
        _fail(f"--{exc}")
    table = Table(title=f"Hits after {page['after']} (newest {page['head']})")
    columns = ("seq", "kind", "user", "entry", "reason", "measures (params; actions)", "deadline", "feed")
    for column in columns:
        table.add_column(column, overflow="fold")
    for item in page["items"]:
        measures = "\n".join(
            f"{m['number']} {m['code']}"
            + (f" {json.dumps(m['params'], ensure_ascii=False)}" if m["params"] else "")
            + (f"; {', '.join(a['code'] for a in m['actions'])}" if m["actions"] else "")
            for m in item["measures"]
        )
        table.add_row(
            str(item["seq"]), item["kind"], item["user_ref"], item["entry_id"], item["reason"], measures,
            item["deadline"], str(item["feed_seq"]),
        )  # fmt: skip
    console.print(table)
    if page["next_after"] < page["head"]:
        console.print(f"More: fcx node hits --after {page['next_after']}")


# --- the transparency log (#19): node.logcheck ----------------------------------------------------------


@node_app.command("log-status")
def log_status(store: StoreOpt = DEFAULT_STORE) -> None:
    """The transparency log as this node last verified it: size, events waiting, witnesses, alarm."""
    s = _store(store)
    st = logcheck.status(s)
    if st["size"] is None:
        console.print("No log checkpoint verified yet (the platform names no log, or no sync since).")
    else:
        console.print(
            f"log {st['origin']}: size {st['size']}, root {st['root']}; events checked up to feed seq "
            f"{st['checked_up_to_feed_seq']}, {st['events_waiting']} waiting for a checkpoint"
        )
    console.print(f"witnesses {', '.join(st['witnesses']) or 'none'} (quorum {st['quorum']})")
    if st["alarm"]:
        _fail(f"transparency log alarm: {st['alarm']}")


@node_app.command("log-witnesses")
def log_witnesses(
    witness: Annotated[
        list[str] | None,
        typer.Option("--witness", help="A witness's verifier key (name+keyid+base64), checked out of band."),
    ] = None,
    quorum: Annotated[int, typer.Option("--quorum", min=0, help="Cosignatures a checkpoint needs.")] = 0,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Set the witnesses whose cosignatures this node verifies, and how many a checkpoint must carry."""
    s = _store(store)
    try:
        chosen = logcheck.set_witnesses(s, witness or [], quorum)
    except logcheck.LogRefused as exc:
        _fail(str(exc))
    console.print(
        f"{len(chosen)} witness(es), quorum {quorum}: {', '.join(w.name for w in chosen) or 'none'}"
    )


@node_app.command("log-compare")
def log_compare(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint note got elsewhere.", exists=True)],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Compare a checkpoint obtained elsewhere (another enterprise, a department) with this node's: a
    split view is refused and kept as the alarm."""
    s = _store(store)
    cfg = s.get_config()
    with PlatformClient(cfg["platform_url"], cfg["api_key"]) as client:
        try:
            other = logcheck.compare(s, client, checkpoint.read_bytes())
        except logcheck.LogRefused as exc:
            _fail(str(exc))
        except PlatformUnavailable as exc:
            _fail(str(exc))
    console.print(f"Consistent: the checkpoint of size {other.size} agrees with this node's log.")


@node_app.command("witness")
def witness_cmd(
    url: Annotated[str, typer.Option("--url", help="The platform's base URL.")],
    key: Annotated[str, typer.Option("--key", envvar="FCX_WITNESS_API_KEY", help="Your API key.")],
    name: Annotated[str, typer.Option("--name", help="The witness's key name (e.g. dept.example/w1).")],
    witness_key: Annotated[
        Path, typer.Option("--witness-key", help="The witness's signing key file (made if missing, 0600).")
    ] = Path("var/witness.key"),
    state: Annotated[
        Path, typer.Option("--state", help="The last checkpoint this witness cosigned (JSON).")
    ] = Path("var/witness.json"),
    log_key: Annotated[
        str | None, typer.Option("--log-key", help="The log's verifier key, checked out of band (pins it).")
    ] = None,
    post: Annotated[bool, typer.Option("--post/--no-post", help="Post the cosignature.")] = True,
    enrol: Annotated[
        bool,
        typer.Option(
            "--enrol/--no-enrol",
            help="Enrol the witness key with the platform (POST /v1/nodes/keys) before the first post.",
        ),
    ] = True,
) -> None:
    """A department's witness round (见证): check the log's checkpoint against the last one it cosigned,
    cosign it (C2SP tlog-cosignature) and post the cosignature to the platform. The first round makes
    the witness key (of the platform's crypto profile) and enrols it. Also `fcx log witness`."""
    with PlatformClient(url, key) as client:
        try:
            made_as = None if witness_key.exists() else logcheck.platform_profile(client)
            signer = logcheck.load_witness_key(witness_key, made_as)
            result = logcheck.witness_once(
                client, state, signer, name, log_vkey=log_key, post=post, enrol=enrol
            )
        except logcheck.LogRefused as exc:
            _fail(f"not cosigned: {exc}")
        except (PlatformUnavailable, PlatformRefused) as exc:
            _fail(str(exc))
    if result.enrolled_key_id:
        console.print(f"witness key {result.enrolled_key_id} enrolled with the platform")
    console.print(
        f"{name} cosigned checkpoint of size {result.size} (root {result.root})"
        + (", posted" if result.posted else "")
    )
    console.print(f"witness key: {logcheck.witness(name, signer.public_bytes()).vkey()}")
