"""One judgement of a device's health, for the agent and the ``berofos`` command alike.

A read of a device (:class:`~berofos_ocf.client.DeviceStatus`) becomes a
:class:`DeviceHealth`: where its relays are and where they go at power-on
(typed, :data:`~berofos_ocf.keys.RELAY_A_B` or :data:`~berofos_ocf.keys.RELAY_A_D`),
what its hardware watchdog puts at risk (:class:`WatchdogRisk`), and every
:class:`Problem` that needs a human, each with its :class:`ProblemKind`, its
words and the command that fixes it.  :func:`assess` judges the devices that
are switched together and adds what only the group shows: relays split
between the nodes.

Who uses it decides what a judgement is worth: the agent maps it to OCF exit
codes, the command line to rows, JSON and an exit status; neither judges a
device itself.  Which node a relay position serves is :func:`relay_owner`.

Fix commands name the devices the way the caller was given them
(:class:`FixCommands`: ``berofos -c FILE -f NAME`` or ``berofos --host
ADDRESS``).  Device text in the words goes through
:func:`~berofos_ocf.text.shown`; no word ever holds a password.
"""

from __future__ import annotations

__all__ = [
    "WatchdogRisk",
    "ProblemKind",
    "Problem",
    "FixCommands",
    "DeviceHealth",
    "assess",
    "read_health",
    "relay_owner",
    "relay_position",
]

import enum
import shlex

from .bnfosconf import DEFAULT_PATH, DeviceEntry
from .configtxt import MAGIC_VALUE, Settings
from .errors import (
    BerofosError,
    CredentialsRejected,
    DeviceCommunicationError,
    DeviceUnreachable,
    FormatError,
)
from .keys import KEYS_BY_NAME, RELAY_A_B, RELAY_A_D, RELAY_LABELS
from .text import shown

_WATCHDOG_OFF = "wdog=0 wdogdef=0"


class WatchdogRisk(enum.Enum):
    """What a device's hardware watchdog does to the lines (the cluster never kicks it)."""

    NONE = "off"
    ENABLED = "enabled"  # running: it fires after wdogitime seconds
    FIRED = "fired"      # has fired: the relays dropped to A--D and stay there
    UNKNOWN = "unknown"  # the device could not be read

    @property
    def words(self) -> str | None:
        """What it means for the lines, or None when it puts nothing at risk."""
        return {WatchdogRisk.ENABLED: "hardware watchdog enabled, relays will fall to A--D",
                WatchdogRisk.FIRED: "hardware watchdog fired (relays dropped to A--D)",
                }.get(self)


class ProblemKind(enum.Enum):
    """Everything about a device that needs a human, by what it takes from the cluster."""

    UNREACHABLE = "unreachable"            # no answer, refused, reset, timed out
    LOGIN_REJECTED = "login-rejected"      # HTTP 401: no login, or a wrong one
    BAD_ANSWER = "bad-answer"              # answered, but no usable relay mode
    ODD_ANSWER = "odd-answer"              # usable, but lines missing or not understood
    RELAYS_SPLIT = "relays-split"          # the lines are split between the nodes
    WATCHDOG_FIRED = "watchdog-fired"
    WATCHDOG_ENABLED = "watchdog-enabled"
    WATCHDOG_AT_POWER_ON = "watchdog-at-power-on"  # wdogdef: a reboot starts it
    BYPASS_SCENARIO = "bypass-scenario"    # scenario 1: mode 1 also connects C--D

    @property
    def meaning(self) -> str:
        """What the kind says about the device, for people (the man page)."""
        return _MEANINGS[self]

    @property
    def blocks_control(self) -> bool:
        """True when the relays cannot be read or moved from here."""
        return self in (ProblemKind.UNREACHABLE, ProblemKind.LOGIN_REJECTED,
                        ProblemKind.BAD_ANSWER)

    @property
    def label(self) -> str:
        """The kind in two words at most, for a table."""
        return self.value.replace("-", " ")


