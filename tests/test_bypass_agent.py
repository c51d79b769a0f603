"""``agents/berofos-bypass`` as a subprocess with a real environment, against an emulator process.

One test per row of the README's fault table for this agent, then the
contract of each action.  The emulator serves HTTP and GBL4 on loopback (a
port of its own), the agent's kicker kicks it for real; each test asserts the
exit code, the exit reason, and what the emulator saw (settings, watchdog,
relay log, requests).  A short watchdog interval (:data:`WATCHDOG`: kicks every
second, "little time left" below 3 s) keeps the waits short.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from berofos_ocf.agent.codes import OCFStatus

from .conftest import ROOT, Agent

WATCHDOG = 6
PASSWORD = "Bypass-pw-41"
A_D, A_B = 0, 1
# the promotable clone's meta attributes: absent for a primitive
_CLONE_META = ("port_b", "port_d", "CRM_meta_promoted_max", "CRM_meta_master_max",
               "CRM_meta_clone_max", "CRM_meta_notify")


class Bypass(Agent):
    """``agents/berofos-bypass`` run as Pacemaker runs a primitive, on the Wazo node."""

    def __init__(self, tmp_path: Path, config: Path, udp_port: int) -> None:
        super().__init__(tmp_path, config, "wazo", program=ROOT / "agents" / "berofos-bypass")
        for name in _CLONE_META:
            self.env.pop(f"OCF_RESKEY_{name}")
        self.env.update(OCF_RESOURCE_INSTANCE="isdn-bypass", OCF_RESOURCE_TYPE="berofos-bypass",
                        OCF_RESKEY_udp_port=str(udp_port),
                        OCF_RESKEY_watchdog_timeout=str(WATCHDOG))
        self.record_file = self.dir / "run" / "berofos-bypass-isdn-bypass.kicker"

    def record(self) -> dict | None:
        return json.loads(self.record_file.read_text()) if self.record_file.exists() else None

    def kicker_pid(self) -> int:
        return self.record()["pid"]

    def signal_kicker(self, signum: int) -> None:
        os.kill(self.kicker_pid(), signum)

    def cleanup(self) -> None:
        """Whatever a test left: stopped, and no kicker (a SIGSTOPped one included)."""
        record = self.record()
        if record:
            for signum in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(record["pid"], signum)
                except ProcessLookupError:
                    pass
            self.record_file.unlink()


def kicker_running(pid: int) -> bool:
    """Alive and not a zombie (nobody may reap an orphan here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


class Lab:
    def __init__(self, emulator, conf: Path, agent: Bypass) -> None:
        self.emulator, self.conf, self.agent = emulator, conf, agent
        self.control = emulator.control

    def device(self, name: str = "fos1") -> dict:
        return self.control.device(name)

    def states(self) -> list[tuple[int, int]]:
        """(relay mode, watchdog state) of every device."""
        return [(d["relay_mode"], d["watchdog_state"]) for d in self.control.devices()]

    def changes(self) -> list[tuple[str, int, int, str]]:
        return [(e["device"], e["old"], e["new"], e["cause"]) for e in self.control.relay_log()]

    def writes(self, device: str = "fos1") -> list[str]:
        return [r["path"] for r in self.control.requests(device) if r["path"].startswith("/?")]

    def wait_for_change(self, count: int, seconds: float) -> list:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(self.changes()) >= count:
                return self.changes()
            time.sleep(0.05)
        raise AssertionError(f"{count} relay changes expected within {seconds} s: "
                             f"{self.changes()}")


def make_lab(emulator_process, tmp_path, *, extra=(), password=None) -> Lab:
    """Two devices with the provider on the PBX (A--D), as before a first start."""
    emulator = emulator_process(devices=2, extra=["--set", "mode=0", "--set", "modedef=0",
                                                  *extra])
    conf = emulator.write_conf(tmp_path / "bnfos.conf", password=password)
    return Lab(emulator, conf, Bypass(tmp_path, conf, emulator.udp_port))


@pytest.fixture
def lab(emulator_process, tmp_path):
    made = make_lab(emulator_process, tmp_path)
    yield made
    made.agent.cleanup()


@pytest.fixture
def started(lab):
    run = lab.agent.run("start")
    assert run.rc == OCFStatus.SUCCESS, run
    assert lab.states() == [(A_B, 1), (A_B, 1)]
    return lab


# -- fault table -----------------------------------------------------------------------------

def test_device_down_at_start(lab):
    lab.control.power("fos2", "off")
    run = lab.agent.run("start")
    assert run.rc == OCFStatus.ERR_GENERIC, run
    assert run.reason.startswith("fos2 (127.0.0.1:") and run.reason.endswith(
        "; nothing was changed")
    assert lab.agent.record() is None and lab.writes("fos1") == []
    assert lab.agent.probe().rc == OCFStatus.NOT_RUNNING
    lab.control.power("fos2", "on")
    assert lab.agent.run("start").rc == OCFStatus.SUCCESS  # Pacemaker's retry, later


def test_device_down_at_stop(started):
    lab = started
    lab.control.fault("fos1", "hang")
    run = lab.agent.run("stop", OCF_RESKEY_http_timeout=1)
    assert run.rc == OCFStatus.SUCCESS and run.elapsed < 4.0, run
    assert lab.agent.record() is None
    warning = [line for line in lab.agent.log().splitlines() if "WARNING" in line]
    assert len(warning) == 1 and warning[0].split(": ", 1)[1].startswith("fos1 (127.0.0.1:")
    assert f"its watchdog hands the lines to the PBX within {WATCHDOG} s" in warning[0]
    assert lab.device("fos2")["relay_mode"] == A_D  # the other device at once
    stopped = time.time()
    changes = lab.wait_for_change(4, WATCHDOG + 1)
    assert changes[-1] == ("fos1", A_B, A_D, "watchdog")
    assert lab.control.relay_log()[-1]["time"] - stopped <= WATCHDOG + 0.5
    lab.control.clear_faults("fos1")


def test_kicker_killed(started):
    lab = started
    old = lab.agent.kicker_pid()
    lab.agent.signal_kicker(signal.SIGKILL)
    run = lab.agent.run("monitor")
    assert run.rc == OCFStatus.ERR_GENERIC
    assert run.reason == (f"the kicker (pid {old}) is gone: nobody kicks the watchdogs, they "
                          "will hand the lines to the PBX")
    # Pacemaker's recovery: stop (the lines to the PBX at once), start (back in line)
    assert lab.agent.run("stop").rc == OCFStatus.SUCCESS
    assert lab.states() == [(A_D, 0), (A_D, 0)]
    assert lab.agent.run("start").rc == OCFStatus.SUCCESS
    assert lab.agent.kicker_pid() != old and lab.agent.run("monitor").rc == OCFStatus.SUCCESS
    assert lab.states() == [(A_B, 1), (A_B, 1)]


def test_watchdog_fired(started):
    lab = started
    lab.control.expire_watchdog("fos1")
    run = lab.agent.run("monitor")
    assert run.rc == OCFStatus.ERR_GENERIC
    assert run.reason.startswith("fos1 (127.0.0.1:") and run.reason.endswith(
        ": hardware watchdog fired (relays dropped to A--D): the lines are on the PBX")
    assert lab.agent.run("stop").rc == OCFStatus.SUCCESS
    assert lab.agent.run("start").rc == OCFStatus.SUCCESS
    assert lab.states() == [(A_B, 1), (A_B, 1)]  # re-armed: mode and wdog set again
    assert lab.agent.run("monitor").rc == OCFStatus.SUCCESS


def test_wrong_password(emulator_process, tmp_path):
    lab = make_lab(emulator_process, tmp_path, extra=["--password", PASSWORD],
                   password="not-the-one")
    run = lab.agent.run("start")
    assert run.rc == OCFStatus.ERR_ARGS  # this node's file is wrong: retrying cannot help
    assert run.reason.startswith("credentials rejected by fos1 (127.0.0.1:")
    assert lab.agent.record() is None and lab.changes() == []
    check = lab.agent.run("validate-all", OCF_CHECK_LEVEL=10)
    assert check.rc == OCFStatus.ERR_ARGS and "credentials rejected" in check.reason
    everything = run.stderr + check.stderr + lab.agent.log()
    assert "not-the-one" not in everything and PASSWORD not in everything


def test_second_device_failing_while_running(started):
    lab = started
    lab.control.fault("fos2", "drop")
    run = lab.agent.run("monitor")
    assert run.rc == OCFStatus.DEGRADED
    assert run.reason.startswith("fos2 (127.0.0.1:") and "closed the connection" in run.reason
    # no agent runs for longer than the interval: the kicker alone keeps both in
    # line, fos2 too (its HTTP is gone, its kicks still arrive)
    time.sleep(WATCHDOG + 1)
    assert lab.changes()[2:] == [] and lab.states() == [(A_B, 1), (A_B, 1)]
    assert lab.device("fos1")["settings"]["wdogrtime"] >= WATCHDOG - 2
    assert kicker_running(lab.agent.kicker_pid())
    lab.control.clear_faults("fos2")
    assert lab.agent.run("monitor").rc == OCFStatus.SUCCESS


def test_second_device_failing_half_way_through_start(lab):
    lab.control.fault("fos2", "status", scope="write", status=500)
    run = lab.agent.run("start")
    assert run.rc == OCFStatus.ERR_GENERIC
    assert run.reason.startswith("fos2 (127.0.0.1:") and "HTTP 500" in run.reason
    assert run.reason.endswith("(the Wazo not put in line; every device reached was handed "
                               "back to the PBX)")
    assert ("fos1", A_D, A_B, "http") in lab.changes()
    assert lab.states()[0] == (A_D, 0)  # fos1 was in line and armed: handed back
    assert lab.agent.record() is None and lab.agent.probe().rc == OCFStatus.NOT_RUNNING


def test_kicks_not_arriving(started):
    lab = started
    lab.agent.signal_kicker(signal.SIGSTOP)  # alive, but silent: a frozen kicker
    time.sleep(WATCHDOG / 2 + 1)
    run = lab.agent.run("monitor")
    assert run.rc == OCFStatus.DEGRADED
    assert "watchdog fires in" in run.reason and "the kicks do not arrive" in run.reason
    lab.agent.signal_kicker(signal.SIGCONT)
    time.sleep(0.5)
    assert lab.agent.run("monitor").rc == OCFStatus.SUCCESS
    assert "watchdog kick" in lab.agent.log() and "late" in lab.agent.log()


def test_relays_moved_by_hand(started):
    lab = started
    lab.control.set_values("fos2", mode=0)
    run = lab.agent.run("monitor")
    assert run.rc == OCFStatus.ERR_GENERIC and run.reason.endswith(
        "relays at A--D: the lines are on the PBX, not through the Wazo")


def test_scenario_changed_by_hand(started):
    lab = started
    lab.control.set_values("fos1", scenario=0)
    run = lab.agent.run("monitor")
    assert run.rc == OCFStatus.ERR_GENERIC and "scenario fallback" in run.reason


def test_power_on_settings_changed_by_hand(started):
    lab = started
    lab.control.set_values("fos1", modedef=0, wdogdef=0)
    run = lab.agent.run("monitor")
    assert run.rc == OCFStatus.DEGRADED
    assert run.reason.endswith("modedef=0, wdogdef=0 since start (a restart of the resource "
                               "sets them again)")


@pytest.mark.parametrize("section, reason", [
    ("[fos1]\nhost = 127.0.0.1:{port}\n", "device [fos1] has no mac line"),
    ("[fos1]\nmac = 00:19:32:00:00:01\nhost = 0.0.0.0:{port}\n",
     "device [fos1] has host 0.0.0.0: watchdog kicks go to each device's own address"),
])
def test_device_the_kicker_cannot_reach(lab, section, reason):
    port = lab.device("fos1")["address"].split(":")[1]
    lab.conf.write_text(section.format(port=port))
    for action in ("validate-all", "start"):
        run = lab.agent.run(action)
        assert run.rc == OCFStatus.ERR_ARGS and reason in run.reason, run
    assert lab.agent.probe().rc == OCFStatus.NOT_RUNNING
    assert lab.agent.record() is None


# -- actions ---------------------------------------------------------------------------------

def test_start_puts_the_wazo_in_line_and_arms_the_watchdog(started):
    lab = started
    for name in ("fos1", "fos2"):
        device = lab.device(name)
        settings = device["settings"]
        assert (settings["scenario"], settings["modedef"], settings["wdogdef"],
                settings["wdogitime"]) == (1, 1, True, WATCHDOG)
        assert settings["wdogrtime"] >= WATCHDOG - 1
        # the Wazo in line before the watchdog is armed, each group once, then read back
        assert [path.split("&")[0] for path in lab.writes(name)] == [
            "/?cmd=1", "/?cmd=2", "/?cmd=4", "/?cmd=6"]
        assert lab.control.requests(name)[-1]["path"] == "/config.txt"
    info = [line for line in lab.agent.log().splitlines() if "berofos-bypass(" in line]
    assert len(info) == 2 and all("Wazo in line (relays A--B + C--D), watchdog armed: kicked "
                                  f"every 1 s, it hands the lines to the PBX {WATCHDOG} s "
                                  "after the last kick" in line for line in info)
    assert lab.agent.run("monitor").rc == OCFStatus.SUCCESS


def test_start_of_a_started_resource_keeps_its_kicker(started):
    lab = started
    pid, writes = lab.agent.kicker_pid(), lab.writes()
    assert lab.agent.run("start").rc == OCFStatus.SUCCESS
    assert lab.agent.kicker_pid() == pid and lab.writes() == writes


def test_stop_hands_the_lines_to_the_pbx_at_once(started):
    lab = started
    pid = lab.agent.kicker_pid()
    run = lab.agent.run("stop")
    assert run.rc == OCFStatus.SUCCESS and run.elapsed < 2.0
    assert not kicker_running(pid) and lab.agent.record() is None
    assert lab.states() == [(A_D, 0), (A_D, 0)]
    assert [lab.device(n)["settings"]["modedef"] for n in ("fos1", "fos2")] == [A_D, A_D]
    assert [c[3] for c in lab.changes()] == ["http"] * 4
    assert "kicker (pid" in lab.agent.log() and "stopped" in lab.agent.log()
    seen = len(lab.control.requests("fos1"))
    assert lab.agent.run("stop").rc == OCFStatus.SUCCESS  # stop of a stopped one: no request
    assert len(lab.control.requests("fos1")) == seen
    assert lab.agent.run("monitor").rc == OCFStatus.NOT_RUNNING


def test_monitor_of_a_stopped_resource(lab):
    assert lab.agent.probe().reason == ""  # a probe: no exit reason
    run = lab.agent.run("monitor")
    assert run.rc == OCFStatus.NOT_RUNNING and run.reason.startswith("not started on this node")
    assert lab.writes() == []


def test_validate_all_at_level_10_kicks_every_device(lab):
    assert lab.agent.run("validate-all", OCF_CHECK_LEVEL=10).rc == OCFStatus.SUCCESS
    wrong = lab.agent.run("validate-all", OCF_CHECK_LEVEL=10, OCF_RESKEY_udp_port=9)
    assert wrong.rc == OCFStatus.ERR_ARGS
    assert "no answer to watchdog kick" in wrong.reason and "UDP port 9 filtered?" in wrong.reason
    assert lab.changes() == []


@pytest.mark.parametrize("value", ["4", "3601", "soon"])
def test_watchdog_timeout_out_of_range(lab, value):
    run = lab.agent.run("validate-all", OCF_RESKEY_watchdog_timeout=value)
    assert run.rc == OCFStatus.ERR_CONFIGURED and "watchdog_timeout" in run.reason


def test_meta_data_only_on_stdout(started):
    lab = started
    assert lab.agent.run("meta-data").stdout.startswith('<?xml version="1.0"?>')
    for action in ("monitor", "start", "validate-all", "reload-agent", "usage", "promote",
                   "stop"):
        assert lab.agent.run(action).stdout == "", action
    assert lab.agent.run("promote").rc == OCFStatus.ERR_UNIMPLEMENTED


def test_reload_agent_keeps_the_kicker(started):
    lab = started
    pid = lab.agent.kicker_pid()
    run = lab.agent.run("reload-agent", OCF_RESKEY_http_timeout=5)
    assert run.rc == OCFStatus.SUCCESS and lab.agent.kicker_pid() == pid
    assert "reloaded: http_timeout=5; the kicker goes on" in lab.agent.log()


def test_the_promotable_agent_still_refuses_the_watchdog(started):
    """The other wiring: its validate-all (level 10) refuses what this one set up."""
    lab = started
    clone = Agent(lab.agent.dir.parent, lab.conf, "node1")
    run = clone.run("validate-all", OCF_CHECK_LEVEL=10)
    assert run.rc == OCFStatus.ERR_CONFIGURED and "watchdog enabled" in run.reason
    assert "wdog=0 wdogdef=0" in run.reason


def test_no_traceback_nor_password_anywhere(emulator_process, tmp_path):
    lab = make_lab(emulator_process, tmp_path, extra=["--password", PASSWORD],
                   password=PASSWORD)
    try:
        runs = [lab.agent.run(action) for action in ("start", "monitor", "stop")]
        assert [run.rc for run in runs] == [0, 0, 0]
        text = "".join(run.stderr + run.stdout for run in runs) + lab.agent.log()
        assert PASSWORD not in text and "Traceback" not in text
    finally:
        lab.agent.cleanup()
