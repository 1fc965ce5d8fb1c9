"""``carbon run -- CMD ARGS...``: track any command as a child process.

The machine's power sources are read while the child runs. Signals sent to carbon
(Ctrl-C, ``kill``, a scheduler's SIGTERM) are passed to the child, carbon waits for it to
end, stores the run, and exits with the child's exit code (128 + the signal's number when
the child was killed by a signal, as shells do).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from carbon.errors import ConfigError

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
INTERRUPTING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_command(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments.")],
    project: Annotated[str, typer.Option(help="Project of the run.")] = "default",
    name: Annotated[str | None, typer.Option(help="Run name (default: the program).")] = None,
    kind: Annotated[str, typer.Option(help="training or inference.")] = "training",
    region: Annotated[str | None, typer.Option(help="ISO country code for CO2e.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE label; repeat for several.")
    ] = None,
) -> None:
    """Run a command and store its energy as a run: ``carbon run -- python train.py``."""
    import carbon

    tags = {"command": " ".join(command)[:500]}
    for item in tag or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--tag expects KEY=VALUE, not {item!r}")
        tags[key] = value
    tracker = carbon.track(
        project=project,
        name=name or Path(command[0]).name,
        kind=kind,
        region=region,
        tags=tags,
    )
    if shutil.which(command[0]) is None:
        raise ConfigError(f"cannot run {command[0]!r}: no such program or not executable")
    children: list[subprocess.Popen[bytes]] = []
    received: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        for child in children:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    returncode = 0
    try:
        with tracker as run:
            try:
                children.append(subprocess.Popen(command))
            except OSError as exc:
                raise ChildFailed(f"cannot start {command[0]!r}: {exc.strerror or exc}") from None
            returncode = children[0].wait()
            run.log_metrics(exit_code=returncode)
            if returncode != 0:
                interrupted = any(sig in INTERRUPTING for sig in received)
                reason = _describe(returncode)
                raise (KeyboardInterrupt(reason) if interrupted else ChildFailed(reason))
    except (KeyboardInterrupt, ChildFailed) as exc:
        typer.secho(f"carbon: {exc}; run {run.id[:8]} stored", err=True, fg=typer.colors.YELLOW)
        returncode = returncode or 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    sys.exit(returncode if returncode >= 0 else 128 - returncode)


class ChildFailed(Exception):  # noqa: N818 - reads as what happened to the child
    """The tracked command exited with a non-zero code."""


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"command killed by {name}"
    return f"command exited with code {returncode}"
