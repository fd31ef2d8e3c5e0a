"""`fcx simulate`."""

import typer

app = typer.Typer(
    help="Generate synthetic marketplace data with planted 炒信 and ground truth.", no_args_is_help=True
)
