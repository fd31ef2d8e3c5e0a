"""`fcx backup` and `fcx restore` (operations.backup): what an operator types, and what they read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fanchaoxin.core.cli import cli_actor, console, err, fail
from fanchaoxin.core.settings import get_settings
from fanchaoxin.operations import backup

backup_app = typer.Typer(
    help="Backup sets (备份): take one (`fcx backup --to DIR`), check one, list them, prune old ones.",
    invoke_without_command=True,
)

PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="A file holding the passphrase the keys are sealed under (default: FCX_BACKUP_PASSPHRASE_FILE).",
    ),
]


def _passphrase(path: Path | None) -> bytes | None:
    chosen = path or (Path(p) if (p := get_settings().backup_passphrase_file) else None)
    return backup.read_passphrase(chosen) if chosen is not None else None


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


@backup_app.callback()
def take(
    ctx: typer.Context,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="The folder a new set is written into (one sub-folder per set)."),
    ] = None,
    passphrase_file: PassphraseFile = None,
    keys_to: Annotated[
        Path | None,
        typer.Option(
            "--keys-to",
            help="Export the key files in plain (mode 0600) to this folder, apart from the set, instead of "
            "sealing them.",
        ),
    ] = None,
) -> None:
    """Take a backup: the database (one snapshot), the keys (sealed, or exported apart) and a manifest of
    digests, written into a new folder under --to."""
    if ctx.invoked_subcommand is not None:
        return
    if to is None:
        fail("--to：请给出备份写入的目录 — give the folder to write the backup into")
    try:
        taken = backup.take(get_settings(), to, passphrase=_passphrase(passphrase_file), keys_to=keys_to)
    except backup.BackupError as exc:
        fail(escape(str(exc)))
    m = taken.manifest
    console.print(
        f"[green]备份完成 Backup written[/]: {escape(str(taken.path))} ({_mib(taken.size)}, "
        f"{m['took_seconds']} s)",
        highlight=False,
    )
    console.print(
        f"  数据库 database: {m['database']['backend']}, schema revision {m['database']['revision']}, "
        f"feed head {m['database']['feed_head']}, "
        f"audit head {(m['database']['audit_head'] or {}).get('seq')}",
        highlight=False,
    )
    if taken.keys_path is not None:
        console.print(
            f"  密钥已明文导出到 keys exported in plain to: {escape(str(taken.keys_path))} — "
            "请与备份分开保管 keep them apart from the set",
            highlight=False,
        )
    else:
        n = sum(1 for f in m["files"] if f["kind"] == "key")
        console.print(f"  密钥 {n} 个已用口令加密 {n} key files sealed under the passphrase", highlight=False)


@backup_app.command("verify")
def verify_cmd(
    folder: Annotated[Path, typer.Argument(help="A set, or a folder of sets (its newest complete one).")],
    keys_from: Annotated[
        Path | None, typer.Option("--keys-from", help="Where the set's keys were exported (--keys-to).")
    ] = None,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Check every file of a set against its manifest (and open the sealed keys with the passphrase, when
    given); exit status 1 naming the first file that differs."""
    try:
        path = backup.resolve_set(folder)
        manifest = backup.verify(path, keys_from=keys_from)
        passphrase = _passphrase(passphrase_file)
        opened = ""
        if passphrase is not None or keys_from is not None:
            signed_by = backup.check_signature(
                path, manifest, backup.open_set_keys(path, manifest, passphrase, keys_from)
            )
            opened = " 密钥可以打开 keys open."
            if signed_by is not None:
                opened += (
                    f" 清单由签名密钥 {signed_by} 签名 manifest signed by the feed-signing key {signed_by}."
                )
    except backup.BackupError as exc:
        fail(escape(str(exc)))
    console.print(
        f"[green]备份完好 Backup intact[/]: {escape(str(path))} — {len(manifest['files'])} files match their "
        f"{manifest['digest']} digests.{opened}",
        highlight=False,
    )


