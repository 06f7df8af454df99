"""The ``callpulse`` command: a thin layer over the library; every error is one line."""

from __future__ import annotations

import logging
import os
import sys

import click

# Each module adds its commands to the root group when imported.
from callpulse.cli import (  # noqa: F401
    alerts,
    db,
    demo,
    emulate,
    export,
    numbers,
    quarantine,
    reconcile,
    report,
    serve,
    simulate,
)
from callpulse.cli.base import cli
from callpulse.config import PREFIX
from callpulse.errors import CallpulseError

__all__ = ["cli", "main"]


def _fail(message: str) -> None:
    print(f"callpulse: error: {message}", file=sys.stderr)  # the stream of the moment


def main(argv: list[str] | None = None) -> None:
    # The pool warns on every failed connection attempt; the one-line error below says why.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    try:
        cli.main(args=argv, prog_name="callpulse", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        _fail(exc.format_message())
        sys.exit(exc.exit_code)
    except CallpulseError as exc:
        _fail(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the last line of defence: no traceback for users
        if os.environ.get(PREFIX + "DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set CALLPULSE_DEBUG=1 for details)")
        sys.exit(1)
