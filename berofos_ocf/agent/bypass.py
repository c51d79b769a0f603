"""The actions of ``berofos-bypass``: a Wazo in line before a PBX, its watchdog a dead-man's switch.

The wiring (scenario bypass): provider on A, the Wazo's CPE spans on B and its
NET spans on C, the PBX on D.  Relay mode 1 puts the Wazo in line (A--B and
C--D); mode 0, a berofos without power and an expired watchdog connect the
provider straight to the PBX (A--D).  What each action does is the table's
(:mod:`.bypass_table`); the README's fault table says what each fault gets.

:class:`BypassAgent` is built on the promotable agent's
:class:`~.actions.BerofosAgent` for what every berofos agent does alike: the
dispatch of the table's actions with their error handling, the parameter
checks against the table, the unknown-parameter warning, the parallel
read of the devices judged by :mod:`berofos_ocf.health`, and validate-all
(with this agent's own device checks).  The promotable agent's other actions
are never run: the bypass table names none of them.

The health judgement is read the other way round here (:func:`judge`): the
bypass scenario, an armed watchdog and a watchdog at power-on are this
wiring's goal, not problems; a fired watchdog or relays at A--D mean the Wazo
is out of line.
"""

from __future__ import annotations

__all__ = ["BypassAgent", "Judgement", "judge", "wanted_settings", "run_action"]

import time

from ..deadline import Deadline
from ..keys import RELAY_A_B, RELAY_A_D, RELAY_LABELS
from .actions import AgentFailure, BerofosAgent, device_budget
from .bypass_kicker import KickerFile, KickerLaunchError, KickerRecord
from .bypass_table import kick_interval, kick_reply_timeout, low_time_left
from .codes import OCFStatus
from .environment import AgentEnvironment
from .ocflog import open_log

IN_LINE = f"{RELAY_LABELS[RELAY_A_B]} + C--D"
ON_PBX = RELAY_LABELS[RELAY_A_D]
# Stop hands the lines over within this much (two requests' worth, at least
# 2 s): it must not wait long, and a device it misses hands over by itself.
_STOP_REQUESTS = 2
_FILE_STATUS = {"missing": OCFStatus.ERR_INSTALLED, "permission": OCFStatus.ERR_PERM}


class _Setup:
    """The resource's configuration, validated: the devices and how to reach them."""

    __slots__ = ("conf", "devices", "http_timeout", "watchdog_timeout", "udp_port")

    def __init__(self, conf, devices, http_timeout: int, watchdog_timeout: int,
                 udp_port: int) -> None:
        self.conf = conf
        self.devices = devices
        self.http_timeout = http_timeout
        self.watchdog_timeout = watchdog_timeout
        self.udp_port = udp_port

    def kicker_work(self) -> KickerRecord:
        """What the kicker must do for this configuration (no process yet)."""
        from ..gbl4 import parse_mac
        from ..kicker import KickTarget

        targets = [KickTarget(d.name, parse_mac(d.mac), d.host).argument() for d in self.devices]
        return KickerRecord(0, None, targets, kick_interval(self.watchdog_timeout),
                            self.udp_port, self.watchdog_timeout)


def wanted_settings(watchdog_timeout: int) -> dict[str, object]:
    """What start writes, in the order it writes it: the Wazo in line, then the watchdog armed."""
    return {"scenario": 1, "modedef": RELAY_A_B, "wdogitime": watchdog_timeout,
            "wdogdef": True, "mode": RELAY_A_B, "wdog": True}


# What stop writes: the provider straight on the PBX first, then the watchdog
# off, then the power-on mode (a berofos that reboots while the resource is
# stopped keeps the lines on the PBX).
RELEASED = {"mode": RELAY_A_D, "wdog": False, "modedef": RELAY_A_D}


class Judgement:
    """One device read for this wiring: what fails the monitor, what degrades it."""

    __slots__ = ("failures", "risks")

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.risks: list[str] = []


