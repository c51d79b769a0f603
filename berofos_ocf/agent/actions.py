"""The OCF actions: start, stop, monitor, promote, demote, notify, validate-all.

What each does and never does is ``design.md``'s action table; what each fault
gets is its fault table.  In short: only promote writes to a device; monitor is
read-only and reports the real role; stop depends on nothing but the local
disk; every device call is bounded by what is left of ``CRM_meta_timeout``
minus a safety margin, so no action runs into Pacemaker's SIGKILL.

Two pieces of memory between actions, kept in the run directory
(:mod:`berofos_ocf.runstate`), keep the lines from moving for nothing:

* **score hysteresis**: a read that fails (after the client's own retries)
  does not lower this node's promotion score at once; the score drops only
  when the devices stayed unusable across two reads at least
  :data:`CONFIRM_SECONDS` apart (two monitors).  A good read raises it at once.
* **split guard** (:mod:`.splitguard`), armed only in a two-node cluster with
  neither fencing nor a quorum device: a promoted instance that finds the
  relays moved to the other node *by that node's promote* while that node is
  outside its partition yields instead of taking them back.

Everything the actions need from outside (environment, log, command runner,
clock) is injected into :class:`BerofosAgent`.
"""

from __future__ import annotations

__all__ = ["BerofosAgent", "AgentFailure", "run_action", "time_budget", "device_budget",
           "DEGRADED_PROMOTED_SCORE", "WITHHELD", "CONFIRM_SECONDS"]

import os
import sys
import time

from ..deadline import Deadline
from ..keys import RELAY_A_B, RELAY_A_D, RELAY_LABELS
from ..runstate import PROMOTED, UNPROMOTED, InstanceState, RoleMarker, StateFile
from .codes import OCFStatus
from .environment import AgentEnvironment
from .ocflog import AgentLog, open_log
from .state import WITHHELD, NodeAttributes, PromotionScore, run_command
from .table import PROMOTION_SCORE, RELAY_BONUS

