"""The one command-line entry point, `fcx`."""

import typer

from fanchaoxin.detect.cli import app as detect_app
from fanchaoxin.simulate.cli import app as simulate_app

app = typer.Typer(help="fanchaoxin (反炒信) — platform, enterprise node and monitoring toolkit.", no_args_is_help=True)
app.add_typer(detect_app, name="detect")
app.add_typer(simulate_app, name="simulate")
