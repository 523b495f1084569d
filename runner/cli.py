"""The command line: parse, build objects, call one function, map errors to exit codes
(the table is :class:`runner.errors.ExitCode`; ``--help`` prints it)."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import traceback
from typing import NoReturn

import click

from runner import __version__
from runner.errors import EXIT_CODES_EPILOG, ExitCode, ShotgraphError, disk_full

# Each subcommand's module, imported only when that command runs: `validate` need not load
# the store, the scheduler or the emulator.
COMMANDS = {
    "validate": "runner.commands.validate_cmd:validate",
    "plan": "runner.commands.plan_cmd:plan",
    "run": "runner.commands.run_cmd:run",
    "replay": "runner.commands.replay_cmd:replay",
    "graph": "runner.commands.graph_cmd:graph",
    "diff": "runner.commands.diff_cmd:diff",
    "ci": "runner.commands.ci_cmd:ci",
    "init": "runner.commands.init_cmd:init",
    "schema": "runner.commands.schema_cmd:schema",
    "report": "runner.commands.report_cmd:report",
    "pick": "runner.commands.review_cmd:pick",
    "approve": "runner.commands.review_cmd:approve",
    "reject": "runner.commands.review_cmd:reject",
    "cache": "runner.commands.cache_cmd:cache",
    "emulator": "runner.commands.emulator_cmd:emulator",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, listed in ``COMMANDS`` order."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_EPILOG,
)
@click.version_option(__version__, prog_name="shotgraph")
def cli() -> None:
    """shotgraph: render AI video from version-controlled YAML."""


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (no traceback for a user error)."""
    try:
        result = cli.main(args=argv, prog_name="shotgraph", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BrokenPipeError:
        # The reader of our output went away (`shotgraph plan | head`); say nothing more.
        sys.stderr.close()
        return ExitCode.USER
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return ExitCode.INTERRUPTED
    except ShotgraphError as exc:
        click.echo(exc.render(), err=True)
        return exc.exit_code
    except Exception as exc:
        # A full disk, wherever it struck, is the user's to fix, not a bug of ours.
        full = disk_full(exc)
        if full is not None:
            click.echo(full.render(), err=True)
            return ExitCode.USER
        return _bug()
    return result if isinstance(result, int) else ExitCode.OK


def _bug() -> int:
    """An internal error: a short message, the traceback in a file to attach to a report."""
    try:
        fd, path = tempfile.mkstemp(prefix="shotgraph-crash-", suffix=".log")
        with os.fdopen(fd, "w") as handle:
            handle.write(f"shotgraph {__version__}\n{' '.join(sys.argv)}\n\n")
            traceback.print_exc(file=handle)
        where = f"the traceback is in {path}; please attach it to a bug report"
    except OSError:
        traceback.print_exc()  # no room for the crash log: the traceback itself, then
        where = "please attach the traceback above to a bug report"
    kind = sys.exc_info()[0]
    click.echo(
        f"internal error ({kind.__name__ if kind else 'unknown'}): this is a bug in "
        f"shotgraph, not in your pipeline.\n    {where}",
        err=True,
    )
    return ExitCode.BUG


def main() -> None:
    exit_with(run())


def exit_with(code: int) -> NoReturn:
    """End the process with ``code`` once the command is over."""
    inflight = sys.modules.get("runner.store.s3_inflight")  # loaded only with a shared store
    if inflight is not None and inflight.unsettled():
        # obstore's threads may still take the GIL (runner.store.s3_inflight): finalising
        # the interpreter could abort the process, so the output is flushed and it ends here.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a reader gone, or closed above
                stream.flush()
        os._exit(code)
    sys.exit(code)
