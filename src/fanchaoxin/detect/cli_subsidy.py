"""Commands of `fcx detect` for subsidy (merged into one Typer app by detect/cli.py)."""

from __future__ import annotations

import typer

app = typer.Typer()
