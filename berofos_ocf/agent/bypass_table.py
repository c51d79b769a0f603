"""The table of ``berofos-bypass``: one Wazo before a PBX, the watchdog a dead-man's switch.

Same machinery as the promotable agent's :data:`~.table.BEROFOS` (meta-data,
validation, dispatch, usage and man page all come from :data:`BYPASS`), the
same shared parameters (``config``, ``devices``, ``http_timeout``), and two of
its own: ``watchdog_timeout`` (the devices' ``wdogitime``) and ``udp_port``.
Its actions are run by :mod:`.bypass`.

The timing, in one place: the kicker kicks every :func:`kick_interval` seconds
(a sixth of the watchdog interval, at least one second), so the lines stay
with the Wazo through five lost kicks in a row (five sixths of the interval
without one); the monitor calls the watchdog's time left low (degraded) below
:func:`low_time_left` (three kicks missed in a row).
"""

from __future__ import annotations

__all__ = ["BYPASS", "DEFAULT_WATCHDOG_TIMEOUT", "GBL4_PORT", "KICKS_PER_INTERVAL",
           "MIN_KICK_INTERVAL", "kick_interval", "kick_reply_timeout", "low_time_left"]

from .table import (
    Action,
    AgentTable,
    MonitorCode,
    Parameter,
    config_parameter,
    devices_parameter,
    http_timeout_parameter,
)

# berofos_ocf.udp.DEFAULT_UDP_PORT, not imported: meta-data and stop stay light
GBL4_PORT = 50123
# 15 s: five kicks lost in a row (12.5 s without one) are survived, and a dead
# node hands the lines over four times sooner than Wazo's cron workaround (60 s).
DEFAULT_WATCHDOG_TIMEOUT = 15
KICKS_PER_INTERVAL = 6
MIN_KICK_INTERVAL = 1.0  # a datagram a second per device is plenty; less is noise
_MISSED_KICKS_LOW = 3


def kick_interval(watchdog_timeout: int) -> float:
    """Seconds between two kicks of one device."""
    return max(MIN_KICK_INTERVAL, watchdog_timeout / KICKS_PER_INTERVAL)


def kick_reply_timeout(watchdog_timeout: int) -> float:
    """How long one kick waits for the device's reply: half an interval, 2 s at most,
    so that a silent device never delays its own next kick."""
    return min(2.0, kick_interval(watchdog_timeout) / 2)


def low_time_left(watchdog_timeout: int) -> float:
    """Below this many seconds before expiry, kicks are not arriving (three missed)."""
    return max(1.0, watchdog_timeout - _MISSED_KICKS_LOW * kick_interval(watchdog_timeout))


_SHORTDESC = "Puts a Wazo in line before a PBX, with the berofos watchdog as dead-man's switch"

_LONGDESC = """\
Runs one Wazo in front of an existing PBX through one or more beroNet berofos \
failover switches, as a plain primitive (not a clone) on the Wazo node. Wiring \
(scenario bypass): the provider's ISDN lines on port A, the Wazo's CPE spans on \
B and its NET spans on C, the PBX on D. Relay mode 1 puts the Wazo in line (A--B \
and C--D: provider to Wazo, Wazo to PBX); relay mode 0, a berofos without power \
and an expired watchdog connect the provider straight to the PBX (A--D).

Start reads every device, then sets scenario=1, the watchdog interval \
(wdogitime=watchdog_timeout), wdogdef=1 and modedef=1, puts the Wazo in line \
(mode=1) and arms the watchdog (wdog=1), each confirmed by reading it back. \
Before it arms anything it starts a kicker: a small daemon of its own session \
that kicks the watchdog of every device over GBL4 (UDP, unicast to each \
device's host, carrying its MAC) every sixth of watchdog_timeout, at least \
every second, for as long as the resource runs. The kicker does not depend on \
Pacemaker: maintenance mode or a late monitor never drops the lines. If the \
node dies, hangs or loses power, the kicks stop and every berofos hands the \
lines to the PBX by itself within watchdog_timeout seconds: no second node is \
needed.

Stop stops the kicker, then puts the provider straight on the PBX (mode=0, \
modedef=0) and disarms the watchdog (wdog=0), as best it can within a few \
seconds; it never fails. Where a device cannot be reached, its watchdog hands \
the lines over within watchdog_timeout, and the log says so.

Monitor is read-only: not running (7) when not started; failed (1) when the \
kicker is gone, a device is not in line (relays at A--D, or scenario not \
bypass) or its watchdog is off or has fired: Pacemaker then restarts the \
resource, which puts the lines back in line; degraded (190) when a device does \
not answer while the kicker still runs (its kicks may still arrive), when a \
watchdog has little time left (three kicks missed in a row), or when a power-on \
setting (modedef, wdogdef, wdogitime) was changed by hand.

Every device needs a mac line in the config file: the berofos acts only on a \
kick that carries its own MAC ('berofos scan --write /etc/bnfos.conf' writes \
it). Order the resource after the Wazo's Asterisk (start after it, stop \
before it) and keep it on the same node: the lines go through the Wazo only \
while its PBX runs. The promotable agent berofos is for the other wiring (two \
nodes on B and D, watchdog off): never run both on the same devices."""

