"""How the command shows things: device records, JSON, tables, colour, progress.

Every command that acts on devices describes each one with a record
(:func:`device_record`): ``name``, ``address``, ``mac``, ``ok``, ``error`` and
the command's own fields.  ``--json`` prints the list of them, failures
included, so one shape serves every command.  Colour only on a terminal, and
never when ``NO_COLOR`` is set (https://no-color.org) or ``TERM`` is ``dumb``.
"""

from __future__ import annotations

__all__ = ["device_record", "json_text", "table_lines", "want_colour", "paint", "Progress"]

import json
import time

from ..bnfosconf import DeviceEntry

_COLOURS = {"red": "31", "green": "32", "yellow": "33", "bold": "1"}
_BAR = 30


def device_record(device: DeviceEntry, error: Exception | None = None, **fields) -> dict:
    """One device's record: who it is, whether it went well, and the command's fields."""
    record = {"name": device.name, "address": device.address, "mac": device.mac,
              "ok": error is None, "error": None if error is None else str(error)}
    record.update(fields)
    return record


def json_text(records: list) -> str:
    return json.dumps(records, indent=2)


def table_lines(rows: list[tuple], *, style=None) -> list[str]:
    """Rows as aligned columns; ``style(row, column, text)`` may colour a cell.

    Widths come from the plain text, so colour never shifts a column.
    """
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = []
        for column, (cell, width) in enumerate(zip(row, widths)):
            text = str(cell)
            padding = " " * (width - len(text))
            cells.append((style(index, column, text) if style else text) + padding)
        lines.append("  ".join(cells).rstrip())
    return lines


def want_colour(stream, environ) -> bool:
    """Colour for ``stream``: a terminal, no ``NO_COLOR``, not a dumb one."""
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def paint(text: str, colour: str) -> str:
    return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"


class Progress:
    """A progress bar on ``stream`` that redraws at most every ``interval`` seconds.

    ``live`` draws it as it goes (a terminal); otherwise only the last state
    is written, once.  The time left is estimated from the pace so far.
    """

    def __init__(self, stream, label: str, unit: str, *, live: bool, interval: float = 0.25,
                 clock=time.monotonic) -> None:
        self._stream = stream
        self._label = label
        self._unit = unit
        self._live = live
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None

    def update(self, done: int, total: int) -> None:
        now = self._clock()
        last = done >= total
        if not last and (not self._live or (self._drawn_at is not None
                                            and now - self._drawn_at < self._interval)):
            return
        self._drawn_at = now
        filled = done * _BAR // total
        line = (f"{self._label}: [{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total} "
                f"{self._unit}{self._eta(done, total, now)}")
        self._stream.write(("\r" if self._live else "") + line + ("\n" if last else ""))
        self._stream.flush()

    def _eta(self, done: int, total: int, now: float) -> str:
        if done >= total:
            return f" in {_clock_text(now - self._started)}"
        if not done:
            return ""
        left = (now - self._started) / done * (total - done)
        return f", {_clock_text(left)} left"


def _clock_text(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds + 0.5), 60)
    return f"{minutes}:{seconds:02d}"
