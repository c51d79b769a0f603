"""The OCF actions: start, stop, monitor, promote, demote, notify, validate-all.

What each does and never does is ``design.md``'s action table; what each fault
gets is its fault table.  In short: only promote writes to a device; monitor is
read-only and reports the real role; stop depends on nothing but the local
disk; every device call is bounded by what is left of ``CRM_meta_timeout``
minus a safety margin, so no action runs into Pacemaker's SIGKILL.

Everything the actions need from outside (environment, log, command runner,
clock) is injected into :class:`BerofosAgent`.
"""

from __future__ import annotations

__all__ = ["BerofosAgent", "AgentFailure", "run_action", "time_budget", "device_budget",
           "DEGRADED_PROMOTED_SCORE"]

import os
import sys
import time

from ..deadline import Deadline
from ..keys import RELAY_A_B, RELAY_A_D, RELAY_LABELS
from .codes import OCFStatus
from .environment import AgentEnvironment
from .ocflog import AgentLog, open_log
from .state import PROMOTED, UNPROMOTED, PromotionScore, RoleMarker, run_command
from .table import PARAMETERS, PROMOTION_SCORE, RELAY_BONUS

# A promoted instance that loses sight of a device keeps this score instead of
# -INFINITY: where another node can reach every device (score >= 100) Pacemaker
# moves the lines there, but a berofos that is down for everyone does not make
# the cluster demote the PBX that holds the lines.
DEGRADED_PROMOTED_SCORE = 1
_USAGE = ("usage: berofos {start|stop|monitor|promote|demote|notify|validate-all|meta-data|"
          "usage}\nOCF resource agent for beroNet berofos failover switches; see "
          "ocf_berofos_berofos(7).\n")