_MEANINGS = {
    ProblemKind.UNREACHABLE: "the device does not answer (refused, reset, no route, timed out)",
    ProblemKind.LOGIN_REJECTED: "the device refuses the login (none given, or a wrong one)",
    ProblemKind.BAD_ANSWER: "the device answers something without a usable relay mode "
                            "(cut short, no magic line, an HTTP error)",
    ProblemKind.ODD_ANSWER: "the answer lacks lines, holds values not understood, or has "
                            "another format version",
    ProblemKind.RELAYS_SPLIT: "the devices switched together have their relays in different "
                              "positions: the lines are split between the nodes",
    ProblemKind.WATCHDOG_FIRED: "the hardware watchdog fired and dropped the relays to A--D",
    ProblemKind.WATCHDOG_ENABLED: "the hardware watchdog runs; nobody kicks it, so it will "
                                  "drop the relays to A--D",
    ProblemKind.WATCHDOG_AT_POWER_ON: "the watchdog starts at power-on (wdogdef)",
    ProblemKind.BYPASS_SCENARIO: "scenario bypass: relay mode 1 also connects C--D",
}


class Problem:
    """Something about a device that needs a human: ``kind``, ``words`` and ``fix``.

    ``words`` say what is wrong (without the device's name); ``fix`` is the
    command that fixes it, or None where no command can (a firmware that
    answers nonsense).
    """

    __slots__ = ("kind", "words", "fix")

    def __init__(self, kind: ProblemKind, words: str, fix: str | None = None) -> None:
        self.kind = kind
        self.words = words
        self.fix = fix

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return (self.kind, self.words, self.fix) == (other.kind, other.words, other.fix)

    def __repr__(self) -> str:
        return f"Problem({self.kind.value!r}, {self.words!r}, fix={self.fix!r})"


class FixCommands:
    """How fix commands name devices: ``berofos [-c FILE] -f NAME``, or ``--host``.

    ``config`` is the device file (None: the devices were given by address);
    ``-c`` is written only when it is not the default file.  ``names`` are the
    devices a group command acts on (None: every device of the file).
    """

    def __init__(self, config: str | None = DEFAULT_PATH, *, names: list[str] | None = None,
                 program: str = "berofos") -> None:
        self.config = config
        self.names = names
        self.program = program

    def _file(self) -> list[str]:
        return [] if self.config in (None, DEFAULT_PATH) else ["-c", self.config]

    def for_device(self, device: DeviceEntry, *args: str) -> str:
        """A command on ``device`` alone."""
        selection = ["-f", device.name] if self.config else ["--host", device.address]
        return shlex.join([self.program, *self._file(), *selection, *args])

    def for_group(self, devices: list[DeviceEntry], *args: str) -> str:
        """A command on the devices judged together."""
        if not self.config:
            return self.for_device(devices[0], *args)
        selection = ["-f", ",".join(self.names)] if self.names else []
        return shlex.join([self.program, *self._file(), *selection, *args])

    def rescan(self, device: DeviceEntry) -> str:
        """What records a device's new address (broadcast: it may be anywhere)."""
        if not self.config:
            return shlex.join([self.program, "scan"])
        return shlex.join([self.program, "scan", "--write", self.config])

    def login(self, device: DeviceEntry) -> str:
        """What gives a device's login: the file's line, set by ``password``, or the variable."""
        if not self.config:
            return shlex.join(["env", "BEROFOS_LOGIN=admin:PASSWORD", self.program, "--host",
                               device.address, "status"])
        return self.for_device(device, "password", "--update-config")


def relay_owner(mode: int, port_b: str | None = None, port_d: str | None = None) -> str:
    """Who a relay position serves: the ``port_b`` node for A--B, ``port_d`` for A--D.

    Without the names, the port: ``port B`` / ``port D``.
    """
    if mode == RELAY_A_B:
        return port_b or "port B"
    return port_d or "port D"


def relay_position(mode: int, port_b: str | None = None, port_d: str | None = None) -> str:
    """``A--B (wazo-1)``: the relays and who they serve."""
    return f"{RELAY_LABELS[mode]} ({relay_owner(mode, port_b, port_d)})"