_PARAMETERS: tuple[Parameter, ...] = (
    config_parameter("the Wazo node"),
    devices_parameter(),
    Parameter(
        "watchdog_timeout", "integer", "Watchdog interval of the devices (seconds)",
        "The berofos's own watchdog interval (wdogitime), written by start to every device. "
        "The kicker kicks every sixth of it (at least every second); when the node dies, "
        "hangs or loses power the kicks stop and every berofos hands the lines to the PBX "
        "within this many seconds. Shorter hands over sooner; longer survives a node that "
        "stalls for a while (a paused virtual machine, a storm of load) or more lost "
        "datagrams. The default, 15, survives five lost kicks in a row (12.5 s without "
        "one) and hands over four times sooner than Wazo's cron workaround (60). Keep the "
        "monitor interval below a third of it, so that a dead kicker is replaced before "
        "the watchdog fires.",
        default=str(DEFAULT_WATCHDOG_TIMEOUT), minimum=5, maximum=3600),
    Parameter(
        "udp_port", "integer", "GBL4 port of the devices (UDP)",
        f"The UDP port of the devices' GBL4 protocol, where the kicks go: "
        f"{GBL4_PORT} on every berofos. Another value is only for an emulated one.",
        default=str(GBL4_PORT), minimum=1, maximum=65535),
    http_timeout_parameter("start and stop write within that time"),
)

_ACTIONS: tuple[Action, ...] = (
    Action("start", 30, handler="start",
           doc="Reads every device (all must answer with their login accepted), starts the "
               "kicker, then sets scenario=1, wdogitime, wdogdef=1, modedef=1, mode=1 (the "
               "Wazo in line) and wdog=1 (watchdog armed) on every device, each confirmed by "
               "reading it back. If a device fails half-way, what was set is undone as stop "
               "undoes it, and start fails naming the device."),
    Action("stop", 20, handler="stop",
           doc="Stops the kicker (SIGTERM, then SIGKILL), then sets mode=0 (provider straight "
               "on the PBX), wdog=0 and modedef=0 on every device it can reach within a few "
               "seconds. Never fails; a device it cannot reach is handed over by its own "
               "watchdog within watchdog_timeout."),
    Action("reload-agent", 20, handler="reload_agent",
           doc="Checks the parameters after a reloadable one (http_timeout) changed; the "
               "kicker keeps running."),
    Action("monitor", 20, interval=5, depth=0, handler="monitor",
           doc="Checks the kicker and reads every device (read-only): in line, watchdog "
               "armed and kicked."),
    Action("validate-all", 20, handler="validate_all",
           doc="Checks the parameters and the file (every device needs a mac line and a "
               "host to send kicks to); at OCF_CHECK_LEVEL 10 also reads and kicks every "
               "device once."),
    Action("meta-data", 5, doc="Prints the meta-data."),
)

_MONITOR_CODES: tuple[MonitorCode, ...] = (
    MonitorCode("0", "running: the kicker runs, every device has the Wazo in line with its "
                     "watchdog armed and kicked"),
    MonitorCode("7", "not started on this node"),
    MonitorCode("190", "degraded: a device does not answer while the kicker still runs, a "
                       "watchdog has little time left (kicks do not arrive), or a power-on "
                       "setting was changed by hand"),
    MonitorCode("1", "failed: the kicker is gone, or a device is not in line (relays at "
                     "A--D, scenario not bypass), or its watchdog is off or has fired; "
                     "Pacemaker restarts the resource"),
    MonitorCode("2, 4, 5, 6", "this node's file is broken or names a device without mac (2); "
                              "permission (4); config file missing (5); parameters wrong "
                              "everywhere (6)"),
)

_EXAMPLE = """\
With pcs (Asterisk starts first; the lines go through the Wazo only while it runs):

pcs resource create isdn-bypass ocf:PROVIDER:berofos-bypass watchdog_timeout=15 \\
    op monitor interval=5s timeout=20s \\
    meta migration-threshold=3 failure-timeout=2min
pcs constraint order start asterisk then start isdn-bypass
pcs constraint colocation add isdn-bypass with asterisk INFINITY

With crmsh:

primitive isdn-bypass ocf:PROVIDER:berofos-bypass params watchdog_timeout=15 \\
    op monitor interval=5s timeout=20s \\
    meta migration-threshold=3 failure-timeout=2min
order asterisk-before-bypass Mandatory: asterisk isdn-bypass
colocation bypass-with-asterisk inf: isdn-bypass asterisk
"""

_FILES = (
    ("/etc/bnfos.conf", "The devices (parameter config); each needs a mac line."),
    ("/run/resource-agents/berofos-bypass-INSTANCE.kicker",
     "The instance's kicker (its PID and start time, the devices it kicks); its existence "
     "means the instance is started on this node."),
)

BYPASS = AgentTable(
    "berofos-bypass", shortdesc=_SHORTDESC, longdesc=_LONGDESC, parameters=_PARAMETERS,
    actions=_ACTIONS, monitor_codes=_MONITOR_CODES, example=_EXAMPLE, files=_FILES,
    module="bypass")
