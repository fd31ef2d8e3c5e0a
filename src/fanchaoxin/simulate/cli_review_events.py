"""`fcx simulate` commands for review_events (#20; merged into one Typer app by simulate/cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

app = typer.Typer()


@app.command("review-events")
def review_events(
    out: Path = typer.Option(..., "--out", help="Directory to write the CSV files and truth.json into."),
    seed: int = typer.Option(
        7, "--seed", help="Random seed; the same seed and scale give byte-identical files."
    ),
    scale: float = typer.Option(
        1.0,
        "--scale",
        help="Volume multiplier: 1 ≈ 120,000 reviews and 1,500 merchants; 84 ≈ 10,000,000 reviews.",
    ),
    after_sales_per_review: float = typer.Option(
        0.05,
        "--after-sales-per-review",
        min=0.0,
        max=100.0,
        help="Mean after-sales events (questions, returns) per positive review: makes the after-sales log "
        "as long as a real one; 1.15 gives about as many events as reviews.",
    ),
) -> None:
    """Review and after-sales logs with planted 删除不利评价 and hard negatives (docs/detect-deletion.md)."""
    if not (0 < scale <= 1000):
        typer.echo("error: --scale must be in (0, 1000]", err=True)
        raise typer.Exit(2)
    from fanchaoxin.simulate.review_events import generate

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]simulate review-events[/] {task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("starting", total=None)
        try:
            truth = generate(
                out,
                seed=seed,
                scale=scale,
                after_sales_per_review=after_sales_per_review,
                progress=lambda d: progress.update(task, description=d),
            )
        except OSError as exc:
            typer.echo(f"error: cannot write to {out}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
    files = ", ".join(f"{k} ({v:,} rows)" for k, v in truth["files"].items())
    m = truth["merchants"]
    typer.echo(
        f"wrote {out}: {files}; planted {len(m['induced'])} induced, {len(m['off_log'])} off-log merchants, "
        f"{len(truth['services'])} deletion services ({len(m['service_client'])} clients); "
        "ground truth in truth.json"
    )
