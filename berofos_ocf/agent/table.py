"""The agent's one table: parameters, actions and descriptions.

Meta-data XML, parameter validation and the man page ``ocf_PROVIDER_berofos(7)``
are all generated from here, so they cannot disagree.  Pure data: importing this
module costs nothing on an action that does not need it.
"""

from __future__ import annotations

__all__ = [
    "AGENT_NAME",
    "Parameter",
    "Action",
    "PARAMETERS",
    "PARAMETERS_BY_NAME",
    "ACTIONS",
    "SHORTDESC",
    "LONGDESC",
    "PROMOTION_SCORE",
    "RELAY_BONUS",
    "default_timeout",
]

AGENT_NAME = "berofos"

# Promotion scores: every device answers from this node → PROMOTION_SCORE; the
# relays of every device already point here → RELAY_BONUS more, so that a
# cluster start or a rejoining node does not switch lines for nothing.
PROMOTION_SCORE = 100
RELAY_BONUS = 10


class Parameter:
    """One OCF parameter: ``type`` is ``string``, ``integer`` or ``boolean``."""

    __slots__ = ("name", "type", "default", "required", "unique", "shortdesc", "longdesc",
                 "minimum", "maximum", "reloadable")

    def __init__(self, name: str, type: str, shortdesc: str, longdesc: str, *,
                 default: str | None = None, required: bool = False, unique: bool = False,
                 minimum: int | None = None, maximum: int | None = None,
                 reloadable: bool = False) -> None:
        self.name = name
        self.type = type
        self.default = default
        self.required = required
        self.unique = unique
        # OCF 1.1: a change needs a reload-agent, not a restart (every action is
        # a new process that reads its parameters afresh)
        self.reloadable = reloadable
        self.shortdesc = shortdesc
        self.longdesc = longdesc
        self.minimum = minimum
        self.maximum = maximum


class Action:
    """One OCF action as the meta-data advertises it (timeouts in seconds)."""

    __slots__ = ("name", "timeout", "interval", "role", "depth")

    def __init__(self, name: str, timeout: int, *, interval: int | None = None,
                 role: str | None = None, depth: int | None = None) -> None:
        self.name = name
        self.timeout = timeout
        self.interval = interval
        self.role = role
        self.depth = depth


SHORTDESC = "Moves the ISDN lines of berofos failover switches to the promoted node"

LONGDESC = """\
Puts one or more beroNet berofos failover switches under the control of the \
cluster. The ISDN lines of the provider enter each berofos on port A; two PBX \
nodes (Wazo, Asterisk ...) are wired to its ports B and D. Run the agent as a \
promotable clone with at most one promoted instance: promote moves the relays \
of every device to the promoted node (relay mode A--B for the node named in \
port_b, A--D for the node named in port_d), reads each device back until it \
confirms, and points the power-on relay mode (modedef) there too, so that a \
berofos that reboots keeps the lines where they are. Demote and stop never \
touch the devices; the relays stay where they are until the next promote. The \
agent never decides a failover itself: Pacemaker does.

Wiring: provider on A; the port_b node on B; the port_d node on D. Several \
berofos (more than 4 lines) are switched together; list them in the bnfos.conf \
file named by the config parameter (the format of beroNet's bnfos tool; the \
berofos command writes it with 'berofos scan --write /etc/bnfos.conf').

Device preparation, once, with the berofos command: disable the hardware \
watchdog ('berofos set wdog=0 wdogdef=0 scenario=0'): the cluster does not \
kick it, so an enabled watchdog would drop the relays to A--D behind the \
cluster's back. Optionally protect the device ('berofos password \
--update-config'). The file holds that password: make it readable by root only.

Health: the monitor is read-only and reports the real role: 0 unpromoted, 8 \
promoted with every device's relays on this node, 9 promoted but a device's \
relays point elsewhere (a device rebooted with another modedef, a watchdog \
expired, a manual switch: Pacemaker recovers and promote moves them back), \
190/191 degraded when a device cannot be reached from this node, its watchdog \
is enabled, or (promoted) its power-on mode points at the other node. Each \
monitor also refreshes this node's promotion score: 100 when every device \
answers from here, 10 more when the relays already point here, -INFINITY when \
a device cannot be reached (a node that cannot move the relays is never \
promoted, whatever location rules prefer it), 1 on the promoted node when it \
loses sight of a device (a node that reaches every device takes over; a \
berofos down for everyone does not demote the PBX that holds the lines). A \
read is tried three times before it fails, and a failed read lowers a score \
only when the next monitor, at least 5 seconds later, fails too: one dropped \
connection never moves the lines. A location constraint with role=Promoted and \
a score above 10 makes a node preferred.

The cluster must guarantee a single promoted instance: a third vote (a \
corosync-qdevice arbiter; 'berofos check --holder' is its heuristic) or \
fencing. With two_node and neither, a network split gives both halves a \
promoted instance; the agent then limits the damage (the half that held the \
lines with its peer in sight stops taking them back while the peer is out of \
sight) and start warns in the log. Set promoted-max=1 (anything else is \
refused), and migration-threshold=2 with a failure-timeout as the README \
shows. Keep the clone off nodes that are neither port_b nor port_d (location \
constraint -INFINITY): there, start fails with OCF_ERR_ARGS."""

PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "config", "string", "Device file (bnfos.conf format)",
        "Path of the file that lists the berofos devices, in the format of beroNet's bnfos "
        "tool: one [name] section per device with 'host = IP' (or IP:PORT), 'mac = MAC' and "
        "optionally 'login = admin:PASSWORD'. It must exist on every node of port_b and "
        "port_d, and should be readable by root only when it holds a password.",
        default="/etc/bnfos.conf"),
    Parameter(
        "devices", "string", "Devices to switch",
        "Names of the sections of the config file to switch together, separated by spaces "
        "or commas. Empty: every section, in file order (what Wazo's xivo-berofos did).",
        default=""),
    Parameter(
        "port_b", "string", "Node wired to port B",
        "Cluster node name of the PBX wired to port B of every device. Promoting this node "
        "sets relay mode 1 (A--B).", required=True),
    Parameter(
        "port_d", "string", "Node wired to port D",
        "Cluster node name of the PBX wired to port D of every device. Promoting this node "
        "sets relay mode 0 (A--D). The relays also fall to A--D when a device loses power.",
        required=True),
    Parameter(
        "http_timeout", "integer", "Timeout of one HTTP request (seconds)",
        "Seconds allowed for each HTTP request to a device. Every request is also bounded "
        "by what is left of the action's own timeout, so an action always ends before "
        "Pacemaker would kill it; promote retries within that time. Changing it reloads "
        "the resource, it does not restart it.",
        default="3", minimum=1, maximum=60, reloadable=True),
)

PARAMETERS_BY_NAME = {parameter.name: parameter for parameter in PARAMETERS}

ACTIONS: tuple[Action, ...] = (
    Action("start", 20),
    Action("stop", 20),
    Action("promote", 30),
    Action("demote", 10),
    Action("reload-agent", 20),
    Action("monitor", 20, interval=10, role="Promoted", depth=0),
    Action("monitor", 20, interval=11, role="Unpromoted", depth=0),
    Action("validate-all", 20),
    Action("meta-data", 5),
)


def default_timeout(action: str) -> int:
    """The advertised timeout of ``action`` in seconds (when Pacemaker gives none)."""
    for entry in ACTIONS:
        if entry.name == action:
            return entry.timeout
    return 20
