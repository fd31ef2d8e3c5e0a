"""`fcx simulate`.

The simulators (numpy, and pyarrow for Parquet) are imported inside each command, so that
`fcx simulate --help` starts fast (fanchaoxin.launch runs this group without the platform).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fanchaoxin.simulate import cli_data_access, cli_review_events, cli_rides

app = typer.Typer(
    help="Generate synthetic marketplace data with planted 炒信 and ground truth.",
    no_args_is_help=True,
    add_completion=False,  # run on its own by fanchaoxin.launch; `fcx --install-completion` covers it
)


@app.callback()
def _group() -> None:
    # A callback keeps this a group of commands whatever their number (Typer runs a lone command
    # as the app itself), the same whether it runs on its own or under `fcx`.
    pass


@app.command("marketplace")
def marketplace(
    out: Path = typer.Option(..., "--out", help="Directory to write the CSV files and truth.json into."),
    seed: int = typer.Option(7, "--seed", help="Random seed; the same seed gives byte-identical files."),
    scale: float = typer.Option(1.0, "--scale", help="Volume multiplier: 1 ≈ 40,000 orders, 0.05 for tests."),
) -> None:
    """Write orders, reviews, edges, actions, registrations, waybills with planted 炒信 (docs/simulate.md)."""
    from fanchaoxin.simulate.marketplace import generate

    if not (0 < scale <= 200):
        typer.echo("error: --scale must be in (0, 200]", err=True)
        raise typer.Exit(2)
    steps = ["catalogue", "orders", "waybills", "reviews", "actions", "registrations", "truth"]
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]simulate[/] {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("starting", total=len(steps))

        def on_step(name: str) -> None:
            progress.update(task, description=name, completed=steps.index(name) if name in steps else 0)

        try:
            truth = generate(out, seed=seed, scale=scale, progress=on_step)
        except OSError as exc:
            typer.echo(f"error: cannot write to {out}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
        progress.update(task, completed=len(steps))
    files = ", ".join(f"{k} ({v:,} rows)" for k, v in truth["files"].items())
    typer.echo(f"wrote {out}: {files}; ground truth in truth.json")


# The simulators of the three forms of 炒信 detected since #20, each in its own module.
for _sub in (cli_rides.app, cli_review_events.app, cli_data_access.app):
    app.registered_commands.extend(_sub.registered_commands)
