"""Where the time of a failover or a switchover goes, read from the nodes' own logs.

The test clusters log in UTC with milliseconds (``tests/cluster_init.py`` sets
``TZ=UTC``, corosync's ``timestamp: hires``).  :func:`failover_timeline` and
:func:`switchover_timeline` pick, after a given moment, the first line of each
step and return the steps as seconds after that moment, in order:

failover: kill → token lost (corosync) → new membership (corosync) → transition
start (the DC's scheduler done) → promote started (the DC initiates it) →
relays moved (the emulator).

switchover: command → transition start → demote started → demote done →
promote started → relays moved.

Each timeline also says whether the DC's controller waited for its own CIB
updates before calling the scheduler: Pacemaker 2.1's
``do_pe_invoke_callback()`` (``daemons/controld/controld_schedulerd.c``)
sleeps one second when other CIB updates are still pending.  With the
controller at debug level its "Re-asking for the CIB" line says so; at the
default level the pause shows as a gap of a second between entering
S_POLICY_ENGINE and leaving it.
"""

from __future__ import annotations

__all__ = ["Timeline", "failover_timeline", "switchover_timeline"]

import calendar
import re
import time
from pathlib import Path

_STAMP = re.compile(r"^([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d\.\d{3})")
_SCHEDULER_WAIT = 0.9  # a gap this long in S_POLICY_ENGINE is the controller's sleep(1)


def _epoch(stamp: str, year: int) -> float:
    parsed = time.strptime(f"{year} {stamp[:-4]}", "%Y %b %d %H:%M:%S")
    return calendar.timegm(parsed) + int(stamp[-3:]) / 1000


def _lines(path: Path, since: float) -> list[tuple[float, str]]:
    """(epoch, line) of every timestamped line of ``path`` at or after ``since``."""
    if not path.exists():
        return []
    year = time.gmtime(since).tm_year
    found = []
    for line in path.read_text(errors="replace").splitlines():
        match = _STAMP.match(line)
        if match:
            moment = _epoch(match.group(1), year)
            if moment >= since - 0.001:
                found.append((moment, line))
    return found


def _first(lines: list[tuple[float, str]], pattern: str, after: float = 0.0) -> float | None:
    for moment, line in lines:
        if moment >= after and re.search(pattern, line):
            return moment
    return None


class Timeline:
    """Named steps, in seconds after ``origin`` (None: not found in the logs)."""

    def __init__(self, origin: float, steps: list[tuple[str, float | None]],
                 scheduler_waited: bool) -> None:
        self.origin = origin
        self.steps = steps
        self.scheduler_waited = scheduler_waited

    @property
    def total(self) -> float | None:
        return self.steps[-1][1]

    def __str__(self) -> str:
        parts = [f"{name} {'?' if at is None else f'{at:.2f}'}" for name, at in self.steps]
        wait = "  [controller waited 1 s for its CIB updates]" if self.scheduler_waited else ""
        return " -> ".join(parts) + wait


def _relative(origin: float, moment: float | None) -> float | None:
    return None if moment is None else moment - origin


def _scheduler_waited(pacemaker: list[tuple[float, str]], after: float) -> bool:
    if _first(pacemaker, r"Re-asking for the CIB", after) is not None:
        return True
    entered = None
    for moment, line in pacemaker:
        if moment < after:
            continue
        if re.search(r"State transition \S+ -> S_POLICY_ENGINE", line):
            entered = moment
        elif entered is not None and "S_POLICY_ENGINE -> S_TRANSITION_ENGINE" in line:
            if moment - entered >= _SCHEDULER_WAIT:
                return True
            entered = None
    return False


def failover_timeline(node_dir: Path, killed_at: float, moved_at: float) -> Timeline:
    """The failover as the new DC (``node_dir``, a node's directory of the harness) saw it."""
    corosync = _lines(node_dir / "log-corosync" / "corosync.log", killed_at)
    pacemaker = _lines(node_dir / "log-pacemaker" / "pacemaker.log", killed_at)
    token = _first(corosync, r"A processor failed, forming new configuration")
    membership = _first(corosync, r"A new membership .* was formed")
    transition = _first(pacemaker, r"S_POLICY_ENGINE -> S_TRANSITION_ENGINE", membership or 0)
    promote = _first(pacemaker, r"Initiating promote operation", membership or 0)
    steps = [("token lost", token), ("membership", membership), ("transition", transition),
             ("promote", promote), ("relays moved", moved_at)]
    return Timeline(killed_at, [(name, _relative(killed_at, at)) for name, at in steps],
                    _scheduler_waited(pacemaker, membership or killed_at))


def switchover_timeline(dc_dir: Path, commanded_at: float, moved_at: float) -> Timeline:
    """A planned move of the lines, as the DC (``dc_dir``) ran it."""
    pacemaker = _lines(dc_dir / "log-pacemaker" / "pacemaker.log", commanded_at)
    transition = _first(pacemaker, r"S_POLICY_ENGINE -> S_TRANSITION_ENGINE")
    demote = _first(pacemaker, r"Initiating demote operation")
    demoted = _first(pacemaker, r"\(isdn\S*_demote_0 on \S+\) confirmed")
    promote = _first(pacemaker, r"Initiating promote operation")
    steps = [("transition", transition), ("demote", demote), ("demoted", demoted),
             ("promote", promote), ("relays moved", moved_at)]
    return Timeline(commanded_at, [(name, _relative(commanded_at, at)) for name, at in steps],
                    _scheduler_waited(pacemaker, commanded_at))