def judge(health, watchdog_timeout: int) -> Judgement:
    """Read a :class:`~berofos_ocf.health.DeviceHealth` as this wiring wants it."""
    from ..health import ProblemKind, WatchdogRisk

    verdict = Judgement()
    label = health.device.label
    if not health.usable:
        verdict.risks.append(health.unusable_reason)
        return verdict
    if health.scenario != 1:
        verdict.failures.append(f"{label}: scenario fallback: relay mode 1 does not connect "
                                "C--D, the Wazo's NET spans are cut off from the PBX")
    if health.watchdog is WatchdogRisk.FIRED:
        verdict.failures.append(f"{label}: {health.watchdog.words}: the lines are on the PBX")
    elif health.relay_mode != RELAY_A_B:
        verdict.failures.append(f"{label}: relays at {ON_PBX}: the lines are on the PBX, "
                                "not through the Wazo")
    if health.watchdog is WatchdogRisk.NONE:
        verdict.failures.append(f"{label}: watchdog off: nothing would hand the lines to the "
                                "PBX if this node died")
    elif health.watchdog is WatchdogRisk.ENABLED and health.watchdog_left is not None \
            and health.watchdog_left < low_time_left(watchdog_timeout):
        verdict.risks.append(f"{label}: watchdog fires in {health.watchdog_left} s: the "
                             "kicks do not arrive")
    verdict.risks += [health.message(p) for p in health.problems
                      if p.kind is ProblemKind.ODD_ANSWER]
    changed = _changed_by_hand(health.settings.values(), watchdog_timeout)
    if changed:
        verdict.risks.append(f"{label}: {changed} since start (a restart of the resource "
                             "sets them again)")
    return verdict


def _changed_by_hand(values: dict, watchdog_timeout: int) -> str:
    """The settings start made that a device no longer has, as ``modedef=0, wdogdef=0``."""
    wanted = wanted_settings(watchdog_timeout)
    differ = [f"{name}={int(values[name])}" for name in ("modedef", "wdogdef", "wdogitime")
              if name in values and values[name] != wanted[name]]
    return ", ".join(differ)


