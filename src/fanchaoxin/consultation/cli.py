"""`fcx consultation …`: meetings, agenda items, decisions and action items (定期会商)."""

from __future__ import annotations

import typer

consultation_app = typer.Typer(help="Regular consultation (定期会商).", no_args_is_help=True)
