"""The bypass agent's pieces in the test process: timing, judgement, the kicker and its handling."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from berofos_ocf.agent.bypass import judge, wanted_settings
from berofos_ocf.agent.bypass_kicker import (
    KickerFile,
    KickerLaunchError,
    KickerRecord,
    launch_kicker,
    process_start_time,
    stop_kicker,
)
from berofos_ocf.agent.bypass_table import (
    BYPASS,
    GBL4_PORT,
    kick_interval,
    kick_reply_timeout,
    low_time_left,
)
from berofos_ocf.bnfosconf import DeviceEntry
from berofos_ocf.client import DeviceStatus
from berofos_ocf.configtxt import Settings, parse_config_txt
from berofos_ocf.errors import DeviceTimeout, DeviceUnreachable, InvalidValue
from berofos_ocf.health import DeviceHealth
from berofos_ocf.kicker import Kicker, KickLog, KickTarget
from berofos_ocf.udp import DEFAULT_UDP_PORT

from .conftest import FIXTURES, PYTHON

FOS1 = DeviceEntry("fos1", mac="00:19:32:00:12:1D", host="10.34.1.50")
# a device as start leaves it, watchdog_timeout 15
IN_LINE = {"scenario": 1, "mode": 1, "modedef": 1, "wdog": True, "wdogdef": True,
           "wdogstate": 1, "wdogitime": 15, "wdogrtime": 14}


# -- timing --------------------------------------------------------------------------------

@pytest.mark.parametrize("timeout, interval, reply, low", [
    (5, 1.0, 0.5, 2.0), (6, 1.0, 0.5, 3.0), (15, 2.5, 1.25, 7.5), (60, 10.0, 2.0, 30.0)])
def test_kick_timing(timeout, interval, reply, low):
    assert kick_interval(timeout) == interval
    assert kick_reply_timeout(timeout) == reply and reply < interval
    assert low_time_left(timeout) == low


def test_the_table_names_the_devices_gbl4_port_and_no_promotion():
    assert GBL4_PORT == DEFAULT_UDP_PORT
    assert BYPASS.parameters_by_name["udp_port"].default == str(DEFAULT_UDP_PORT)
    assert {"config", "devices", "http_timeout", "watchdog_timeout"} <= set(
        BYPASS.parameters_by_name)
    assert BYPASS.action("promote") is None and BYPASS.action("notify") is None
    assert BYPASS.module == "bypass" and BYPASS.node_name is None


def test_start_writes_the_wazo_in_line_before_the_watchdog():
    assert list(wanted_settings(15)) == ["scenario", "modedef", "wdogitime", "wdogdef", "mode",
                                         "wdog"]


# -- the judgement, read for this wiring ---------------------------------------------------

def health(**values) -> DeviceHealth:
    settings = parse_config_txt((FIXTURES / "config-1.53.txt").read_bytes())
    settings.raw.update(Settings.from_values({**IN_LINE, **values}).raw)
    return DeviceHealth.of(DeviceStatus(FOS1, settings))


def test_what_the_cluster_agent_calls_problems_is_the_goal_here():
    device = health()
    assert {p.kind.value for p in device.problems} == {"watchdog-enabled", "bypass-scenario"}
    verdict = judge(device, 15)
    assert (verdict.failures, verdict.risks) == ([], [])


@pytest.mark.parametrize("values, words", [
    ({"scenario": 0}, "scenario fallback: relay mode 1 does not connect C--D"),
    ({"mode": 0, "wdogstate": 2, "wdog": False},
     "hardware watchdog fired (relays dropped to A--D): the lines are on the PBX"),
    ({"mode": 0}, "relays at A--D: the lines are on the PBX, not through the Wazo"),
    ({"wdog": False, "wdogstate": 0}, "watchdog off: nothing would hand the lines"),
])
def test_out_of_line_fails(values, words):
    verdict = judge(health(**values), 15)
    assert len(verdict.failures) == 1 and verdict.failures[0].startswith("fos1 (10.34.1.50): ")
    assert words in verdict.failures[0]


@pytest.mark.parametrize("values, words", [
    ({"wdogrtime": 7}, "fos1 (10.34.1.50): watchdog fires in 7 s: the kicks do not arrive"),
    ({"wdogitime": 60, "wdogdef": False},
     "fos1 (10.34.1.50): wdogdef=0, wdogitime=60 since start"),
])
def test_risks_degrade(values, words):
    verdict = judge(health(**values), 15)
    assert verdict.failures == [] and len(verdict.risks) == 1
    assert verdict.risks[0].startswith(words)


def test_time_left_at_the_threshold_is_not_low():
    assert judge(health(wdogrtime=8), 15).risks == []


def test_an_unreadable_device_is_a_risk_the_caller_weighs():
    error = DeviceUnreachable("fos1 (10.34.1.50)", "connection refused")
    verdict = judge(DeviceHealth.of(DeviceStatus(FOS1, error=error)), 15)
    assert verdict.failures == [] and verdict.risks == [str(error)]


# -- the kicker ------------------------------------------------------------------------------

def test_kick_target_round_trip():
    target = KickTarget.parse("fos1,00:19:32:00:12:1d,10.34.1.50")
    assert (target.mac, target.host) == (bytes.fromhex("00193200121d"), "10.34.1.50")
    assert target.argument() == "fos1,00:19:32:00:12:1D,10.34.1.50"
    assert target.label == "fos1 (10.34.1.50)"
    for bad in ("fos1", "fos1,00:19:32:00:12:1D", "fos1,nomac,10.0.0.1"):
        with pytest.raises(InvalidValue):
            KickTarget.parse(bad)


class Lines:
    """A log that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, text: str) -> None:
        self.lines.append(("info", text))

    def warning(self, text: str) -> None:
        self.lines.append(("warning", text))


