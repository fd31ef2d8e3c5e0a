"""Commands of `fcx detect` (merged into one Typer app by detect/cli.py)."""

import typer

app = typer.Typer()