class AgentFailure(Exception):
    """Ends an action with ``status`` and the exit reason ``reason``."""

    def __init__(self, status: OCFStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def time_budget(timeout: float) -> float:
    """Seconds an action may spend: its timeout minus a margin for start-up and exit."""
    margin = min(max(1.0, timeout * 0.1), 5.0)
    return max(timeout - margin, 0.5)


def device_budget(budget: float) -> float:
    """The part of the budget devices may use: the rest is kept for crm_attribute,
    so that a promote that spent its time retrying can still withdraw its score."""
    return budget - min(2.0, budget * 0.25)


class _Setup:
    """The resource's configuration, validated: who we are and which devices."""

    __slots__ = ("node", "port_b", "port_d", "own_mode", "conf", "devices", "http_timeout")

    def __init__(self, node, port_b, port_d, own_mode, conf, devices, http_timeout) -> None:
        self.node = node
        self.port_b = port_b
        self.port_d = port_d
        self.own_mode = own_mode
        self.conf = conf
        self.devices = devices
        self.http_timeout = http_timeout

    def owner(self, mode: int) -> str:
        """The node whose port a relay mode connects."""
        return self.port_b if mode == RELAY_A_B else self.port_d


class _Health:
    """One device as seen from this node by one read.

    ``problem``: why it cannot be used from here (None: it can); ``watchdog``:
    what its hardware watchdog puts at risk (None: nothing).
    """

    __slots__ = ("device", "mode", "problem", "watchdog")

    def __init__(self, device, mode=None, problem=None, watchdog=None) -> None:
        self.device = device
        self.mode = mode
        self.problem = problem
        self.watchdog = watchdog


def _watchdog_risk(values: dict) -> str | None:
    if values.get("wdogstate") == 2:
        return "hardware watchdog fired (relays dropped to A--D)"
    if values.get("wdog") or values.get("wdogstate") == 1:
        return "hardware watchdog enabled, relays will fall to A--D"
    return None


def _device_names(text: str) -> list[str]:
    return [name for name in text.replace(",", " ").split() if name]


class BerofosAgent:
    """One action of one instance."""

    def __init__(self, env: AgentEnvironment, log: AgentLog, *, runner=run_command,
                 clock=time.monotonic, sleep=time.sleep, hostname=None) -> None:
        self.env = env
        self.log = log
        self._runner = runner
        self._clock = clock
        self._sleep = sleep
        self._hostname = hostname or (lambda: os.uname().nodename)
        budget = time_budget(env.timeout)
        self.deadline = Deadline(budget, clock=clock)
        self.device_deadline = Deadline(device_budget(budget), clock=clock)
        self.marker = RoleMarker(env.rsc_tmp, env.instance)
        self._node: str | None = None
        self._score: PromotionScore | None = None

    # -- dispatch ----------------------------------------------------------------------

    def run(self) -> int:
        handlers = {
            "start": self.start, "stop": self.stop, "monitor": self.monitor,
            "promote": self.promote, "demote": self.demote, "notify": self.notify,
            "validate-all": self.validate_all,
        }
        action = self.env.action
        if action in ("usage", "help"):
            sys.stderr.write(_USAGE)
            return OCFStatus.SUCCESS
        handler = handlers.get(action)
        if handler is None:
            sys.stderr.write(_USAGE)
            self.log.exit_reason(f"unknown action {action!r}" if action else "no action given")
            return OCFStatus.ERR_UNIMPLEMENTED
        try:
            return int(handler())
        except AgentFailure as failure:
            self.log.exit_reason(failure.reason)
            return int(failure.status)
        except Exception as err:  # a bug must not leave Pacemaker without an answer
            import traceback

            self.log.debug("".join(traceback.format_exception(err)))
            self.log.exit_reason(f"internal error in {action}: {type(err).__name__}: {err}")
            return OCFStatus.SUCCESS if action == "stop" else OCFStatus.ERR_GENERIC

    # -- configuration -----------------------------------------------------------------

    def node_name(self) -> str:
        """This node's name: CRM_meta_on_node, then ``crm_node -n``, then ``uname -n``."""
        if self._node is None:
            if self.env.on_node:
                self._node = self.env.on_node
            else:
                status, out, _ = self._runner(["crm_node", "-n"], self.deadline.bound(5.0))
                self._node = out.strip() if status == 0 and out.strip() else self._hostname()
        return self._node

    @property
    def score(self) -> PromotionScore:
        if self._score is None:
            self._score = PromotionScore(self.env.instance, self.node_name(),
                                         enabled=self.env.promotable, log=self.log,
                                         runner=self._runner,
                                         timeout=lambda: self.deadline.bound(5.0))
        return self._score

    def _parameters(self) -> dict[str, object]:
        """Every parameter of the table, checked against it (ERR_CONFIGURED if wrong)."""
        values: dict[str, object] = {}
        for parameter in PARAMETERS:
            text = self.env.parameter(parameter.name).strip()
            if parameter.required and not text:
                raise AgentFailure(OCFStatus.ERR_CONFIGURED,
                                   f"parameter {parameter.name} is required")
            if parameter.type == "integer":
                if not text.isdigit() or not text.isascii() or len(text) > 9:
                    raise AgentFailure(OCFStatus.ERR_CONFIGURED,
                                       f"{parameter.name}={text[:20]!r} is not a whole number "
                                       f"from {parameter.minimum} to {parameter.maximum}")
                number = int(text)
                if not parameter.minimum <= number <= parameter.maximum:
                    raise AgentFailure(OCFStatus.ERR_CONFIGURED,
                                       f"{parameter.name}={number} is outside "
                                       f"{parameter.minimum}-{parameter.maximum}")
                values[parameter.name] = number
            else:
                values[parameter.name] = text
        return values

    def setup(self) -> _Setup:
        """Validate parameters, this node and the device file (design.md's fault table)."""
        from ..bnfosconf import load_bnfos_conf
        from ..errors import ConfigFileError

        values = self._parameters()
        port_b, port_d = values["port_b"], values["port_d"]
        if port_b.lower() == port_d.lower():
            raise AgentFailure(OCFStatus.ERR_CONFIGURED,
                               f"port_b and port_d name the same node ({port_b})")
        node = self.node_name()
        if node.lower() == port_b.lower():
            own_mode = RELAY_A_B
        elif node.lower() == port_d.lower():
            own_mode = RELAY_A_D
        else:
            raise AgentFailure(OCFStatus.ERR_ARGS, f"this node ({node}) is neither port_b "
                               f"({port_b}) nor port_d ({port_d})")
        try:
            conf = load_bnfos_conf(values["config"])
            devices = conf.select(_device_names(values["devices"]))
        except ConfigFileError as err:
            status = {"missing": OCFStatus.ERR_INSTALLED,
                      "permission": OCFStatus.ERR_PERM}.get(err.kind, OCFStatus.ERR_CONFIGURED)
            raise AgentFailure(status, str(err)) from None
        return _Setup(node, port_b, port_d, own_mode, conf, devices, values["http_timeout"])

    # -- devices -----------------------------------------------------------------------

    def _clients(self, setup: _Setup) -> list:
        from ..client import BerofosClient

        return [BerofosClient(device, timeout=setup.http_timeout, clock=self._clock,
                              sleep=self._sleep) for device in setup.devices]

    def read_devices(self, setup: _Setup) -> list[_Health]:
        """Read every device once, in parallel, within the action's budget."""
        from ..client import read_status
        from ..errors import BerofosError

        clients = self._clients(setup)
        health = []
        for client, status in zip(clients, read_status(clients, self.device_deadline)):
            if status.error is not None:
                health.append(_Health(client.device, problem=str(status.error)))
                continue
            try:
                mode = client.relay_mode(status.settings)
            except BerofosError as err:
                health.append(_Health(client.device, problem=str(err)))
                continue
            health.append(_Health(client.device, mode=mode,
                                  watchdog=_watchdog_risk(status.settings.values())))
        return health

    def refresh_score(self, setup: _Setup, health: list[_Health], role: str | None) -> None:
        if any(h.problem for h in health):
            if role == PROMOTED:
                self.score.set(DEGRADED_PROMOTED_SCORE)
            else:
                self.score.withhold()
            return
        here = all(h.mode == setup.own_mode for h in health)
        self.score.set(PROMOTION_SCORE + (RELAY_BONUS if here else 0))

    def _position(self, setup: _Setup, mode: int) -> str:
        return f"{RELAY_LABELS[mode]} ({setup.owner(mode)})"

    # -- actions -----------------------------------------------------------------------

    def start(self) -> OCFStatus:
        if self.log.missing:
            raise AgentFailure(OCFStatus.ERR_INSTALLED, self.log.missing)
        setup = self.setup()
        role = self.marker.read()
        if role is None:
            role = UNPROMOTED
            self.marker.write(role)
        health = self.read_devices(setup)
        for item in health:
            if item.problem:
                self.log.warning(f"started without control of {item.problem}: no promotion "
                                 "score until it answers")
        self.refresh_score(setup, health, role)
        return OCFStatus.SUCCESS

    def stop(self) -> OCFStatus:
        # Never fails and never waits on the network: a failed stop gets the
        # node fenced.  The relays stay where they are.
        try:
            self.marker.remove()
        except OSError as err:
            self.log.warning(f"could not remove {self.marker.path}: {err.strerror}")
        if self.env.promotable:
            self.score.delete()
        return OCFStatus.SUCCESS

    def demote(self) -> OCFStatus:
        if self.marker.read() is None:
            raise AgentFailure(OCFStatus.NOT_RUNNING, "demote of an instance that is not started")
        self.marker.write(UNPROMOTED)
        return OCFStatus.SUCCESS

    def notify(self) -> OCFStatus:
        self.log.info(f"notify {self.env.notify_summary()}")
        return OCFStatus.SUCCESS

    def promote(self) -> OCFStatus:
        from ..client import for_each_device

        if self.marker.read() is None:
            raise AgentFailure(OCFStatus.NOT_RUNNING, "promote of an instance that is not started")
        setup = self.setup()
        clients = self._clients(setup)
        deadline = self.device_deadline
        outcomes = for_each_device(lambda c: c.switch_relays(setup.own_mode, deadline),
                                   clients, deadline, label=lambda c: c.label)
        failures = []
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                failures.append(outcome)
            elif outcome.changed:
                self.log.info(f"{outcome.device.label}: relays {RELAY_LABELS[outcome.old_mode]} "
                              f"-> {RELAY_LABELS[outcome.new_mode]} for node {setup.node}")
        if failures:
            self.score.withhold()
            detail = "; ".join(str(failure) for failure in failures)
            raise AgentFailure(OCFStatus.ERR_GENERIC, f"{detail} (relays not all moved to "
                               f"{RELAY_LABELS[setup.own_mode]} for {setup.node})")
        self.marker.write(PROMOTED)
        self.score.set(PROMOTION_SCORE + RELAY_BONUS)
        return OCFStatus.SUCCESS

    def monitor(self) -> OCFStatus:
        role = self.marker.read()
        if role is None:
            if not self.env.is_probe:
                self.log.exit_reason("not started on this node (no role marker in "
                                     f"{self.marker.directory})")
            return OCFStatus.NOT_RUNNING
        try:
            setup = self.setup()
        except AgentFailure as failure:
            # Started, but the configuration broke since: not a reason to stop
            # the clone everywhere (6) or to ban the node from a probe (2, 5).
            raise AgentFailure(OCFStatus.ERR_GENERIC, failure.reason) from None
        health = self.read_devices(setup)
        self.refresh_score(setup, health, role)
        return self._verdict(setup, health, role)

    def _verdict(self, setup: _Setup, health: list[_Health], role: str) -> OCFStatus:
        elsewhere = [h for h in health if h.mode is not None and h.mode != setup.own_mode]
        lost = [h.problem for h in health if h.problem]
        risks = lost + [f"{h.device.label}: {h.watchdog}" for h in health if h.watchdog]
        if role == PROMOTED and elsewhere:
            first = elsewhere[0]
            raise AgentFailure(OCFStatus.FAILED_PROMOTED,
                               f"{first.device.label} relays at {self._position(setup, first.mode)}"
                               f", expected {self._position(setup, setup.own_mode)}")
        if risks:
            self.log.degraded("; ".join(risks))
            return (OCFStatus.DEGRADED_PROMOTED if role == PROMOTED else OCFStatus.DEGRADED)
        return OCFStatus.RUNNING_PROMOTED if role == PROMOTED else OCFStatus.SUCCESS

    def validate_all(self) -> OCFStatus:
        if self.log.missing:
            raise AgentFailure(OCFStatus.ERR_INSTALLED, self.log.missing)
        setup = self.setup()
        if setup.conf.world_readable and setup.conf.holds_password:
            self.log.warning(f"{setup.conf.path} holds a password and is readable by everyone: "
                             f"chmod 600 {setup.conf.path}")
        if self.env.check_level < 10:
            return OCFStatus.SUCCESS
        return self._validate_devices(setup)

    def _validate_devices(self, setup: _Setup) -> OCFStatus:
        from ..client import read_status

        clients = self._clients(setup)
        for client, status in zip(clients, read_status(clients, self.device_deadline)):
            if status.error is not None:
                # not usable from this host: the answer validate-all has for it
                raise AgentFailure(OCFStatus.ERR_ARGS, str(status.error))
            values = status.settings.values()
            if values.get("wdog") or values.get("wdogdef"):
                raise AgentFailure(OCFStatus.ERR_CONFIGURED,
                                   f"{client.label}: hardware watchdog enabled; disable it with "
                                   f"'berofos -f {client.device.name} set wdog=0 wdogdef=0'")
        return OCFStatus.SUCCESS


def run_action(env: AgentEnvironment) -> int:
    """Run ``env.action`` with the real log, commands and clock."""
    log = open_log(env.environ, env.debug)
    return BerofosAgent(env, log).run()