# A promoted instance that loses sight of a device keeps this score instead of
# -INFINITY: where another node can reach every device (score >= 100) Pacemaker
# moves the lines there, but a berofos that is down for everyone does not make
# the cluster demote the PBX that holds the lines.
DEGRADED_PROMOTED_SCORE = 1
# Two failed reads this far apart (two monitors at the README's intervals) make
# a lost device; one glitch, or two failed reads of one burst, do not.
CONFIRM_SECONDS = 5.0
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

    @property
    def peer(self) -> str:
        return self.port_d if self.own_mode == RELAY_A_B else self.port_b

    @property
    def peer_mode(self) -> int:
        return RELAY_A_D if self.own_mode == RELAY_A_B else RELAY_A_B


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
        self.state_file = StateFile(env.rsc_tmp, env.instance)
        self._node: str | None = None
        self._score: PromotionScore | None = None
        self._attributes: NodeAttributes | None = None

    # -- dispatch ----------------------------------------------------------------------

    def run(self) -> int:
        """Run the action the table names; its exit status."""
        action = self.env.action
        table = self.env.table
        if action in ("usage", "help"):
            sys.stderr.write(table.usage())
            return OCFStatus.SUCCESS
        row = table.action(action)
        if row is None or row.handler is None:
            sys.stderr.write(table.usage())
            self.log.exit_reason(f"unknown action {action!r}" if action else "no action given")
            return OCFStatus.ERR_UNIMPLEMENTED
        try:
            return int(getattr(self, row.handler)())
        except AgentFailure as failure:
            self.log.exit_reason(failure.reason)
            return int(failure.status)
        except PermissionError as err:  # run by hand as a user: say so, not "internal error"
            self.log.exit_reason(f"{action} needs root: {err.filename or ''}: "
                                 f"{(err.strerror or 'permission denied').lower()}")
            return OCFStatus.SUCCESS if action == "stop" else OCFStatus.ERR_PERM
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

    def _node_attribute(self, kind):
        return kind(self.env.instance, self.node_name(), enabled=self.env.promotable,
                    log=self.log, runner=self._runner, timeout=lambda: self.deadline.bound(5.0))

    @property
    def score(self) -> PromotionScore:
        if self._score is None:
            self._score = self._node_attribute(PromotionScore)
        return self._score

    @property
    def attributes(self) -> NodeAttributes:
        if self._attributes is None:
            self._attributes = self._node_attribute(NodeAttributes)
        return self._attributes

    def _parameters(self) -> dict[str, object]:
        """Every parameter of the table, checked against it (ERR_CONFIGURED if wrong)."""
        values: dict[str, object] = {}
        for parameter in self.env.table.parameters:
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

    def _check_clone_shape(self) -> None:
        """One promoted instance guards one device: anything else is wrong everywhere."""
        promoted_max = self.env.promoted_max
        if promoted_max is not None and promoted_max != 1:
            raise AgentFailure(OCFStatus.ERR_CONFIGURED,
                               f"promoted-max={promoted_max}: two promoted instances would "
                               "switch the relays back and forth; set promoted-max=1 "
                               "(pcs resource meta isdn-clone promoted-max=1)")

    def setup(self) -> _Setup:
        """Validate parameters, this node and the device file (design.md's fault table)."""
        from ..bnfosconf import load_bnfos_conf, parse_device_names
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
            devices = conf.select(parse_device_names(values["devices"]))
        except ConfigFileError as err:
            # The file is per node: a broken one bans this node (2), it must not
            # stop the clone on the node that holds the lines (6).
            status = {"missing": OCFStatus.ERR_INSTALLED,
                      "permission": OCFStatus.ERR_PERM}.get(err.kind, OCFStatus.ERR_ARGS)
            raise AgentFailure(status, str(err)) from None
        return _Setup(node, port_b, port_d, own_mode, conf, devices, values["http_timeout"])

    # -- state between actions ---------------------------------------------------------

    def _load_state(self, setup: _Setup) -> InstanceState:
        state = self.state_file.read()
        state.node, state.own_mode = setup.node, setup.own_mode
        state.config = setup.conf.path
        state.devices = [device.name for device in setup.devices]
        return state

    def _save_state(self, state: InstanceState) -> None:
        try:
            self.state_file.write(state)
        except OSError as err:  # losing the memory costs hysteresis, not the action
            self.log.warning(f"could not write {self.state_file.path}: {err}")

    def _write_marker(self, role: str) -> None:
        from ..runstate import UnsafeRunDirectory

        try:
            self.marker.write(role)
        except UnsafeRunDirectory as err:
            raise AgentFailure(OCFStatus.ERR_PERM, str(err)) from None

    # -- devices -----------------------------------------------------------------------

    def _clients(self, setup: _Setup) -> list:
        from ..client import BerofosClient

        return [BerofosClient(device, timeout=setup.http_timeout, clock=self._clock,
                              sleep=self._sleep) for device in setup.devices]

    def read_devices(self, setup: _Setup) -> list:
        """Every device read once (the client retries a glitch), in parallel, within
        the budget, and judged by :mod:`berofos_ocf.health` as the ``berofos``
        command judges it: a list of :class:`~berofos_ocf.health.DeviceHealth`."""
        from ..health import FixCommands, read_health

        fixes = FixCommands(setup.conf.path, names=[device.name for device in setup.devices])
        return read_health(self._clients(setup), self.device_deadline, fixes)

    def refresh_score(self, setup: _Setup, health: list, role: str | None,
                      state: InstanceState) -> None:
        """This node's score from one read, with hysteresis on the way down, into ``state``."""
        problems = [h.unusable_reason for h in health if not h.usable]
        now = self._clock()
        if not problems:
            state.failed_reads, state.unusable_since, state.problem = 0, None, ""
            here = all(h.relay_mode == setup.own_mode for h in health)
            score = PROMOTION_SCORE + (RELAY_BONUS if here else 0)
        else:
            state.failed_reads += 1
            if state.unusable_since is None:
                state.unusable_since = now
            state.problem = problems[0]
            lost = DEGRADED_PROMOTED_SCORE if role == PROMOTED else WITHHELD
            confirmed = (state.failed_reads >= 2
                         and now - state.unusable_since >= CONFIRM_SECONDS)
            if confirmed or state.score is None or state.score <= lost:
                score = lost
            else:
                score = state.score  # one failed read: keep the score until the next
                self.log.info(f"{problems[0]}: score {score} kept until a second read "
                              f"{CONFIRM_SECONDS:g} s later confirms the loss")
        if state.yielded_to:
            score = WITHHELD
        state.score = score

    def _save_then_score(self, state: InstanceState) -> None:
        """Write the memory, then set the score it holds.  In that order: a score
        change makes Pacemaker cancel this very monitor (SIGKILL) when it acts on
        it, and a yield or a streak not written before would die with the process."""
        self._save_state(state)
        self.score.set(state.score)

    def _position(self, setup: _Setup, mode: int) -> str:
        return f"{RELAY_LABELS[mode]} ({setup.owner(mode)})"

    # -- the split guard (see splitguard.py) --------------------------------------------

    @property
    def guard(self):
        from .splitguard import SplitGuard

        return SplitGuard(log=self.log, runner=self._runner,
                          timeout=lambda: self.deadline.bound(5.0), clock=self._clock,
                          is_probe=self.env.is_probe, in_cluster=self.env.promotable)

    # -- actions -----------------------------------------------------------------------

    def start(self) -> OCFStatus:
        if self.log.missing:
            raise AgentFailure(OCFStatus.ERR_INSTALLED, self.log.missing)
        setup = self.setup()
        self._check_clone_shape()
        role = self.marker.read()
        if role is None:
            role = UNPROMOTED
            self._write_marker(role)
        state = self._load_state(setup)
        state.failed_reads, state.unusable_since, state.score = 0, None, None
        state.split_guard = self._warn_about_quorum()
        health = self.read_devices(setup)
        for item in health:
            if not item.usable:
                self.log.warning(f"started without control of {item.unusable_reason}: no "
                                 "promotion score until it answers")
        self.guard.release(setup, health, state)
        self.refresh_score(setup, health, role, state)
        self._publish(setup, health, role, state)
        self._save_then_score(state)
        return OCFStatus.SUCCESS

    def stop(self) -> OCFStatus:
        # Never fails and never waits on the network: a failed stop gets the
        # node fenced.  The relays stay where they are.
        try:
            self.marker.remove()
        except OSError as err:
            self.log.warning(f"could not remove {self.marker.path}: {err.strerror}")
        state = self.state_file.read()
        self.attributes.remove(state.attributes)
        self._forget_health(state)
        if self.env.promotable:
            self.score.delete()
        return OCFStatus.SUCCESS

    def _forget_health(self, state: InstanceState) -> None:
        """A stopped instance has no score and no streak; a yield outlives the restart."""
        try:
            if state.yielded_to:
                self.state_file.write(InstanceState(yielded_to=state.yielded_to,
                                                    yielded_since=state.yielded_since))
            else:
                self.state_file.remove()
        except OSError as err:
            self.log.warning(f"could not update {self.state_file.path}: {err}")

    def demote(self) -> OCFStatus:
        if self.marker.read() is None:
            raise AgentFailure(OCFStatus.NOT_RUNNING, "demote of an instance that is not started")
        self._write_marker(UNPROMOTED)
        return OCFStatus.SUCCESS

    def notify(self) -> OCFStatus:
        # Not advertised and not needed: a configuration that asks anyway gets 0.
        self.log.debug(f"notify {self.env.notify_summary()}")
        return OCFStatus.SUCCESS

    def promote(self) -> OCFStatus:
        from .promote import PromoteInterrupted, Promotion

        if self.marker.read() is None:
            raise AgentFailure(OCFStatus.NOT_RUNNING, "promote of an instance that is not started")
        setup = self.setup()
        self._check_clone_shape()
        state = self._load_state(setup)
        promotion = Promotion(self._clients(setup), setup.own_mode, setup.node,
                              self.device_deadline, self.log)
        try:
            with promotion.interruptible():
                partition = self._start_partition_query()
                failures = promotion.run()
        except PromoteInterrupted:
            promotion.stop_asking()
            self._withhold(state)
            raise AgentFailure(OCFStatus.ERR_GENERIC, "promote stopped by SIGTERM before every "
                               f"device confirmed{promotion.moved_summary() or '; nothing moved'}"
                               ) from None
        if failures:
            self._withhold(state)
            detail = "; ".join(str(failure) for failure in failures)
            raise AgentFailure(OCFStatus.ERR_GENERIC, f"{detail} (relays not all moved to "
                               f"{RELAY_LABELS[setup.own_mode]} for {setup.node})"
                               f"{promotion.moved_summary()}")
        self._write_marker(PROMOTED)
        members = partition()
        state.promoted_with_peer = None if members is None else setup.peer.lower() in members
        state.yielded_to = state.yielded_since = None
        state.failed_reads, state.unusable_since = 0, None
        state.score = PROMOTION_SCORE + RELAY_BONUS
        self._save_then_score(state)
        return OCFStatus.SUCCESS

    def _withhold(self, state: InstanceState) -> None:
        state.score = WITHHELD
        self._save_then_score(state)

    def _start_partition_query(self):
        """Ask ``crm_node -p`` in a thread while the relays move; return the getter."""
        import threading

        if not self.env.promotable:
            return lambda: None
        answer: list = []
        worker = threading.Thread(target=lambda: answer.append(self.guard.partition()),
                                  daemon=True)
        worker.start()

        def members():
            worker.join(self.deadline.remaining())
            return answer[0] if answer else None
        return members

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
        state = self._load_state(setup)
        health = self.read_devices(setup)
        guard = self.guard
        guard.release(setup, health, state)
        guard.check(setup, health, role == PROMOTED, state)
        guard.note_peer(setup, role == PROMOTED, state)
        self.refresh_score(setup, health, role, state)
        self._publish(setup, health, role, state)
        self._save_then_score(state)
        return self._verdict(setup, health, role, state)

    # -- what people read in crm_mon -A ------------------------------------------------

    def _lines_value(self, setup: _Setup, health: list) -> str:
        modes = {h.relay_mode for h in health}
        if not all(h.usable for h in health) or not modes:
            return "unknown"
        if len(modes) > 1:
            return "split"
        (mode,) = modes
        return "here" if mode == setup.own_mode else setup.owner(mode)

    def _publish(self, setup: _Setup, health: list, role: str,
                 state: InstanceState) -> None:
        from ..text import shown

        problems = [f"{h.device.label}: relays at {self._position(setup, h.relay_mode)}"
                    for h in health if role == PROMOTED and h.relay_mode is not None
                    and h.relay_mode != setup.own_mode]
        problems += self._risks(setup, health, role, state)
        values = {"lines": self._lines_value(setup, health),
                  "health": shown(problems[0], 80) if problems else "ok"}
        state.attributes = self.attributes.publish(values, state.attributes)

    def _verdict(self, setup: _Setup, health: list, role: str,
                 state: InstanceState) -> OCFStatus:
        elsewhere = [h for h in health
                     if h.relay_mode is not None and h.relay_mode != setup.own_mode]
        if role == PROMOTED and elsewhere:
            first = elsewhere[0]
            raise AgentFailure(OCFStatus.FAILED_PROMOTED,
                               f"{first.device.label} relays at "
                               f"{self._position(setup, first.relay_mode)}, expected "
                               f"{self._position(setup, setup.own_mode)}")
        risks = self._risks(setup, health, role, state)
        if risks:
            self.log.degraded("; ".join(risks))
            return (OCFStatus.DEGRADED_PROMOTED if role == PROMOTED else OCFStatus.DEGRADED)
        return OCFStatus.RUNNING_PROMOTED if role == PROMOTED else OCFStatus.SUCCESS

    def _risks(self, setup: _Setup, health: list, role: str,
               state: InstanceState) -> list[str]:
        """Everything that makes the monitor report degraded, in words."""
        risks = [h.unusable_reason for h in health if not h.usable]
        risks += [h.message(problem) for h in health if h.usable for problem in h.problems]
        if role == PROMOTED:
            risks += [f"{h.device.label}: power-on relays at "
                      f"{self._position(setup, h.power_on_mode)}: a reboot would move the lines"
                      for h in health if h.usable and h.power_on_mode is not None
                      and h.power_on_mode != setup.own_mode]
        if state.yielded_to:
            risks.append(f"lines left to {state.yielded_to}, which is outside this partition "
                         "(split without fencing or arbiter); 'pcs resource cleanup' if it "
                         "is known to be down")
        return risks

    def reload_agent(self) -> OCFStatus:
        """OCF 1.1: a reloadable parameter changed.  Every action reads its
        parameters afresh, so there is nothing to reload: check the new ones."""
        setup = self.setup()
        self._check_clone_shape()
        if self.marker.read() is not None:
            self._save_state(self._load_state(setup))
        self.log.info(f"reloaded: http_timeout={setup.http_timeout}")
        return OCFStatus.SUCCESS

    def validate_all(self) -> OCFStatus:
        if self.log.missing:
            raise AgentFailure(OCFStatus.ERR_INSTALLED, self.log.missing)
        setup = self.setup()
        self._warn_about_unknown_parameters()
        if setup.conf.world_readable and setup.conf.holds_password:
            self.log.warning(f"{setup.conf.path} holds a password and is readable by everyone: "
                             f"chmod 600 {setup.conf.path}")
        if self.env.check_level < 10:
            return OCFStatus.SUCCESS
        self._check_clone_shape()
        self._warn_about_quorum()
        return self._validate_devices(setup)

    def _warn_about_unknown_parameters(self) -> None:
        """A typo (``portb``) would otherwise silently fall back to a default."""
        import difflib

        known = list(self.env.table.parameters_by_name)
        for name in sorted(self.env.environ):
            if not name.startswith("OCF_RESKEY_") or name.startswith("OCF_RESKEY_CRM_meta_"):
                continue
            parameter = name[len("OCF_RESKEY_"):]
            if parameter not in known:
                close = difflib.get_close_matches(parameter, known, n=1)
                hint = f" ({close[0]}?)" if close else ""
                self.log.warning(f"{name} is not a parameter of {self.env.table.name}{hint}")

    def _warn_about_quorum(self) -> bool:
        """Warn when a split would give both nodes a promoted instance; whether it would."""
        from .quorum import two_node_without_safety

        if not self.env.promotable and self.env.action != "validate-all":
            return False
        warning = two_node_without_safety(self._runner, lambda: self.deadline.bound(3.0))
        if warning:
            self.log.warning(warning)
        return bool(warning)

    def _validate_devices(self, setup: _Setup) -> OCFStatus:
        from ..health import ProblemKind

        watchdog = (ProblemKind.WATCHDOG_ENABLED, ProblemKind.WATCHDOG_FIRED,
                    ProblemKind.WATCHDOG_AT_POWER_ON)
        for health in self.read_devices(setup):
            if not health.usable:
                # not usable from this host: the answer validate-all has for it
                raise AgentFailure(OCFStatus.ERR_ARGS, health.unusable_reason)
            for problem in health.problems:
                if problem.kind in watchdog:
                    raise AgentFailure(OCFStatus.ERR_CONFIGURED,
                                       f"{health.message(problem)}; fix: {problem.fix}")
        return OCFStatus.SUCCESS


def run_action(env: AgentEnvironment) -> int:
    """Run ``env.action`` with the real log, commands and clock."""
    log = open_log(env.environ, env.debug)
    return BerofosAgent(env, log).run()
