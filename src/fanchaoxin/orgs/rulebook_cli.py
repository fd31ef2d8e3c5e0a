"""`fcx rulebook …`: an enterprise's rulebook (企业规则)."""

from __future__ import annotations

import typer

rulebook_app = typer.Typer(
    help="Each enterprise's rulebook: which measures its rules allow (企业规则).", no_args_is_help=True
)
