"""`fcx simulate` commands for review_events (#20; merged into one Typer app by simulate/cli.py)."""

from __future__ import annotations

import typer

app = typer.Typer()