class DeviceHealth:
    """One device as one read showed it.

    ``relay_mode``, ``power_on_mode`` (``modedef``) and ``scenario`` are None
    when not read; ``watchdog`` is a :class:`WatchdogRisk`, ``watchdog_left``
    the seconds before a running watchdog fires; ``problems`` every
    :class:`Problem`, those that block control first.  ``settings`` and
    ``error`` are what the read gave.
    """

    __slots__ = ("device", "settings", "error", "relay_mode", "power_on_mode", "scenario",
                 "watchdog", "watchdog_left", "problems")

    def __init__(self, device: DeviceEntry, *, settings: Settings | None = None,
                 error: BerofosError | None = None, relay_mode: int | None = None,
                 power_on_mode: int | None = None, scenario: int | None = None,
                 watchdog: WatchdogRisk = WatchdogRisk.UNKNOWN, watchdog_left: int | None = None,
                 problems: list[Problem] | None = None) -> None:
        self.device = device
        self.settings = settings
        self.error = error
        self.relay_mode = relay_mode
        self.power_on_mode = power_on_mode
        self.scenario = scenario
        self.watchdog = watchdog
        self.watchdog_left = watchdog_left
        self.problems = problems or []

    @classmethod
    def of(cls, status, fixes: FixCommands | None = None) -> DeviceHealth:
        """Judge one read (a :class:`~berofos_ocf.client.DeviceStatus`) of one device."""
        fixes = fixes or FixCommands()
        if status.error is not None:
            return cls(status.device, error=status.error,
                       problems=[_error_problem(status.device, status.error, fixes)])
        return _judge_settings(status.device, status.settings, fixes)

    @property
    def usable(self) -> bool:
        """True when the relays can be read and moved from here."""
        return not any(problem.kind.blocks_control for problem in self.problems)

    @property
    def unusable_reason(self) -> str | None:
        """Why the device cannot be used from here, naming it; None when it can."""
        for problem in self.problems:
            if problem.kind.blocks_control:
                return str(self.error) if self.error else self.message(problem)
        return None

    def message(self, problem: Problem) -> str:
        """``fos1 (10.0.0.5): words``."""
        return f"{self.device.label}: {problem.words}"

    def kinds(self) -> list[ProblemKind]:
        return [problem.kind for problem in self.problems]

    def __repr__(self) -> str:
        return (f"DeviceHealth({self.device.name!r}, relay_mode={self.relay_mode!r}, "
                f"watchdog={self.watchdog.value!r}, problems={self.problems!r})")


def _error_problem(device: DeviceEntry, error: BerofosError, fixes: FixCommands) -> Problem:
    """The problem behind a read that failed."""
    detail = error.detail if isinstance(error, DeviceCommunicationError) else str(error)
    if isinstance(error, CredentialsRejected):
        return Problem(ProblemKind.LOGIN_REJECTED, f"login rejected: {detail}",
                       fixes.login(device))
    if isinstance(error, DeviceUnreachable):
        return Problem(ProblemKind.UNREACHABLE, f"unreachable: {detail} (powered off, or at "
                       "another address?)", fixes.rescan(device))
    return Problem(ProblemKind.BAD_ANSWER, f"answer not usable: {detail}")


def _judge_settings(device: DeviceEntry, settings: Settings, fixes: FixCommands
                    ) -> DeviceHealth:
    values = settings.values()
    health = DeviceHealth(device, settings=settings, power_on_mode=values.get("modedef"),
                          scenario=values.get("scenario"), watchdog=_watchdog_risk(values),
                          watchdog_left=values.get("wdogrtime"))
    odd = _oddities(settings)
    try:
        health.relay_mode = settings.relay_mode
    except FormatError as err:
        health.problems.append(Problem(ProblemKind.BAD_ANSWER, "; ".join(
            [f"answer not usable: {shown(str(err))}"] + odd)))
    else:
        if odd:
            health.problems.append(Problem(ProblemKind.ODD_ANSWER,
                                           "answer not as expected: " + "; ".join(odd)))
    health.problems += _setting_problems(device, values, health.watchdog, fixes)
    return health


