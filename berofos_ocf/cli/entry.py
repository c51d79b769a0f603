"""Where ``berofos`` starts: the parser of the whole command line, and errors as exit statuses.

Every error is one line on stderr, never a traceback and never a password:
0 success, 1 a device failed or needs a human, 2 a usage or configuration
error, 130 interrupted.
"""

from __future__ import annotations

__all__ = ["main", "build_parser", "EXIT_STATUSES"]

import argparse
import contextlib
import logging
import os
import sys

from .. import __version__
from ..bnfosconf import DEFAULT_PATH
from ..errors import BerofosError, ConfigFileError
from . import emulatorcommand, httpcommands, password, udpcommands
from .context import (
    EXIT_DEVICE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    LOGIN_ENV,
    Context,
    Interrupted,
    UsageError,
    add_common_options,
    settle_common_options,
)

# (status, meaning): the man page's EXIT STATUS section and the --help epilog.
EXIT_STATUSES = (
    (EXIT_OK, "success; for status: nothing needs a human"),
    (EXIT_DEVICE, "a device failed (unreachable, login rejected, not confirmed, an answer "
                  "that is not usable); for status: anything that needs a human, each "
                  "problem said with the command that fixes it"),
    (EXIT_USAGE, "usage or configuration error"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, also the source of the man page and the bash completion."""
    statuses = ", ".join(f"{status} {meaning.split(';')[0].split(' (')[0]}"
                         for status, meaning in EXIT_STATUSES)
    parser = _Parser(
        prog="berofos",
        description="Set up, inspect and switch beroNet berofos failover switches.",
        epilog=f"Devices come from the sections of {DEFAULT_PATH} (all of them, in file order, "
               f"unless -f picks some) or from --host; with --host the login, if any, is "
               f"taken from the {LOGIN_ENV} environment variable (USER:PASSWORD), so that it "
               f"never shows in the process list.  Exit status: {statuses}.")
    parser.add_argument("--version", action="version", version=f"berofos {__version__}")
    add_common_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    httpcommands.register(commands)
    password.register(commands)
    udpcommands.register(commands)
    emulatorcommand.register(commands)
    return parser


@contextlib.contextmanager
def _debug_to(stderr, wanted: bool):
    """``-v``: the library's requests, one line each, on stderr, for one run."""
    if not wanted:
        yield
        return
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(logging.Formatter("berofos: debug: %(message)s"))
    logger = logging.getLogger("berofos_ocf")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def main(argv: list[str] | None = None, *, stdout=None, stderr=None, stdin=None,
         environ=None, getpass=None, runner=None) -> int:
    """Run the command line; return the exit status.

    ``getpass(prompt)`` and ``runner(argv, timeout)`` replace the terminal
    prompt and the local tools (Pacemaker's) in tests.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        given = settle_common_options(args)
        ctx = Context(args, given, stdout=stdout, stderr=stderr, stdin=stdin or sys.stdin,
                      environ=os.environ if environ is None else environ, getpass=getpass,
                      runner=runner)
        try:
            with _debug_to(stderr, args.verbose):
                return args.handler(ctx)
        finally:
            ctx.close()
    except (UsageError, ConfigFileError) as err:
        print(f"berofos: error: {err}", file=stderr)
        return EXIT_USAGE
    except Interrupted as err:
        print(f"berofos: {err}", file=stderr)
        return EXIT_INTERRUPTED
    except BerofosError as err:
        print(f"berofos: {err}", file=stderr)
        return EXIT_DEVICE
    except KeyboardInterrupt:
        print("berofos: interrupted", file=stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into head(1) and the like: stop quietly, and keep the
        # interpreter from complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as err:  # local files and sockets; device errors are BerofosError
        where = f"{err.filename}: " if err.filename else ""
        print(f"berofos: error: {where}{(err.strerror or str(err)).lower()}", file=stderr)
        return EXIT_USAGE
