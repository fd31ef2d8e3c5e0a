"""`fcx simulate` commands for rides (#20; merged into one Typer app by simulate/cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer()


@app.command("rides")
def rides(
    out: Path = typer.Option(
        ..., "--out", help="Directory to write trips.csv, subsidies.csv and the truth into."
    ),
    seed: int = typer.Option(7, "--seed", help="Random seed; the same seed gives byte-identical files."),
    scale: float = typer.Option(
        1.0, "--scale", help="Volume multiplier: 1 ≈ 190,000 trips, 53 ≈ 10,000,000, 0.05 for tests."
    ),
) -> None:
    """One month of a city's ride-hailing trips with planted 刷单骗补 rings (docs/detect-subsidy.md)."""
    if not (0 < scale <= 200):
        typer.echo("error: --scale must be in (0, 200]", err=True)
        raise typer.Exit(2)
    from fanchaoxin.simulate.rides import DAYS, generate

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]simulate rides[/] {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("starting", total=DAYS + 2)

        def on_step(name: str) -> None:
            progress.update(task, description=name, advance=1)

        try:
            truth = generate(out, seed=seed, scale=scale, progress=on_step)
        except OSError as exc:
            typer.echo(f"error: cannot write to {out}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
    files = ", ".join(f"{k} ({v:,} rows)" for k, v in truth["files"].items())
    typer.echo(
        f"wrote {out}: {files}; {len(truth['rings'])} planted rings ({truth['fraud_accounts']} accounts, "
        f"{truth['fake_trips']:,} fake trips); ground truth in truth.json"
    )
