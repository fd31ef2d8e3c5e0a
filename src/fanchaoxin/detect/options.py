"""Options shared by every `fcx detect` command, kept light so that `fcx detect --help` starts fast (#20).

This module imports only typer and the standard library: the command modules (``cli_*.py``) import
it at module level and load the detectors, DuckDB, the numeric stack and the platform client only
inside the command that needs them.

- The submission options (``--submit``, ``--platform``, ``--key`` …) and `check_options`, which every
  command runs before any detection work.
- Input options: ``--col NAME=COLUMN`` (repeatable) maps the column a detector expects to the column
  the enterprise's file has; ``--timezone`` is the zone of times written without an offset (default
  Asia/Shanghai). `parse_columns` turns the ``--col`` values into the mapping `io.read_table` takes.
- Engine options (#21): ``--engine duckdb|spark`` and ``--spark-master`` (default ``local[*]``); the
  Spark session itself is made by detect/engines.py, inside the command.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

__all__ = [
    "DEFAULT_TIMEZONE",
    "Engine",
    "Severity",
    "check_options",
    "opt_columns",
    "opt_engine",
    "opt_spark_master",
    "opt_timezone",
    "parse_columns",
    "pick_column",
]

DEFAULT_TIMEZONE = "Asia/Shanghai"


class Severity(StrEnum):
    minor = "minor"
    general = "general"
    serious = "serious"


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


def check_options(submit: bool, platform: str | None, key: str | None) -> None:
    """Before any detection work: --submit needs a platform URL and a key (exit 2 otherwise)."""
    if not submit:
        return
    missing = [
        what
        for what, v in (("--platform (or FCX_PLATFORM_URL)", platform), ("--key (or FCX_API_KEY)", key))
        if not v
    ]
    if missing:
        typer.echo(f"error: --submit needs {' and '.join(missing)}", err=True)
        raise typer.Exit(2)
    assert platform is not None
    if not re.match(r"^https?://[^/\s]+", platform):
        typer.echo(f"error: --platform must be an http(s) URL, not {platform!r}", err=True)
        raise typer.Exit(2)


# --- input options ------------------------------------------------------------------------------

_INPUT_PANEL = "Input columns and times"


def opt_columns() -> Any:
    return typer.Option(
        [],
        "--col",
        metavar="NAME=COLUMN",
        help="Read the detector's column NAME from the file's column COLUMN (repeatable), "
        "e.g. --col orderid=order_id --col event_time=created_at.",
        rich_help_panel=_INPUT_PANEL,
    )


def opt_timezone() -> Any:
    return typer.Option(
        DEFAULT_TIMEZONE,
        "--timezone",
        help="Time zone of times written without an offset (IANA name). Times with an offset and epoch "
        "seconds are converted to it.",
        rich_help_panel=_INPUT_PANEL,
    )


def parse_columns(values: Iterable[str], expected: Sequence[str] | None = None) -> dict[str, str]:
    """`--col NAME=COLUMN` values as {NAME: COLUMN}; exit 2 with a clear line on a malformed or unknown NAME.

    `expected` lists the names the detector reads (required and optional); a NAME outside it is refused
    so that a typo never silently leaves a column unmapped.
    """
    mapping: dict[str, str] = {}
    for raw in values:
        name, sep, column = raw.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            _usage(f"--col {raw!r}: write NAME=COLUMN, e.g. --col orderid=order_id")
        if expected is not None and name not in expected:
            _usage(f"--col {raw!r}: this detector reads no column {name!r}; it reads {', '.join(expected)}")
        if name in mapping and mapping[name] != column:
            _usage(f"--col {name}: given twice ({mapping[name]!r} and {column!r})")
        mapping[name] = column
    targets = list(mapping.values())
    dup = sorted({c for c in targets if targets.count(c) > 1})
    if dup:
        _usage(f"--col: the file's column {dup[0]!r} is mapped to more than one name")
    return mapping


def _usage(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


# Options shared by every `fcx detect` command that yields findings (fresh objects for each command).

_SUBMIT_PANEL = "Submit to the platform"


def opt_submit() -> Any:
    return typer.Option(
        False,
        "--submit",
        help="Send the findings to the platform as candidate blacklist entries (status submitted).",
        rich_help_panel=_SUBMIT_PANEL,
    )


def opt_platform() -> Any:
    return typer.Option(
        None,
        "--platform",
        envvar="FCX_PLATFORM_URL",
        help="Platform base URL, e.g. https://fcx.example.gov.cn.",
        rich_help_panel=_SUBMIT_PANEL,
    )


def opt_key() -> Any:
    return typer.Option(
        None,
        "--key",
        envvar="FCX_API_KEY",
        show_default=False,
        help="API key of an enterprise_operator.",
        rich_help_panel=_SUBMIT_PANEL,
    )


def opt_namespace() -> Any:
    return typer.Option(
        None,
        "--account-namespace",
        help="Your platform's code: accounts become platform_account identifiers <namespace>:<account id>.",
        rich_help_panel=_SUBMIT_PANEL,
    )


def opt_severity() -> Any:
    return typer.Option(
        Severity.minor, "--severity", help="Severity proposed for the entries.", rich_help_panel=_SUBMIT_PANEL
    )


def opt_min_score(*, short: bool = True) -> Any:
    """`--submit-min-score`, also `--min-score` where the command has no detector option of that name."""
    names = ("--submit-min-score", "--min-score") if short else ("--submit-min-score",)
    return typer.Option(
        None, *names, help="Submit only findings scoring at least this.", rich_help_panel=_SUBMIT_PANEL
    )


def pick_column(name: str, option: str, value: str | None, mapping: Mapping[str, str]) -> str | None:
    """The file's column for the detector's `name`: from its own option (`--src buyer`) or from
    ``--col name=COLUMN``; exit 2 when both are given and differ. None when neither is."""
    mapped = mapping.get(name)
    if value is not None and mapped is not None and value != mapped:
        _usage(f"{option} {value!r} and --col {name}={mapped} name different columns")
    return value if value is not None else mapped


# --- engine options (#21) -----------------------------------------------------------------------

_ENGINE_PANEL = "Engine"
DEFAULT_SPARK_MASTER = "local[*]"


def opt_engine() -> Any:
    return typer.Option(
        Engine.duckdb,
        "--engine",
        help="duckdb: this machine. spark: Apache Spark (--spark-master), for data a machine cannot hold; "
        "the same answers. With spark, --input is any path Spark reads or table:NAME.",
        rich_help_panel=_ENGINE_PANEL,
    )


def opt_spark_master() -> Any:
    return typer.Option(
        DEFAULT_SPARK_MASTER,
        "--spark-master",
        help="Spark master URL: local[N], spark://HOST:PORT, k8s://https://HOST:PORT or yarn "
        "(under spark-submit: the master given to spark-submit).",
        rich_help_panel=_ENGINE_PANEL,
    )


def spark_session_or_exit(master: str) -> Any:
    """The Spark session of a command run with ``--engine spark``, checked before any work
    (detect/engines.py); what is missing (Java, pyspark, a reachable master) is one line on stderr and
    exit status 2, like bad input."""
    from fanchaoxin.detect import engines

    try:
        return engines.spark_session(master)
    except engines.EngineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc


def echo_shuffle(spark: Any) -> None:
    """Log what the finished Spark job shuffled (the figure to size a cluster's network and disks by)."""
    from fanchaoxin.detect import engines

    line = engines.shuffle_line(spark)
    if line:
        typer.echo(line, err=True)


# --- reports ----------------------------------------------------------------------------------------


def opt_report_html() -> Any:
    return typer.Option(
        None, "--report-html", help="HTML report (default: <output name>.report.html next to --output)."
    )


def opt_report_json() -> Any:
    return typer.Option(
        None, "--report-json", help="JSON report (default: <output name>.report.json next to --output)."
    )


def report_paths(output: Path, html: Path | None, js: Path | None) -> tuple[Path, Path]:
    """The HTML and JSON report paths: as given, else ``<output name>.report.html|json`` beside the output."""
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return (html or output.with_name(f"{stem}.report.html"), js or output.with_name(f"{stem}.report.json"))
