"""Two agent instances and one berofos pair, driven the way Pacemaker may drive them.

A hypothesis state machine: node1 (port B) and node2 (port D) share two
emulated devices.  Actions follow Pacemaker's rules (start before promote,
demote before a promote elsewhere, demote before stop); faults come at any
time (a device powered off or cycled with any ``modedef``, relays moved by
hand).  Each step is a fresh agent (as each action is a fresh process) run
in-process for speed, with its own role-marker directory and a recording
``crm_attribute``.

Invariants: a monitor's code is exactly what the devices and the marker say
(8 only when promoted and every device points at this node, 9 when a powered
device points elsewhere, 191/190 when one is unreachable, 191 when a promoted
node finds a power-on mode pointing elsewhere, 190 when an unpromoted node finds
the devices split between the nodes, 0 unpromoted); the
promotion score follows, with its hysteresis: a device that cannot be read
lowers the score only when the failure is confirmed by a second read at least
CONFIRM_SECONDS later (time passes by a rule of its own, on a fake clock), and
a good read raises it at once; a promote that returned 0 left every device
confirmed at this node's position; stop never fails.
"""

from __future__ import annotations

import logging
import time

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from berofos_ocf.agent.actions import CONFIRM_SECONDS, BerofosAgent
from berofos_ocf.agent.codes import OCFStatus
from berofos_ocf.agent.environment import AgentEnvironment
from berofos_ocf.agent.ocflog import AgentLog
from berofos_ocf.bnfosconf import render_bnfos_conf
from berofos_ocf.emulator import Emulator

from .conftest import entries_for

NODES = {"node1": 1, "node2": 0}  # relay mode that connects each node
DEVICES = [0, 1]
WITHHELD = "-INFINITY"


def _number(score: str | None) -> float | None:
    return None if score is None else float("-inf") if score == WITHHELD else float(score)


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname}: {record.getMessage()}")


