"""`fcx agreement …`: agreement versions, applications, signatures, suspension and withdrawal."""

from __future__ import annotations

import typer

agreement_app = typer.Typer(help="The information-sharing agreement (信息共享协议).", no_args_is_help=True)