@backup_app.command("list")
def list_cmd(
    folder: Annotated[
        Path | None, typer.Argument(help="The folder of sets (default: FCX_BACKUP_DIR).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """The sets in a folder, newest first: when, size, feed head, complete or not."""
    folder = folder or (Path(d) if (d := get_settings().backup_dir) else None)
    if folder is None:
        fail("请给出备份目录（或设置 FCX_BACKUP_DIR） — give the folder (or set FCX_BACKUP_DIR)")
    sets = backup.list_sets(folder)
    if as_json:
        doc = [
            {
                "path": str(s.path),
                "created_at": s.created_at.isoformat() if s.created_at else None,
                "complete": s.complete,
                "size": s.size,
                "feed_head": (s.manifest or {}).get("database", {}).get("feed_head"),
                "problem": s.problem,
            }
            for s in sets
        ]
        console.print_json(json.dumps(doc, ensure_ascii=False))
        return
    table = Table("备份 set", "时间 created (UTC)", "大小 size", "feed head", "状态 state")
    for s in sets:
        state = "完整 complete" if s.complete else f"[red]不完整 incomplete[/]: {escape(s.problem or '')}"
        table.add_row(
            s.path.name,
            f"{s.created_at:%Y-%m-%d %H:%M:%S}" if s.created_at else "-",
            _mib(s.size),
            str((s.manifest or {}).get("database", {}).get("feed_head", "-")),
            state,
        )
    console.print(table)


@backup_app.command("prune")
def prune_cmd(
    folder: Annotated[
        Path | None, typer.Argument(help="The folder of sets (default: FCX_BACKUP_DIR).")
    ] = None,
    keep: Annotated[
        int | None, typer.Option("--keep", help="Sets to keep, newest first (default: FCX_BACKUP_KEEP).")
    ] = None,
) -> None:
    """Remove all but the newest sets; the newest complete set is never removed."""
    settings = get_settings()
    folder = folder or (Path(d) if (d := settings.backup_dir) else None)
    if folder is None:
        fail("请给出备份目录（或设置 FCX_BACKUP_DIR） — give the folder (or set FCX_BACKUP_DIR)")
    try:
        removed = backup.prune(folder, keep or settings.backup_keep)
    except backup.BackupError as exc:
        fail(escape(str(exc)))
    console.print(f"已删除 {len(removed)} 份旧备份 Removed {len(removed)} old sets.", highlight=False)
    for path in removed:
        console.print(f"  {escape(str(path))}", highlight=False)


def restore(
    source: Annotated[
        Path,
        typer.Option("--from", help="A set, or a folder of sets (its newest complete one is restored)."),
    ],
    passphrase_file: PassphraseFile = None,
    keys_from: Annotated[
        Path | None, typer.Option("--keys-from", help="Where the set's keys were exported (--keys-to).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Overwrite an installation that is not empty (its tables and key files)."
        ),
    ] = False,
) -> None:
    """Restore a set into this installation (FCX_DATABASE_URL, FCX_DATA_KEY_FILE, FCX_SHARING_KEY_DIR):
    every digest is checked and the keys opened first; an installation that is not empty is refused
    unless --force. Then the checks of `fcx audit verify`; exit status 1 if they fail."""
    try:
        done = backup.restore(
            get_settings(),
            source,
            passphrase=_passphrase(passphrase_file),
            keys_from=keys_from,
            force=force,
            actor=cli_actor(),
        )
    except backup.BackupError as exc:
        fail(escape(str(exc)))
    m = done.manifest
    console.print(
        f"[green]恢复完成 Restored[/]: {escape(m['name'])} (taken {m['created_at']}, platform "
        f"{m['platform_version']}), feed head {m['database']['feed_head']}, schema revision "
        f"{m['database']['revision']}; keys written: {', '.join(done.written_keys) or 'none'}",
        highlight=False,
    )
    if done.signed_by is not None:
        console.print(
            f"[green]清单签名有效 Manifest signed[/] by the feed-signing key {done.signed_by} "
            "(请与节点固定的指纹核对 compare with the fingerprint the nodes pin)",
            highlight=False,
        )
    if done.data_keys:
        console.print(
            f"[green]数据密钥完好 Data keys[/]: every encrypted row opens ({', '.join(done.data_keys)})",
            highlight=False,
        )
    if not done.audit_ok:
        err.print(f"[bold red]审计链断裂 Audit chain broken[/]: {escape(done.audit_problem or '')}")
        raise typer.Exit(1)
    console.print(
        f"[green]审计链完好 Audit chain intact[/]: {done.audit_checked} events verified.", highlight=False
    )
    if done.anchored is None:
        console.print("尚无透明日志 No transparency log yet: the chain is not anchored.", highlight=False)
    elif not done.anchored:
        for problem in done.anchor_problems:
            err.print(
                f"[bold red]与透明日志不符 Not as the transparency log committed it[/]: {escape(problem)}"
            )
        raise typer.Exit(1)
    else:
        console.print(
            "[green]已锚定 Anchored[/]: the chain holds every head committed in the transparency log.",
            highlight=False,
        )
    console.print(
        "节点下次同步时会重新取快照（若它们走在恢复点之后） Nodes that followed the platform past feed head "
        f"{m['database']['feed_head']} take its snapshot again at their next sync.",
        highlight=False,
    )