class TwoNodes(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        import tempfile
        from pathlib import Path

        self.tmp = Path(tempfile.mkdtemp(prefix="berofos-sm-"))
        self.emulator = Emulator([("127.0.0.1", 0), ("127.0.0.1", 0)], udp_port=None).start()
        self.conf = self.tmp / "bnfos.conf"
        self.conf.write_text(render_bnfos_conf(entries_for(self.emulator)))
        self.scores: dict[str, object] = {}
        self.started: set[str] = set()
        self.promoted: str | None = None
        # The agents' clock: each action starts at ``base`` and runs in real time
        # from there (its deadlines must expire); between actions only the
        # time_passes rule moves it, by more than CONFIRM_SECONDS plus the
        # longest action, so "two reads CONFIRM_SECONDS apart" has one answer.
        self.base = 1000.0
        self.streak = {node: (0, None) for node in NODES}  # failed reads in a row, since

    def teardown(self) -> None:
        self.emulator.stop()
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- running one action ------------------------------------------------------------

    def run(self, node: str, action: str, interval: int = 10000) -> int:
        environ = {
            "OCF_RESOURCE_INSTANCE": "isdn", "OCF_RESKEY_config": str(self.conf),
            "OCF_RESKEY_port_b": "node1", "OCF_RESKEY_port_d": "node2",
            "OCF_RESKEY_http_timeout": "2",
            "OCF_RESKEY_CRM_meta_on_node": node, "OCF_RESKEY_CRM_meta_timeout": "4000",
            "OCF_RESKEY_CRM_meta_promoted_max": "1", "HA_RSCTMP": str(self.tmp / node),
        }
        if action == "monitor":
            environ["OCF_RESKEY_CRM_meta_interval"] = str(interval)
        recorder = _Recorder()
        logger = logging.getLogger(f"statemachine.{node}")
        logger.handlers[:] = [recorder]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        reasons: list[str] = []
        log = AgentLog(logger, reasons.append)

        def runner(argv: list[str], timeout: float):
            if argv[0] == "crm_attribute" and any(a.startswith("--promotion") for a in argv):
                updates = [arg for arg in argv if arg.startswith("--update=")]
                self.scores[node] = updates[0].split("=", 1)[1] if updates else None
            return 0, "", ""

        started = time.monotonic()
        return BerofosAgent(AgentEnvironment(environ, ["berofos", action]), log,
                            runner=runner, clock=lambda: self.base + time.monotonic() - started,
                            sleep=lambda seconds: None).run()

    def marker(self, node: str) -> str | None:
        path = self.tmp / node / "berofos-isdn.role"
        return path.read_text().strip() if path.exists() else None

    def modes(self) -> list[int | None]:
        return [d.relay_mode if d.powered else None for d in self.emulator.devices]

    def expected_score(self, node: str, role: str, previous, lost: bool) -> str:
        """What a read gives, by the hysteresis rule, and the streak it leaves."""
        own = NODES[node]
        if not lost:
            self.streak[node] = (0, None)
            return "110" if all(m == own for m in self.modes()) else "100"
        count, since = self.streak[node]
        count, since = count + 1, self.base if since is None else since
        self.streak[node] = (count, since)
        lost_score = "1" if role == "promoted" else WITHHELD
        confirmed = count >= 2 and self.base - since >= CONFIRM_SECONDS
        if confirmed or previous is None or _number(previous) <= _number(lost_score):
            return lost_score
        return previous

    # -- Pacemaker's actions -----------------------------------------------------------

    @rule(node=st.sampled_from(list(NODES)))
    def start(self, node: str) -> None:
        if node in self.started:
            return
        assert self.run(node, "start") == OCFStatus.SUCCESS
        assert self.marker(node) == "unpromoted"
        self.streak[node] = (0, None)
        lost = None in self.modes()
        assert self.scores[node] == self.expected_score(node, "unpromoted", None, lost)
        self.started.add(node)

    @precondition(lambda self: self.started)
    @rule(data=st.data())
    def stop(self, data) -> None:
        node = data.draw(st.sampled_from(sorted(self.started)))
        if self.promoted == node:
            assert self.run(node, "demote") == OCFStatus.SUCCESS
            self.promoted = None
        before = self.modes()
        assert self.run(node, "stop") == OCFStatus.SUCCESS
        assert self.marker(node) is None and self.scores.get(node) is None
        assert self.modes() == before
        self.started.discard(node)
        self.streak[node] = (0, None)

    @precondition(lambda self: self.started and self.promoted is None)
    @rule(data=st.data())
    def promote(self, data) -> None:
        node = data.draw(st.sampled_from(sorted(self.started)))
        result = self.run(node, "promote")
        if result == OCFStatus.SUCCESS:
            assert self.modes() == [NODES[node]] * len(DEVICES)
            assert self.marker(node) == "promoted"
            assert self.scores[node] == "110"
            self.promoted = node
            self.streak[node] = (0, None)
        else:
            assert self.scores[node] == WITHHELD
            assert result == OCFStatus.ERR_GENERIC
            assert None in self.modes()  # only a device down may make it fail here
            assert self.marker(node) == "unpromoted"

    @precondition(lambda self: self.promoted is not None)
    @rule()
    def demote(self) -> None:
        before = self.modes()
        assert self.run(self.promoted, "demote") == OCFStatus.SUCCESS
        assert self.marker(self.promoted) == "unpromoted"
        assert self.modes() == before
        self.promoted = None

    @rule(node=st.sampled_from(list(NODES)), probe=st.booleans())
    def monitor(self, node: str, probe: bool) -> None:
        previous = self.scores.get(node)
        result = self.run(node, "monitor", interval=0 if probe else 10000)
        role = self.marker(node)
        modes = self.modes()
        own = NODES[node]
        if role is None:
            assert result == OCFStatus.NOT_RUNNING
            return
        elsewhere = any(mode is not None and mode != own for mode in modes)
        lost = None in modes
        power_on_elsewhere = any(d.powered and d.values["modedef"] != own
                                 for d in self.emulator.devices)
        if role == "promoted":
            expected = (OCFStatus.FAILED_PROMOTED if elsewhere else
                        OCFStatus.DEGRADED_PROMOTED if lost or power_on_elsewhere else
                        OCFStatus.RUNNING_PROMOTED)
        else:
            split = len({mode for mode in modes if mode is not None}) > 1
            expected = OCFStatus.DEGRADED if lost or split else OCFStatus.SUCCESS
        assert result == expected, (role, modes, result)
        assert self.scores[node] == self.expected_score(node, role, previous, lost)

    @rule()
    def time_passes(self) -> None:
        self.base += CONFIRM_SECONDS + 6  # an action takes under 3 s here


    # -- faults ------------------------------------------------------------------------

    @rule(index=st.sampled_from(DEVICES))
    def power_off(self, index: int) -> None:
        self.emulator.devices[index].power_off()

    @rule(index=st.sampled_from(DEVICES), modedef=st.sampled_from([0, 1]))
    def power_on(self, index: int, modedef: int) -> None:
        device = self.emulator.devices[index]
        device.operator_set({"modedef": modedef})
        device.power_on()

    @rule(index=st.sampled_from(DEVICES), modedef=st.sampled_from([0, 1]))
    def reboot(self, index: int, modedef: int) -> None:
        device = self.emulator.devices[index]
        device.operator_set({"modedef": modedef})
        device.power_off()
        device.power_on()

    @rule(index=st.sampled_from(DEVICES), mode=st.sampled_from([0, 1]))
    def switched_by_hand(self, index: int, mode: int) -> None:
        device = self.emulator.devices[index]
        if device.powered:
            device.operator_set({"mode": mode})

    @invariant()
    def at_most_one_promoted_marker(self) -> None:
        assert [self.marker(n) for n in NODES].count("promoted") <= 1


TwoNodes.TestCase.settings = settings(max_examples=20, stateful_step_count=25, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow,
                                                             HealthCheck.data_too_large])
test_two_nodes_sharing_one_berofos_pair = TwoNodes.TestCase
