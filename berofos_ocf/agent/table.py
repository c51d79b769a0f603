"""The agents' tables: parameters, actions, monitor codes and descriptions.

One :class:`AgentTable` per agent is the single source of its meta-data XML
(:mod:`.metadata`), parameter validation and defaults (:mod:`.environment`,
:mod:`.actions`), the dispatch of its actions and its usage line (each
:class:`Action` row names the handler that runs it), and its man page
``ocf_PROVIDER_NAME(7)`` (:mod:`berofos_ocf.manpage`), so none of these can
disagree.  :data:`BEROFOS` is the promotable agent's; the bypass agent's,
built from the same shared parameters, is in :mod:`.bypass_table`.  Pure data:
importing this module costs nothing on an action that does not need it.
"""

from __future__ import annotations

__all__ = [
    "Parameter",
    "Action",
    "MonitorCode",
    "AgentTable",
    "BEROFOS",
    "PROMOTION_SCORE",
    "RELAY_BONUS",
    "config_parameter",
    "devices_parameter",
    "http_timeout_parameter",
]

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
    """One OCF action: what the meta-data advertises (timeouts in seconds) and who runs it.

    ``handler`` is the name of the agent's method that runs it (None: the entry
    point answers it without an agent, as meta-data); ``advertised`` False keeps
    it out of the meta-data and the man page (an action the agent accepts but
    no configuration should ask for); ``doc`` says what it does, for the man page.
    """

    __slots__ = ("name", "timeout", "interval", "role", "depth", "handler", "advertised",
                 "doc")

    def __init__(self, name: str, timeout: int, *, interval: int | None = None,
                 role: str | None = None, depth: int | None = None,
                 handler: str | None = None, advertised: bool = True, doc: str = "") -> None:
        self.name = name
        self.timeout = timeout
        self.interval = interval
        self.role = role
        self.depth = depth
        self.handler = handler
        self.advertised = advertised
        self.doc = doc


class MonitorCode:
    """What one exit status of monitor means, for the man page."""

    __slots__ = ("codes", "meaning")

    def __init__(self, codes: str, meaning: str) -> None:
        self.codes = codes
        self.meaning = meaning


class AgentTable:
    """Everything one agent advertises, and the handlers of its actions."""

    def __init__(self, name: str, *, shortdesc: str, longdesc: str,
                 parameters: tuple[Parameter, ...], actions: tuple[Action, ...],
                 monitor_codes: tuple[MonitorCode, ...], example: str,
                 files: tuple[tuple[str, str], ...], module: str = "actions",
                 node_name: str | None = None) -> None:
        self.name = name
        # the module of this package whose run_action(env) runs the actions
        self.module = module
        # the man page's NODE NAME section: how the agent finds its node (None: no section)
        self.node_name = node_name
        self.shortdesc = shortdesc
        self.longdesc = longdesc
        self.parameters = parameters
        self.parameters_by_name = {parameter.name: parameter for parameter in parameters}
        self.actions = actions
        self.monitor_codes = monitor_codes
        self.example = example  # pcs and crmsh lines; PROVIDER stands for the provider
        self.files = files

    def action(self, name: str) -> Action | None:
        """The first row of ``name`` (monitor has one per role)."""
        return next((row for row in self.actions if row.name == name), None)

    def default_timeout(self, name: str) -> int:
        """The advertised timeout of action ``name`` in seconds (when Pacemaker gives none)."""
        row = self.action(name)
        return row.timeout if row else 20

    def advertised(self) -> tuple[Action, ...]:
        return tuple(row for row in self.actions if row.advertised)

    def action_names(self) -> list[str]:
        """Every advertised action once, in table order, and ``usage``."""
        names = []
        for row in self.advertised():
            if row.name not in names:
                names.append(row.name)
        return names + ["usage"]

    def usage(self) -> str:
        return (f"usage: {self.name} {{{'|'.join(self.action_names())}}}\n"
                f"{self.shortdesc}; see ocf_PROVIDER_{self.name}(7).\n")


def config_parameter(what: str) -> Parameter:
    return Parameter(
        "config", "string", "Device file (bnfos.conf format)",
        "Path of the file that lists the berofos devices, in the format of beroNet's bnfos "
        "tool: one [name] section per device with 'host = IP' (or IP:PORT), 'mac = MAC' and "
        f"optionally 'login = admin:PASSWORD'. It must exist on {what}, and should be "
        "readable by root only when it holds a password.",
        default="/etc/bnfos.conf")


def devices_parameter() -> Parameter:
    return Parameter(
        "devices", "string", "Devices to switch",
        "Names of the sections of the config file to switch together, separated by spaces "
        "or commas. Empty: every section, in file order (what Wazo's xivo-berofos did).",
        default="")


def http_timeout_parameter(retries: str = "promote retries within that time") -> Parameter:
    """``retries`` says which action retries its writes within the action's time."""
    return Parameter(
        "http_timeout", "integer", "Timeout of one HTTP request (seconds)",
        "Seconds allowed for each HTTP request to a device. Every request is also bounded "
        "by what is left of the action's own timeout, so an action always ends before "
        f"Pacemaker would kill it; reads are tried three times and {retries}. Changing it "
        "reloads the resource, it does not restart it.",
        default="3", minimum=1, maximum=60, reloadable=True)


_SHORTDESC = "Moves the ISDN lines of berofos failover switches to the promoted node"

