"""The ``carbon`` command line.

Errors carbon raises on purpose end the command with a one-line message on stderr and exit
code 1, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from carbon.cli import (
    accounting,
    admin,
    db,
    demo,
    doctor,
    estimate,
    export,
    regions,
    report,
    run_cmd,
    runs,
    serve,
    sync_cmd,
)
from carbon.errors import CarbonError

app = typer.Typer(
    name="carbon",
    help="Energy and carbon accounting for ML training and inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(runs.app, name="runs")
app.add_typer(db.app, name="db")
app.add_typer(admin.app, name="admin")
app.add_typer(accounting.intensity_app, name="intensity")
app.add_typer(accounting.market_app, name="market")
app.command("whatif")(accounting.whatif_command)
app.command("regions")(regions.regions)
app.command("report")(report.report_command)
app.command("estimate")(estimate.estimate)
app.command("export")(export.export_command)
app.command("doctor")(doctor.doctor)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("run", context_settings={"ignore_unknown_options": True})(run_cmd.run_command)
app.command("sync")(sync_cmd.sync_command)


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except CarbonError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(1)
