"""`fcx`, the console script: `fcx detect …` and `fcx simulate …` start without loading the platform (#20).

The full command tree (`fanchaoxin.cli`) imports the web framework, the ORM and every slice of the
platform — over a second before anything runs. The monitoring toolkit and the simulators need none of
it: an enterprise runs them on its own data, as a standalone client. So their command groups are
dispatched here straight to their own Typer apps, which load the detectors, DuckDB and the numeric
stack only inside the command that runs; every other command (and `fcx`, `fcx --help`) goes to the
full tree, which lists the same two groups.
"""

from __future__ import annotations

import sys

import typer

from fanchaoxin.detect.cli import app as detect_app
from fanchaoxin.simulate.cli import app as simulate_app

__all__ = ["STANDALONE", "main"]

STANDALONE: dict[str, typer.Typer] = {"detect": detect_app, "simulate": simulate_app}
"""Command groups that run without the platform, by their name under `fcx`."""


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    group = STANDALONE.get(args[0]) if args else None
    if group is not None:
        try:
            group(args[1:], prog_name=f"fcx {args[0]}")
        except Exception as exc:
            # a Spark job failing after its checks (--engine spark): one line, not a JVM stack trace
            if type(exc).__module__.split(".")[0] not in ("pyspark", "py4j"):
                raise
            from fanchaoxin.detect.engines import failure_line  # only on a Spark failure

            sys.stderr.write(f"error: {failure_line(exc)}\n")
            raise SystemExit(1) from exc
        return
    from fanchaoxin.cli import app

    app(args, prog_name="fcx")


if __name__ == "__main__":
    main()