_LONGDESC = """\
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

_PARAMETERS: tuple[Parameter, ...] = (
    config_parameter("every node of port_b and port_d"),
    devices_parameter(),
    Parameter(
        "port_b", "string", "Node wired to port B",
        "Cluster node name of the PBX wired to port B of every device. Promoting this node "
        "sets relay mode 1 (A--B).", required=True),
    Parameter(
        "port_d", "string", "Node wired to port D",
        "Cluster node name of the PBX wired to port D of every device. Promoting this node "
        "sets relay mode 0 (A--D). The relays also fall to A--D when a device loses power.",
        required=True),
    http_timeout_parameter(),
)

_ACTIONS: tuple[Action, ...] = (
    Action("start", 20, handler="start",
           doc="Checks the parameters and the file, marks the instance started (unpromoted) "
               "and sets this node's promotion score from one read of the devices. Never "
               "moves the relays."),
    Action("stop", 20, handler="stop",
           doc="Removes the role marker, the promotion score and the node attributes. "
               "Never touches a device, never fails."),
    Action("promote", 30, handler="promote",
           doc="Moves the relays of every device to this node and points their power-on "
               "mode here, each confirmed by reading it back, retrying within the timeout; "
               "logs each device as soon as it is confirmed."),
    Action("demote", 10, handler="demote",
           doc="Marks the instance unpromoted. The relays stay where they are."),
    Action("reload-agent", 20, handler="reload_agent",
           doc="Checks the parameters after a reloadable one (http_timeout) changed; "
               "nothing is restarted."),
    Action("monitor", 20, interval=10, role="Promoted", depth=0, handler="monitor",
           doc="Reads every device (read-only), reports the real role and refreshes the "
               "promotion score and the node attributes."),
    Action("monitor", 20, interval=11, role="Unpromoted", depth=0, handler="monitor"),
    Action("notify", 10, handler="notify", advertised=False),
    Action("validate-all", 20, handler="validate_all",
           doc="Checks the parameters and the file; at OCF_CHECK_LEVEL 10 also every "
               "device (reachable, login accepted, watchdog off) and the cluster's "
               "two-node safety."),
    Action("meta-data", 5, doc="Prints the meta-data."),
)

_MONITOR_CODES: tuple[MonitorCode, ...] = (
    MonitorCode("0", "unpromoted and every device answers"),
    MonitorCode("7", "not started on this node"),
    MonitorCode("8", "promoted, and every device's relays connect this node"),
    MonitorCode("9", "promoted, but a device's relays connect the other node: Pacemaker "
                     "recovers the instance and promote moves them back"),
    MonitorCode("190", "unpromoted, but a device cannot be read from this node (its score "
                       "falls at the second failed monitor), needs a human (watchdog on, fired "
                       "or on at power-on, scenario bypass, relays split, an answer with lines "
                       "missing or not understood), or this node yields the lines to a peer "
                       "out of sight"),
    MonitorCode("191", "promoted, with the same problems, or a device's power-on mode "
                       "pointing at the other node (a reboot would move the lines)"),
    MonitorCode("1", "failed: see the exit reason in crm_mon or pcs status"),
    MonitorCode("2, 4, 5, 6", "this node's own problem, its file broken or neither port_b nor "
                              "port_d (2); permission (4); config file missing (5); "
                              "parameters wrong everywhere (6)"),
)

_EXAMPLE = """\
With pcs (the ISDN lines follow the promoted instance, Asterisk follows the lines):

pcs resource create isdn ocf:PROVIDER:berofos port_b=wazo-1 port_d=wazo-2 \\
    op monitor interval=10s role=Promoted timeout=20s \\
    op monitor interval=11s role=Unpromoted timeout=20s \\
    meta migration-threshold=2 failure-timeout=10min priority=10 \\
    promotable promoted-max=1 promoted-node-max=1 clone-max=2 clone-node-max=1
pcs constraint colocation add asterisk with Promoted isdn-clone INFINITY
pcs constraint order promote isdn-clone then start asterisk

With crmsh:

primitive isdn ocf:PROVIDER:berofos params port_b=wazo-1 port_d=wazo-2 \\
    op monitor role=Promoted interval=10s timeout=20s \\
    op monitor role=Unpromoted interval=11s timeout=20s \\
    meta migration-threshold=2 failure-timeout=10min priority=10
clone isdn-clone isdn meta promotable=true promoted-max=1
colocation asterisk-with-isdn inf: asterisk isdn-clone:Promoted
order isdn-before-asterisk Mandatory: isdn-clone:promote asterisk:start

Two nodes need a third vote: pcs quorum device add model net host=ARBITER \\
algorithm=ffsplit heuristics mode=sync exec_berofos="/usr/bin/berofos check --holder"
"""

_FILES = (
    ("/etc/bnfos.conf", "The devices (parameter config)."),
    ("/run/resource-agents/berofos-INSTANCE.role",
     "The role of the instance on this node (unpromoted or promoted)."),
    ("/run/resource-agents/berofos-INSTANCE.state",
     "What the instance remembers between actions: its failed reads (score hysteresis), "
     "the node attributes it wrote, the split guard."),
)

_NODE_NAME = ("The agent finds the name of the node it runs on in "
              "OCF_RESKEY_CRM_meta_on_node (Pacemaker passes it to every action), "
              "else from 'crm_node -n', else from 'uname -n'; it must be the name "
              "given in port_b or port_d (case does not matter).")

BEROFOS = AgentTable(
    "berofos", shortdesc=_SHORTDESC, longdesc=_LONGDESC, parameters=_PARAMETERS,
    actions=_ACTIONS, monitor_codes=_MONITOR_CODES, example=_EXAMPLE, files=_FILES,
    node_name=_NODE_NAME)
