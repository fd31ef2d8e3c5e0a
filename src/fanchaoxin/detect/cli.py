"""`fcx detect`: the monitoring toolkit's command group.

Each family of detectors keeps its commands in its own module; they are merged here so that
`fcx detect --help` lists them all in one place. `fcx detect …` runs this app on its own, without the
platform (fanchaoxin.launch): these modules import the detectors only inside their commands.
"""

import typer

from fanchaoxin.detect import (
    cli_datatrade,
    cli_deletion,
    cli_groups,
    cli_orders,
    cli_parcels,
    cli_registrations,
    cli_subsidy,
    cli_text,
)

app = typer.Typer(
    help="Detect 炒信 in an enterprise's own data (CSV, Parquet or JSON Lines, on DuckDB).",
    no_args_is_help=True,
    add_completion=False,  # run on its own by fanchaoxin.launch; `fcx --install-completion` covers it
)
for _sub in (
    cli_orders.app,
    cli_groups.app,
    cli_registrations.app,
    cli_parcels.app,
    cli_text.app,
    cli_subsidy.app,
    cli_deletion.app,
    cli_datatrade.app,
):
    app.registered_commands.extend(_sub.registered_commands)
    app.registered_groups.extend(_sub.registered_groups)
