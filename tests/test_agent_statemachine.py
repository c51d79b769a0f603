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
device points elsewhere, 191/190 when one is unreachable, 0 unpromoted); the
promotion score follows; a promote that returned 0 left every device
confirmed at this node's position; stop never fails.
"""

from __future__ import annotations

import logging

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from berofos_ocf.agent.actions import BerofosAgent
from berofos_ocf.agent.codes import OCFStatus
from berofos_ocf.agent.environment import AgentEnvironment
from berofos_ocf.agent.ocflog import AgentLog
from berofos_ocf.bnfosconf import render_bnfos_conf
from berofos_ocf.emulator import Emulator

from .conftest import entries_for

NODES = {"node1": 1, "node2": 0}  # relay mode that connects each node
DEVICES = [0, 1]


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
            if argv[0] == "crm_attribute":
                updates = [arg for arg in argv if arg.startswith("--update=")]
                self.scores[node] = updates[0].split("=", 1)[1] if updates else None
            return 0, "", ""

        return BerofosAgent(AgentEnvironment(environ, ["berofos", action]), log,
                            runner=runner).run()

    def marker(self, node: str) -> str | None:
        path = self.tmp / node / "berofos-isdn.role"
        return path.read_text().strip() if path.exists() else None

    def modes(self) -> list[int | None]:
        return [d.relay_mode if d.powered else None for d in self.emulator.devices]

    # -- Pacemaker's actions -----------------------------------------------------------

    @rule(node=st.sampled_from(list(NODES)))
    def start(self, node: str) -> None:
        if node in self.started:
            return
        assert self.run(node, "start") == OCFStatus.SUCCESS
        assert self.marker(node) == "unpromoted"
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

    @precondition(lambda self: self.started and self.promoted is None)
    @rule(data=st.data())
    def promote(self, data) -> None:
        node = data.draw(st.sampled_from(sorted(self.started)))
        result = self.run(node, "promote")
        if result == OCFStatus.SUCCESS:
            assert self.modes() == [NODES[node]] * len(DEVICES)
            assert self.marker(node) == "promoted"
            self.promoted = node
        else:
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
        result = self.run(node, "monitor", interval=0 if probe else 10000)
        role = self.marker(node)
        modes = self.modes()
        own = NODES[node]
        if role is None:
            assert result == OCFStatus.NOT_RUNNING
            return
        elsewhere = any(mode is not None and mode != own for mode in modes)
        lost = None in modes
        if role == "promoted":
            expected = (OCFStatus.FAILED_PROMOTED if elsewhere else
                        OCFStatus.DEGRADED_PROMOTED if lost else OCFStatus.RUNNING_PROMOTED)
        else:
            expected = OCFStatus.DEGRADED if lost else OCFStatus.SUCCESS
        assert result == expected, (role, modes, result)
        if lost:
            assert self.scores[node] == ("1" if role == "promoted" else "-INFINITY")
        else:
            assert self.scores[node] == ("110" if all(m == own for m in modes) else "100")

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