class BypassAgent(BerofosAgent):
    """One action of one ``berofos-bypass`` instance.

    ``launch(record)`` starts a kicker for ``record``'s work and returns the
    record of the running one; ``stop_kicker(record)`` ends it and says how;
    ``wall_clock`` stamps the log's promises.  All injectable for tests.
    """

    def __init__(self, env: AgentEnvironment, log, *, launch=None, stop_kicker=None,
                 wall_clock=time.time, **options) -> None:
        super().__init__(env, log, **options)
        self.kicker_file = KickerFile(env.rsc_tmp, env.instance)
        self._launch = launch or self._launch_process
        self._stop_kicker = stop_kicker or self._stop_process
        self._wall_clock = wall_clock

    # -- configuration -----------------------------------------------------------------

    def setup(self) -> _Setup:
        """Validate parameters and the device file; every device must be kickable."""
        from ..bnfosconf import load_bnfos_conf, parse_device_names
        from ..errors import ConfigFileError

        values = self._parameters()
        try:
            conf = load_bnfos_conf(values["config"])
            devices = conf.select(parse_device_names(values["devices"]))
        except ConfigFileError as err:
            # the file is this node's: a broken one is this node's problem (2)
            raise AgentFailure(_FILE_STATUS.get(err.kind, OCFStatus.ERR_ARGS), str(err)) \
                from None
        for device in devices:
            _check_kickable(conf.path, device)
        return _Setup(conf, devices, values["http_timeout"], values["watchdog_timeout"],
                      values["udp_port"])

    # -- the kicker --------------------------------------------------------------------

    def _launch_process(self, work: KickerRecord) -> KickerRecord:
        from .bypass_kicker import launch_kicker

        return launch_kicker(work, instance=self.env.instance, environ=self.env.environ,
                             reply_timeout=kick_reply_timeout(work.watchdog_timeout))

    def _stop_process(self, record: KickerRecord) -> str:
        from .bypass_kicker import stop_kicker

        return stop_kicker(record)

    def _ensure_kicker(self, setup: _Setup, record: KickerRecord | None) -> KickerRecord:
        """The running kicker if it does this configuration's work, else a new one, recorded
        before anything is armed (a start killed half-way leaves it findable by stop)."""
        work = setup.kicker_work()
        if record is not None and record.alive() and record.same_work(work):
            return record
        if record is not None:
            self.log.info(self._stop_kicker(record))
        try:
            running = self._launch(work)
        except KickerLaunchError as err:
            raise AgentFailure(OCFStatus.ERR_GENERIC, f"{err}; nothing was changed") from None
        try:
            self.kicker_file.write(running)
        except OSError as err:
            self._stop_kicker(running)
            raise AgentFailure(OCFStatus.ERR_PERM, f"cannot record the kicker: {err}") from None
        return running

    # -- devices -----------------------------------------------------------------------

    def _usable_or_fail(self, health: list) -> None:
        """Start touches nothing unless every device answers with its login accepted."""
        from ..health import ProblemKind

        for item in health:
            if item.usable:
                continue
            # a wrong login does not heal by retrying: this node's file is wrong (2)
            login = ProblemKind.LOGIN_REJECTED in item.kinds()
            raise AgentFailure(OCFStatus.ERR_ARGS if login else OCFStatus.ERR_GENERIC,
                               f"{item.unusable_reason}; nothing was changed")

    def _arm(self, client, current, setup: _Setup) -> list[str]:
        """Write what start wants and a device lacks, confirmed; the names written."""
        values = current.values()
        changes = {name: value for name, value in wanted_settings(setup.watchdog_timeout).items()
                   if values.get(name) != value}
        if values.get("wdogstate") == 1:  # running: re-arming would only restart it
            changes.pop("wdog", None)
        if changes:
            client.write(changes, self.device_deadline, current=current)
        return list(changes)

    def _arm_all(self, setup: _Setup, health: list) -> list:
        from ..client import on_every_device

        current = {item.device.name: item.settings for item in health}
        return on_every_device(lambda client: self._arm(client, current[client.device.name],
                                                        setup),
                               self._clients(setup), self.device_deadline)

    def _release_all(self, setup: _Setup, deadline: Deadline) -> list:
        """The provider straight on the PBX and the watchdog off, on every device it reaches."""
        from ..client import on_every_device

        return on_every_device(lambda client: client.write(dict(RELEASED), deadline),
                               self._clients(setup), deadline)

    def _stop_deadline(self, http_timeout: int) -> Deadline:
        seconds = max(2.0, _STOP_REQUESTS * http_timeout)
        return Deadline(min(device_budget(self.deadline.remaining()), seconds),
                        clock=self._clock)

    def _log_released(self, results: list, watchdog_timeout: int) -> None:
        by = time.strftime("%H:%M:%S", time.localtime(self._wall_clock() + watchdog_timeout))
        for result in results:
            if result.ok:
                self.log.info(f"{result.device.label}: provider straight on the PBX "
                              f"(relays {ON_PBX}), watchdog off")
            else:
                self.log.warning(f"{result.device.label}: not reached ({result.error}): its "
                                 f"watchdog hands the lines to the PBX within "
                                 f"{watchdog_timeout} s of the last kick, by {by}")

    # -- actions -----------------------------------------------------------------------

    def start(self) -> OCFStatus:
        if self.log.missing:
            raise AgentFailure(OCFStatus.ERR_INSTALLED, self.log.missing)
        setup = self.setup()
        health = self.read_devices(setup)
        self._usable_or_fail(health)
        record = self._ensure_kicker(setup, self.kicker_file.read())
        failed = [r for r in self._arm_all(setup, health) if not r.ok]
        if not failed and not record.alive():
            reason = f"the kicker (pid {record.pid}) exited"
        elif failed:
            reason = "; ".join(str(r.error) for r in failed)
        else:
            self._log_armed(setup)
            return OCFStatus.SUCCESS
        self._undo(setup, record)
        raise AgentFailure(OCFStatus.ERR_GENERIC, f"{reason} (the Wazo not put in line; "
                                                  "every device reached was handed back to "
                                                  "the PBX)")

    def _log_armed(self, setup: _Setup) -> None:
        interval = kick_interval(setup.watchdog_timeout)
        for device in setup.devices:
            self.log.info(f"{device.label}: Wazo in line (relays {IN_LINE}), watchdog armed: "
                          f"kicked every {interval:g} s, it hands the lines to the PBX "
                          f"{setup.watchdog_timeout} s after the last kick")

    def _undo(self, setup: _Setup, record: KickerRecord) -> None:
        """What a failed start set, undone as stop undoes it."""
        self.log.info(self._stop_kicker(record))
        self._forget_kicker()
        self._log_released(self._release_all(setup, self._stop_deadline(setup.http_timeout)),
                           setup.watchdog_timeout)

    def _forget_kicker(self) -> None:
        try:
            self.kicker_file.remove()
        except OSError as err:
            self.log.warning(f"could not remove {self.kicker_file.path}: {err.strerror}")

    def stop(self) -> OCFStatus:
        # Never fails and never waits long: a failed stop gets the node fenced.
        record = self.kicker_file.read()
        if record is None:
            return OCFStatus.SUCCESS
        self.log.info(self._stop_kicker(record))
        self._forget_kicker()
        try:
            setup = self.setup()
        except AgentFailure as failure:
            self.log.warning(f"cannot reach the devices ({failure.reason}): their watchdogs "
                             "hand the lines to the PBX within "
                             f"{record.watchdog_timeout} s of the last kick")
            return OCFStatus.SUCCESS
        results = self._release_all(setup, self._stop_deadline(setup.http_timeout))
        self._log_released(results, setup.watchdog_timeout)
        return OCFStatus.SUCCESS

    def monitor(self) -> OCFStatus:
        record = self.kicker_file.read()
        if record is None:
            if not self.env.is_probe:
                self.log.exit_reason(f"not started on this node (no {self.kicker_file.path})")
            return OCFStatus.NOT_RUNNING
        try:
            setup = self.setup()
        except AgentFailure as failure:
            # started, but the file broke since: not a reason to ban (2) or stop all (6)
            raise AgentFailure(OCFStatus.ERR_GENERIC, failure.reason) from None
        failures, risks = [], []
        if not record.alive():
            failures.append(f"the kicker (pid {record.pid}) is gone: nobody kicks the "
                            "watchdogs, they will hand the lines to the PBX")
        for health in self.read_devices(setup):
            verdict = judge(health, setup.watchdog_timeout)
            failures += verdict.failures
            risks += verdict.risks
        if failures:
            raise AgentFailure(OCFStatus.ERR_GENERIC, "; ".join(failures))
        if risks:
            self.log.degraded("; ".join(risks))
            return OCFStatus.DEGRADED
        return OCFStatus.SUCCESS

    def reload_agent(self) -> OCFStatus:
        """OCF 1.1: only http_timeout is reloadable, and every action reads it afresh."""
        setup = self.setup()
        self.log.info(f"reloaded: http_timeout={setup.http_timeout}; the kicker goes on")
        return OCFStatus.SUCCESS

    # validate-all is the promotable agent's (parameters, file, unknown parameters, a
    # password readable by all; devices at level 10), with these two of its steps:

    def _warn_about_quorum(self) -> None:
        """One node: no two-node split to warn about."""

    def _validate_devices(self, setup: _Setup) -> OCFStatus:
        """Every device answers over HTTP with its login accepted, and a kick reaches it."""
        from ..errors import BerofosError
        from ..gbl4 import parse_mac
        from ..udp import Gbl4Client

        for health in self.read_devices(setup):
            if not health.usable:
                raise AgentFailure(OCFStatus.ERR_ARGS, health.unusable_reason)
        udp = Gbl4Client(port=setup.udp_port, timeout=kick_reply_timeout(setup.watchdog_timeout))
        for device in setup.devices:
            try:
                udp.kick(parse_mac(device.mac), device.host)
            except BerofosError as err:
                raise AgentFailure(OCFStatus.ERR_ARGS, f"{device.label}: {err} (its mac line "
                                   f"wrong, or UDP port {setup.udp_port} filtered?)") from None
        return OCFStatus.SUCCESS


def _check_kickable(path: str, device) -> None:
    """A device the kicker can reach: a MAC (the device acts only on its own) and a host
    that is one device's address (kicks are unicast, never broadcast)."""
    import ipaddress

    if not device.mac:
        raise AgentFailure(OCFStatus.ERR_ARGS, f"{path}: device [{device.name}] has no mac "
                           "line: a berofos acts only on a watchdog kick that carries its MAC "
                           f"(berofos scan --write {path} writes it)")
    address = ipaddress.IPv4Address(device.host)
    if address.is_unspecified or address.is_multicast or address == ipaddress.IPv4Address(
            "255.255.255.255"):
        raise AgentFailure(OCFStatus.ERR_ARGS, f"{path}: device [{device.name}] has host "
                           f"{device.host}: watchdog kicks go to each device's own address")


def run_action(env: AgentEnvironment) -> int:
    """Run ``env.action`` with the real log, commands, kicker and clock."""
    log = open_log(env.environ, env.debug, name=env.table.name)
    return BypassAgent(env, log).run()