def test_kick_failures_are_logged_once_a_minute_then_the_recovery():
    now = [100.0]
    lines = Lines()
    log = KickLog(lines, watchdog_timeout=15, clock=lambda: now[0])
    target = KickTarget.parse("fos1,00:19:32:00:12:1D,10.34.1.50")
    for _ in range(20):  # 20 failures within 38 s: one line
        log.failed(target, "no answer")
        now[0] += 2
    assert lines.lines == [("warning", "fos1 (10.34.1.50): watchdog kick failed: no answer (it "
                                       "fires 15 s after the last kick that arrived)")]
    now[0] += 30
    log.failed(target, "no answer")
    assert lines.lines[-1] == ("warning", "fos1 (10.34.1.50): 21 watchdog kicks failed in a "
                                          "row for 70 s; last: no answer")
    log.succeeded(target)
    log.succeeded(target)
    assert lines.lines[-1] == ("info", "fos1 (10.34.1.50): watchdog kicks answered again after "
                                       "21 failed (70 s)")
    assert len(lines.lines) == 3


def test_the_kicker_never_gives_up_and_a_silent_device_never_delays_another():
    kicked: dict[str, int] = {"fos1": 0, "fos2": 0}
    lines = Lines()

    def kick(target: KickTarget) -> None:
        kicked[target.name] += 1
        if target.name == "fos2":
            time.sleep(0.15)  # waits for a reply that never comes
            raise (DeviceTimeout if kicked["fos2"] % 2 else RuntimeError)("fos2", "silent")

    targets = [KickTarget.parse(f"fos{n},00:19:32:00:12:0{n},10.0.0.{n}") for n in (1, 2)]
    kicker = Kicker(targets, kick=kick, interval=0.05, log=KickLog(lines, watchdog_timeout=5))
    kicker.start()
    time.sleep(1.0)
    kicker.stop()
    kicker.join(1.0)
    assert kicked["fos1"] >= 15  # its cadence, whatever fos2 does
    assert 4 <= kicked["fos2"] <= 8  # every failure, bugs included, and it goes on
    assert not any(thread.name.startswith("kick-") for thread in threading.enumerate())
    assert [line for line in lines.lines if "fos1" in line[1]] == []


# -- the kicker process, as the agent handles it ---------------------------------------------

def test_process_start_time():
    assert process_start_time(os.getpid()) == process_start_time(os.getpid()) > 0
    assert process_start_time(2 ** 22 + 1) is None


def test_kicker_file(tmp_path):
    kicker_file = KickerFile(str(tmp_path), "isdn-bypass")
    assert kicker_file.read() is None
    record = KickerRecord(1234, 987, ["fos1,00:19:32:00:12:1D,10.0.0.1"], 2.5, 50123, 15)
    kicker_file.write(record)
    assert kicker_file.path.endswith("/berofos-bypass-isdn-bypass.kicker")
    again = kicker_file.read()
    assert again.to_json() == record.to_json() and again.same_work(record)
    (tmp_path / "berofos-bypass-isdn-bypass.kicker").write_text("{garbage")
    broken = kicker_file.read()
    assert broken is not None and not broken.alive()  # started, and its kicker gone
    kicker_file.remove()
    assert kicker_file.read() is None


def spawn(code: str) -> tuple[subprocess.Popen, KickerRecord]:
    process = subprocess.Popen([PYTHON, "-c", code])
    time.sleep(0.3)  # its signal handlers set
    return process, KickerRecord(process.pid, process_start_time(process.pid), [], 1.0, 1, 5)


def test_stop_kicker_terminates_then_kills():
    process, record = spawn("import time; time.sleep(30)")
    assert record.alive() and stop_kicker(record) == f"kicker (pid {process.pid}) stopped"
    assert process.wait(5) == -signal.SIGTERM
    process, record = spawn("import signal, time; signal.signal(signal.SIGTERM, "
                            "signal.SIG_IGN); time.sleep(30)")
    assert stop_kicker(record, wait=0.3).startswith(f"kicker (pid {process.pid}) killed")
    assert process.wait(5) == -signal.SIGKILL


def test_stop_kicker_never_signals_a_recycled_pid():
    process, record = spawn("import time; time.sleep(30)")
    try:
        record.started -= 1  # the recorded kicker was another process with this PID
        assert not record.alive()
        assert stop_kicker(record) == f"kicker (pid {process.pid}) already gone"
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


def test_launch_kicker_that_does_not_start(tmp_path):
    work = KickerRecord(0, None, ["fos1,00:19:32:00:12:1D,127.0.0.1"], 1.0, 9, 5)
    with pytest.raises(KickerLaunchError, match=r"did not start \(exit status 1\)"):
        launch_kicker(work, instance="t", reply_timeout=0.5, environ={}, python="/bin/false")


def test_launch_kicker_kicks_an_emulated_device_until_stopped(emulator):
    device = emulator.devices[0]
    device.operator_set({"wdogitime": 5, "wdog": True})
    target = KickTarget(device.name, device.mac, device.listen[0])
    work = KickerRecord(0, None, [target.argument()], 1.0, emulator.udp_port, 5)
    record = launch_kicker(work, instance="t", reply_timeout=0.5,
                           environ={"PATH": "/usr/bin:/bin", "HA_LOGFILE": os.devnull},
                           python=PYTHON)
    try:
        assert record.alive() and record.same_work(work)
        time.sleep(1.5)
        assert device.watchdog_state == 1 and device.settings().values()["wdogrtime"] >= 4
    finally:
        assert stop_kicker(record).endswith("stopped")
