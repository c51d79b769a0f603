"""The ``berofos`` command: set up, inspect and switch berofos devices.

A thin layer over the library, one module per concern: :mod:`.entry` (the
parser, ``main`` and errors as exit statuses), :mod:`.context` (what every
command gets: the common options, its devices, the operator), :mod:`.output`
(records, JSON, tables, colour, progress), :mod:`.httpcommands` (status, show,
get, set, switch, check, keys), :mod:`.password`, :mod:`.udpcommands` (scan,
netconf, flash, ping, kick, reset), :mod:`.emulatorcommand` (emulator, and
emulator ctl) and :mod:`.cluster` (whether Pacemaker manages the lines, for
switch).  Exit status: 0 success, 1 a device failed or needs a human, 2 a
usage or configuration error, 130 interrupted.  Every error is one line on
stderr, never a traceback, and never a password.
"""

from __future__ import annotations

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_DEVICE", "EXIT_USAGE", "EXIT_INTERRUPTED"]

from .context import EXIT_DEVICE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .entry import build_parser, main
