"""`fcx simulate data-access`: an enterprise's customer data and staff access log with planted
泄露倒卖个人信息 and its ground truth (simulate/data_access.py; merged into `fcx simulate`)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer()


@app.command("data-access")
def data_access(
    out: Path = typer.Option(..., "--out", help="Directory to write the CSV files and truth.json into."),
    seed: int = typer.Option(7, "--seed", help="Random seed; the same seed gives byte-identical files."),
    scale: float = typer.Option(
        1.0, "--scale", help="Volume multiplier: 1 ≈ 250,000 access events, 40 ≈ 10,000,000; 0.05 for tests."
    ),
) -> None:
    """Registrations, orders, access log and staff with planted data leaks (docs/detect-datatrade.md)."""
    if not (0 < scale <= 200):
        typer.echo("error: --scale must be in (0, 200]", err=True)
        raise typer.Exit(2)
    from fanchaoxin.simulate.data_access import generate

    try:
        truth = generate(out, seed=seed, scale=scale)
    except OSError as exc:
        typer.echo(f"error: cannot write to {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    files = ", ".join(f"{k} ({v:,} rows)" for k, v in truth["files"].items())
    typer.echo(f"wrote {out}: {files}; ground truth in truth.json, truth_staff.csv, truth_accounts.csv")