def _watchdog_risk(values: dict) -> WatchdogRisk:
    state = values.get("wdogstate")
    if state == 2:
        return WatchdogRisk.FIRED
    if values.get("wdog") or state == 1:
        return WatchdogRisk.ENABLED
    return WatchdogRisk.NONE


# The lines a judgement rests on besides mode: without them the power-on mode,
# the scenario or the watchdog cannot be told.  A firmware that lacks another
# line (what real firmware prints is not fully known) is not a problem.
_RELIED_ON = ("modedef", "scenario", "wdog", "wdogdef", "wdogstate")


def _oddities(settings: Settings) -> list[str]:
    """What a usable answer lacks or holds that no firmware prints, in words."""
    odd = []
    missing = [KEYS_BY_NAME[name].wire for name in settings.missing() if name in _RELIED_ON]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        odd.append(f"no {', '.join(missing[:3])}{more} line (cut short?)")
    odd += [f"{name} '{shown(raw)}' not understood"
            for name, raw in settings.invalid().items() if name != "mode"]
    if settings.magic != MAGIC_VALUE:
        odd.append(f"format {shown(settings.magic)}, expected {MAGIC_VALUE}")
    return odd


def _setting_problems(device: DeviceEntry, values: dict, watchdog: WatchdogRisk,
                      fixes: FixCommands) -> list[Problem]:
    """The settings that break what the cluster assumes (Wazo's preparation)."""
    problems = []
    if watchdog is WatchdogRisk.FIRED:
        problems.append(Problem(ProblemKind.WATCHDOG_FIRED, watchdog.words,
                                fixes.for_device(device, "set", *_WATCHDOG_OFF.split())))
    elif watchdog is WatchdogRisk.ENABLED:
        problems.append(Problem(ProblemKind.WATCHDOG_ENABLED, watchdog.words,
                                fixes.for_device(device, "set", *_WATCHDOG_OFF.split())))
    elif values.get("wdogdef"):
        problems.append(Problem(ProblemKind.WATCHDOG_AT_POWER_ON,
                                "hardware watchdog enabled at power-on (wdogdef): a reboot "
                                "starts it, then the relays fall to A--D",
                                fixes.for_device(device, "set", "wdogdef=0")))
    if values.get("scenario") == 1:
        problems.append(Problem(ProblemKind.BYPASS_SCENARIO,
                                "scenario bypass: relay mode 1 also connects C--D",
                                fixes.for_device(device, "set", "scenario=0")))
    return problems


def assess(statuses: list, fixes: FixCommands | None = None) -> list[DeviceHealth]:
    """Judge devices switched together: each one, then the group.

    Relays split between A--B and A--D split the lines between the nodes.  The
    position they belong to is where most power-on modes point (the agent's
    promote points them at the node it moves the lines to, a watchdog or a
    switch by hand leaves them), then where most relays are, then the first
    device's; each device away from it gets a :data:`ProblemKind.RELAYS_SPLIT`
    problem whose fix moves them all there.
    """
    fixes = fixes or FixCommands()
    healths = [DeviceHealth.of(status, fixes) for status in statuses]
    modes = [h.relay_mode for h in healths if h.relay_mode is not None]
    if len(set(modes)) < 2:
        return healths
    power_on = [h.power_on_mode for h in healths]
    target = max((RELAY_A_B, RELAY_A_D),
                 key=lambda m: (power_on.count(m), modes.count(m), m == modes[0]))
    command = fixes.for_group([h.device for h in healths], "switch",
                              "master" if target == RELAY_A_B else "slave")
    for health in healths:
        if health.relay_mode is not None and health.relay_mode != target:
            health.problems.append(Problem(
                ProblemKind.RELAYS_SPLIT,
                f"relays at {RELAY_LABELS[health.relay_mode]}, not at {RELAY_LABELS[target]} "
                "like the others: the lines are split between the nodes", command))
    return healths


def read_health(clients: list, deadline, fixes: FixCommands | None = None) -> list[DeviceHealth]:
    """Read every device once, in parallel within ``deadline``, and :func:`assess` them."""
    from .client import read_status

    return assess(read_status(clients, deadline), fixes)
