"""The agent as a subprocess with a real environment, against an emulator process.

One test per row of design.md's fault table, then the contract of each action.
Each test asserts the exit code, the exit reason and what the emulator saw
(relay log, requests).  A fake ``crm_attribute`` on PATH records the promotion
score calls.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from berofos_ocf.agent.actions import CONFIRM_SECONDS
from berofos_ocf.agent.codes import OCFStatus

from .conftest import Agent

PASSWORD = "Agent-pw-93"


@pytest.fixture
def lab(emulator_process, tmp_path):
    """Two emulated devices (relays at A--B = node1), their file, node1 and node2."""
    emulator = emulator_process(devices=2)
    conf = emulator.write_conf(tmp_path / "bnfos.conf")

    class Lab:
        pass

    lab = Lab()
    lab.emulator, lab.conf = emulator, conf
    lab.node1 = Agent(tmp_path, conf, "node1")
    lab.node2 = Agent(tmp_path, conf, "node2")
    return lab


def writes(emulator, device: str = "fos1") -> list[str]:
    return [r["path"] for r in emulator.control.requests(device) if r["path"].startswith("/?")]


def relays(emulator) -> list[int]:
    return [d["relay_mode"] for d in emulator.control.devices()]


# -- fault table -----------------------------------------------------------------------------

def test_config_missing(lab, tmp_path):
    missing = tmp_path / "absent.conf"
    for action in ("validate-all", "start"):
        run = lab.node1.run(action, OCF_RESKEY_config=missing)
        assert run.rc == OCFStatus.ERR_INSTALLED, run
        assert run.reason == f"{missing}: file not found"
    assert lab.node1.probe(OCF_RESKEY_config=missing).rc == OCFStatus.NOT_RUNNING
    assert lab.emulator.relay_log() == [] and lab.node1.role() is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the agent as nobody")
def test_config_unreadable(lab, installed_tree, tmp_path):
    private = tmp_path / "private" / "bnfos.conf"
    private.parent.mkdir()
    private.write_text(lab.conf.read_text())
    private.chmod(0o600)
    private.parent.chmod(0o755)
    tmp_path.chmod(0o755)
    agent = Agent(tmp_path, private, "node1", program=installed_tree)
    agent.env["HA_LOGFILE"] = "/dev/null"
    run = agent.run("validate-all", user="65534")
    assert run.rc == OCFStatus.ERR_PERM, run
    assert run.reason == f"{private}: permission denied"


def test_config_syntax_error_names_the_line(lab):
    """The file is per node: a broken one bans this node (2), never the clone everywhere (6)."""
    lab.conf.write_text(lab.conf.read_text() + "port = 80\n")
    for action in ("validate-all", "start"):
        run = lab.node1.run(action)
        assert run.rc == OCFStatus.ERR_ARGS
        assert run.reason.startswith(f"{lab.conf}:") and "syntax error" in run.reason
    assert lab.emulator.relay_log() == [] and lab.node1.role() is None


def test_unknown_device(lab):
    run = lab.node1.run("start", OCF_RESKEY_devices="fos1 fos7")
    assert run.rc == OCFStatus.ERR_ARGS and "no device [fos7]" in run.reason
    assert lab.emulator.relay_log() == [] and lab.node1.role() is None


@pytest.mark.parametrize("action", ["validate-all", "start"])
def test_config_that_is_not_a_regular_file_bans_only_this_node(lab, tmp_path, action):
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    run = lab.node1.run(action, OCF_RESKEY_config=fifo, timeout=15)
    assert run.rc == OCFStatus.ERR_ARGS, run
    assert str(fifo) in run.reason


@pytest.mark.parametrize("action", ["validate-all", "start", "promote"])
def test_promoted_max_other_than_one_is_refused_everywhere(lab, action):
    if action == "promote":
        assert lab.node1.run("start").rc == 0
    for key in ("OCF_RESKEY_CRM_meta_promoted_max", "OCF_RESKEY_CRM_meta_master_max"):
        run = lab.node1.run(action, OCF_CHECK_LEVEL=10, OCF_RESKEY_CRM_meta_promoted_max=2,
                            OCF_RESKEY_CRM_meta_master_max=2)
        assert run.rc == OCFStatus.ERR_CONFIGURED, run
        assert "promoted-max=2" in run.reason and "set promoted-max=1" in run.reason
    assert lab.emulator.relay_log() == []


def test_port_b_equals_port_d(lab):
    run = lab.node1.run("validate-all", OCF_RESKEY_port_d="NODE1")
    assert run.rc == OCFStatus.ERR_CONFIGURED
    assert run.reason == "port_b and port_d name the same node (node1)"


def test_required_parameter_missing(lab):
    run = lab.node1.run("validate-all", OCF_RESKEY_port_b=None)
    assert run.rc == OCFStatus.ERR_CONFIGURED and run.reason == "parameter port_b is required"


def test_http_timeout_must_be_a_number_in_range(lab):
    assert lab.node1.run("validate-all", OCF_RESKEY_http_timeout="soon").rc == 6
    assert lab.node1.run("validate-all", OCF_RESKEY_http_timeout="0").rc == 6
    assert lab.node1.run("validate-all", OCF_RESKEY_http_timeout="9" * 5000).rc == 6


def test_node_that_is_neither_port(lab, tmp_path):
    node3 = Agent(tmp_path, lab.conf, "node3")
    run = node3.run("start")
    assert run.rc == OCFStatus.ERR_ARGS
    assert run.reason == "this node (node3) is neither port_b (node1) nor port_d (node2)"
    assert node3.probe().rc == OCFStatus.NOT_RUNNING
    assert node3.role() is None
    assert node3.run("promote").rc == OCFStatus.NOT_RUNNING
    assert lab.emulator.relay_log() == []


@pytest.mark.parametrize("overrides", [
    {"OCF_RESKEY_config": "/nonexistent/bnfos.conf"},
    {"OCF_RESKEY_port_d": "node1"},
    {"OCF_RESKEY_port_b": None},
    {"OCF_RESKEY_CRM_meta_on_node": "node3"},
    {"OCF_RESKEY_devices": "nosuchdevice"},
])
def test_probe_never_returns_2_5_or_6(lab, overrides):
    assert lab.node1.probe(**overrides).rc == OCFStatus.NOT_RUNNING


def test_device_unreachable_at_start(lab):
    lab.emulator.control.power("fos2", "off")
    run = lab.node1.run("start")
    assert run.rc == OCFStatus.SUCCESS and lab.node1.role() == "unpromoted"
    assert lab.node1.last_score() == "-INFINITY"  # withheld
    assert "started without control of fos2" in lab.node1.log()
    monitor = lab.node1.run("monitor")
    assert monitor.rc == OCFStatus.DEGRADED and "fos2 (127.0.0.1:" in monitor.reason
    lab.emulator.control.power("fos2", "on")
    assert lab.node1.run("monitor").rc == OCFStatus.SUCCESS
    assert lab.node1.last_score() == "110"


def test_device_unreachable_at_promote(lab):
    lab.node2.run("start")
    lab.emulator.control.power("fos2", "off")
    run = lab.node2.run("promote", OCF_RESKEY_CRM_meta_timeout=6000)
    assert run.rc == OCFStatus.ERR_GENERIC
    assert run.reason.startswith("fos2 (127.0.0.1:")
    assert "relays not all moved to A--D for node2" in run.reason
    assert lab.node2.role() == "unpromoted"
    assert lab.node2.last_score() == "-INFINITY"
    assert lab.emulator.control.device("fos2")["refused_connections"] >= 2  # retried
    moved = [(e["device"], e["old"], e["new"], e["cause"]) for e in lab.emulator.relay_log()]
    assert moved == [("fos2", 1, 0, "power-off"), ("fos1", 1, 0, "http")]
    assert run.elapsed < 6.0  # within its timeout: a budget of 4.5 s, then the score


def test_wrong_password(emulator_process, tmp_path):
    emulator = emulator_process(extra=["--password", PASSWORD])
    conf = emulator.write_conf(tmp_path / "bnfos.conf", password="not-the-one")
    node2 = Agent(tmp_path, conf, "node2")
    node2.run("start")
    run = node2.run("promote")
    assert run.rc == OCFStatus.ERR_GENERIC
    assert run.reason.startswith("credentials rejected by fos1 (127.0.0.1:")
    assert len(emulator.control.requests("fos1")) == 2  # one at start, one at promote
    assert emulator.relay_log() == []
    everything = run.stderr + node2.log() + conf.read_text().replace("not-the-one", "")
    assert "not-the-one" not in run.stderr + node2.log()
    assert PASSWORD not in everything


@pytest.mark.parametrize("fault, details, text", [
    ("garbage", {}, "answered something that is not HTTP"),
    ("truncate", {}, "no 4_mode line"),
    ("no-magic", {}, "bnfos_confmap_magic line is missing"),
    ("status", {"status": 503}, "HTTP 503"),
    ("drop", {}, "closed the connection without answering"),
])
def test_broken_answers_give_a_clear_error_per_device(lab, fault, details, text):
    lab.node2.run("start")
    lab.emulator.control.fault("fos2", fault, **details)
    run = lab.node2.run("promote", OCF_RESKEY_CRM_meta_timeout=6000)
    assert run.rc == OCFStatus.ERR_GENERIC
    assert run.reason.startswith("fos2 (127.0.0.1:") and text in run.reason
    assert "Traceback" not in run.stderr + lab.node2.log()
    assert run.elapsed < 6.0
    assert [e["device"] for e in lab.emulator.relay_log()] == ["fos1"]  # fos2 never moved
    assert lab.node2.role() == "unpromoted"


def test_crlf_answers_are_fine(lab):
    lab.emulator.control.fault("fos1", "crlf")
    lab.node2.run("start")
    assert lab.node2.run("promote").rc == OCFStatus.SUCCESS
    assert relays(lab.emulator) == [0, 0]


def test_slow_device_within_the_budget(lab):
    lab.emulator.control.fault("fos1", "latency", seconds=1.0)
    lab.node2.run("start")
    assert lab.node2.run("promote").rc == OCFStatus.SUCCESS
    assert relays(lab.emulator) == [0, 0]


def test_hanging_device_promote_ends_before_the_timeout(lab):
    lab.node2.run("start")
    lab.emulator.control.fault("fos1", "hang")
    # a slow crm_attribute too: the time kept for it lets promote withdraw its score
    run = lab.node2.run("promote", OCF_RESKEY_CRM_meta_timeout=7000, FAKE_CRM_DELAY="0.3")
    assert run.rc == OCFStatus.ERR_GENERIC and run.reason.startswith("fos1 (127.0.0.1:")
    assert run.elapsed < 7.0  # Pacemaker would SIGKILL it at 7 s (the budget: 5.25 s)
    assert lab.node2.role() == "unpromoted"
    assert lab.node2.last_score() == "-INFINITY"
    assert "could not" not in lab.node2.log()
    assert [e["device"] for e in lab.emulator.relay_log()] == ["fos2"]


@pytest.mark.parametrize("move", ["power-cycle", "watchdog", "manual"])
def test_relays_moved_behind_the_back_are_detected_and_restored(lab, move):
    control = lab.emulator.control
    lab.node2.run("start")
    assert lab.node2.run("promote").rc == 0
    assert lab.node2.run("monitor").rc == OCFStatus.RUNNING_PROMOTED
    if move == "power-cycle":  # modedef changed by hand to point at node1
        control.set_values("fos2", modedef=1)
        control.power("fos2", "cycle", seconds=0.2)
        time.sleep(0.6)
    elif move == "watchdog":
        control.set_values("fos2", mode=0, wdogitime=60)  # (already A--D: make it A--B first)
        control.set_values("fos2", mode=1)
        control.expire_watchdog("fos2")
        control.set_values("fos2", mode=1)
    else:
        control.set_values("fos2", mode=1)
    run = lab.node2.run("monitor")
    assert run.rc == OCFStatus.FAILED_PROMOTED
    assert run.reason.startswith("fos2 (127.0.0.1:")
    assert run.reason.endswith("relays at A--B (node1), expected A--D (node2)")
    before = len(lab.emulator.relay_log())
    assert lab.node2.run("promote").rc == OCFStatus.SUCCESS
    restored = lab.emulator.relay_log()[before:]
    assert [(e["device"], e["old"], e["new"], e["cause"]) for e in restored] == [
        ("fos2", 1, 0, "http")]
    if move == "watchdog":  # a fired watchdog stays in failure until someone resets it
        run = lab.node2.run("monitor")
        assert run.rc == OCFStatus.DEGRADED_PROMOTED and "watchdog fired" in run.reason
        control.set_values("fos2", wdog=False)
    assert lab.node2.run("monitor").rc == OCFStatus.RUNNING_PROMOTED


def test_promote_points_the_power_on_mode_here_so_a_reboot_keeps_the_lines(lab):
    control = lab.emulator.control
    lab.node2.run("start")
    assert lab.node2.run("promote").rc == 0
    assert [d["settings"]["modedef"] for d in control.devices()] == [0, 0]
    before = len(lab.emulator.relay_log())
    control.power("fos1", "cycle", seconds=0.2)
    time.sleep(0.6)
    assert lab.emulator.relay_log()[before:] == []  # A--D at rest, A--D at boot
    assert lab.node2.run("monitor").rc == OCFStatus.RUNNING_PROMOTED


def test_promoted_monitor_reports_a_power_on_mode_pointing_elsewhere(lab):
    lab.node2.run("start")
    assert lab.node2.run("promote").rc == 0
    lab.emulator.control.set_values("fos2", modedef=1)
    run = lab.node2.run("monitor")
    assert run.rc == OCFStatus.DEGRADED_PROMOTED
    assert run.reason.endswith("power-on relays at A--B (node1): a reboot would move the lines")
    assert lab.node2.run("monitor", interval=11000).rc == OCFStatus.DEGRADED_PROMOTED
    assert lab.node1.run("start").rc == 0
    assert lab.node1.run("monitor").rc == OCFStatus.SUCCESS  # unpromoted: not its business


def test_a_power_on_mode_that_will_not_stick_does_not_fail_the_promote(lab):
    lab.node2.run("start")
    lab.emulator.control.set_values("fos1", mode=0)  # relays already here: only modedef to write
    lab.emulator.control.fault("fos1", "status", scope="write", status=500)
    run = lab.node2.run("promote")
    assert run.rc == OCFStatus.SUCCESS, run
    warning = [line for line in lab.node2.log().splitlines() if "WARNING" in line]
    assert len(warning) == 1 and "fos1 (127.0.0.1" in warning[0]
    assert "power-on relay mode not pointed at node2" in warning[0]
    assert lab.node2.run("monitor").rc == OCFStatus.DEGRADED_PROMOTED


def test_watchdog_expiry_alone_shows_as_failed_on_the_b_node(lab):
    lab.node1.run("start")
    assert lab.node1.run("promote").rc == 0  # nothing to move: already A--B
    lab.emulator.control.expire_watchdog("fos1")  # relays fall to A--D
    run = lab.node1.run("monitor")
    assert run.rc == OCFStatus.FAILED_PROMOTED and "relays at A--D (node2)" in run.reason


def test_world_readable_config_with_password(emulator_process, tmp_path):
    emulator = emulator_process(extra=["--password", PASSWORD])
    conf = emulator.write_conf(tmp_path / "bnfos.conf", password=PASSWORD)
    conf.chmod(0o644)
    agent = Agent(tmp_path, conf, "node1")
    assert agent.run("validate-all").rc == OCFStatus.SUCCESS
    assert f"{conf} holds a password and is readable by everyone" in agent.log()
    conf.chmod(0o600)
    Agent(tmp_path, conf, "node2").run("validate-all")
    assert "readable by everyone" not in (tmp_path / "agent-node2" / "agent.log").read_text()


# -- actions ---------------------------------------------------------------------------------

def test_meta_data_only_on_stdout(lab):
    assert lab.node1.run("meta-data").stdout.startswith('<?xml version="1.0"?>')
    for action in ("start", "monitor", "promote", "demote", "notify", "validate-all", "stop",
                   "usage", "bogus"):
        assert lab.node1.run(action).stdout == "", action


def test_unknown_action_and_usage(lab):
    run = lab.node1.run("migrate_to")
    assert run.rc == OCFStatus.ERR_UNIMPLEMENTED and run.reason == "unknown action 'migrate_to'"
    usage = lab.node1.run("usage")
    assert usage.rc == 0 and "usage: berofos {start|stop" in usage.stderr


def test_start_is_idempotent_and_never_moves_relays(lab):
    assert lab.node2.run("start").rc == 0
    assert lab.node2.run("start").rc == 0
    assert lab.node2.role() == "unpromoted"
    assert writes(lab.emulator) == [] and lab.emulator.relay_log() == []


def test_start_scores(lab):
    lab.node1.run("start")
    lab.node2.run("start")
    assert lab.node1.last_score() == "110"  # relays already at port B
    assert lab.node2.last_score() == "100"
    call = lab.node1.score_calls()[-1]
    assert call == "--node node1 --lifetime reboot --promotion=isdn --update=110"


def test_promote_moves_every_device_logs_and_confirms(lab):
    lab.node2.run("start")
    run = lab.node2.run("promote")
    assert run.rc == 0 and lab.node2.role() == "promoted"
    log = lab.emulator.relay_log()
    assert sorted((e["device"], e["old"], e["new"]) for e in log) == [
        ("fos1", 1, 0), ("fos2", 1, 0)]
    info = [line for line in lab.node2.log().splitlines() if "INFO" in line]
    moved = [line for line in info if "relays A--B -> A--D for node node2" in line]
    power_on = [line for line in info if "power-on relays A--D for node node2" in line]
    assert len(moved) == 2 and len(power_on) == 2 and len(info) == 4
    assert lab.node2.last_score() == "110"
    for device in ("fos1", "fos2"):
        paths = [r["path"] for r in lab.emulator.control.requests(device)]
        writes = [p for p in paths if p.startswith("/?")]
        assert writes[-2:] == ["/?cmd=4&mode=0", "/?cmd=1&sz=0&rm=0&p0=0&p1=0"]
        assert paths[-1] == "/config.txt"  # and each read back


def test_promote_handles_devices_concurrently(lab):
    lab.node2.run("start")
    seen = {d: len(lab.emulator.control.requests(d)) for d in ("fos1", "fos2")}
    for device in ("fos1", "fos2"):
        lab.emulator.control.fault(device, "latency", seconds=0.8, count=1)
    lab.node2.run("promote")
    first = [lab.emulator.control.requests(d)[seen[d]] for d in ("fos1", "fos2")]
    # both devices were being asked before either answered
    assert max(r["received"] for r in first) < min(r["time"] for r in first)


def test_promote_is_idempotent(lab):
    lab.node2.run("start")
    lab.node2.run("promote")
    assert lab.node2.run("promote").rc == 0
    assert len(lab.emulator.relay_log()) == 2
    assert "INFO" not in lab.node2.log().split("for node node2")[-1]


def test_promote_of_a_stopped_instance(lab):
    run = lab.node2.run("promote")
    assert run.rc == OCFStatus.NOT_RUNNING and lab.emulator.relay_log() == []


def test_demote_and_stop_never_touch_the_device(lab):
    lab.node2.run("start")
    lab.node2.run("promote")
    seen = len(lab.emulator.control.requests("fos1"))
    assert lab.node2.run("demote").rc == 0 and lab.node2.role() == "unpromoted"
    assert lab.node2.run("demote").rc == 0
    assert lab.node2.run("stop").rc == 0 and lab.node2.role() is None
    assert lab.node2.run("stop").rc == 0
    assert len(lab.emulator.control.requests("fos1")) == seen
    assert relays(lab.emulator) == [0, 0]  # the lines stay until the next promote
    assert lab.node2.last_score() is None  # stop deletes the score


def test_stop_with_every_device_down_and_crm_attribute_failing(lab):
    lab.node2.run("start")
    lab.emulator.control.power("fos1", "off")
    lab.emulator.control.power("fos2", "off")
    run = lab.node2.run("stop", FAKE_CRM_STATUS=1)
    assert run.rc == OCFStatus.SUCCESS and lab.node2.role() is None


def test_demote_of_a_stopped_instance(lab):
    assert lab.node2.run("demote").rc == OCFStatus.NOT_RUNNING


def test_monitor_reports_the_real_role(lab):
    assert lab.node1.run("monitor").rc == OCFStatus.NOT_RUNNING
    assert lab.node1.run("monitor").reason.startswith("not started on this node")
    assert lab.node1.probe().reason == ""
    lab.node1.run("start")
    assert lab.node1.run("monitor").rc == OCFStatus.SUCCESS
    lab.node1.run("promote")
    assert lab.node1.run("monitor").rc == OCFStatus.RUNNING_PROMOTED
    assert lab.node1.probe().rc == OCFStatus.RUNNING_PROMOTED
    lab.node1.run("demote")
    assert lab.node1.run("monitor").rc == OCFStatus.SUCCESS


def test_monitor_is_read_only(lab):
    lab.node2.run("start")
    lab.node2.run("promote")
    lab.emulator.control.set_values("fos1", mode=1)  # behind the cluster's back
    before = writes(lab.emulator, "fos1")
    for _ in range(3):
        lab.node2.run("monitor")
        lab.node2.probe()
        lab.node1.probe()
    assert writes(lab.emulator, "fos1") == before
    assert lab.emulator.control.device("fos1")["relay_mode"] == 1


def test_monitor_and_probe_refresh_the_score(lab):
    lab.node1.run("start")
    lab.node1.crm_log.unlink()
    lab.node1.probe()
    assert lab.node1.last_score() == "110"
    lab.emulator.control.set_values("fos2", mode=0)
    lab.node1.run("monitor")
    assert lab.node1.last_score() == "100"  # not every device points here
    lab.emulator.control.power("fos2", "off")
    lab.node1.run("monitor")
    assert lab.node1.last_score() == "100"  # one failed read: kept
    lab.node1.backdate_failure(CONFIRM_SECONDS)
    lab.node1.run("monitor")
    assert lab.node1.last_score() == "-INFINITY"  # still gone at the next monitor: withheld


def test_promoted_instance_keeps_a_low_score_when_a_device_is_lost(lab):
    lab.node2.run("start")
    lab.node2.run("promote")
    lab.emulator.control.power("fos1", "off")
    run = lab.node2.run("monitor")
    assert run.rc == OCFStatus.DEGRADED_PROMOTED and run.reason.startswith("fos1 (127.0.0.1:")
    assert lab.node2.last_score() == "110"
    lab.node2.backdate_failure(CONFIRM_SECONDS)
    assert lab.node2.run("monitor").rc == OCFStatus.DEGRADED_PROMOTED
    assert lab.node2.last_score() == "1"


# -- score hysteresis: a glitch never moves the lines ----------------------------------------

def test_a_glitch_is_retried_and_leaves_the_score_alone(lab):
    lab.node1.run("start")
    assert lab.node1.run("promote").rc == 0
    for kind in ("reset", "drop", "hang", "status"):
        lab.emulator.control.fault("fos1", kind, scope="read", count=1)
        run = lab.node1.run("monitor", OCF_RESKEY_http_timeout=1)
        assert run.rc == OCFStatus.RUNNING_PROMOTED, (kind, run)
        assert lab.node1.last_score() == "110"
    assert lab.emulator.relay_log() == []


def test_one_failed_monitor_keeps_the_score_two_apart_lower_it(lab):
    """Promoted node1 (110) and standby node2 (100): the device is unreachable for one
    monitor of each (three tries each): nobody's score moves.  Still unreachable at the
    next monitors, CONFIRM_SECONDS later: node1 drops to 1, node2 is withheld."""
    lab.node1.run("start")
    lab.node2.run("start")
    assert lab.node1.run("promote").rc == 0
    lab.emulator.control.fault("fos1", "reset", scope="read")
    assert lab.node1.run("monitor").rc == OCFStatus.DEGRADED_PROMOTED
    assert lab.node2.run("monitor", interval=11000).rc == OCFStatus.DEGRADED
    assert (lab.node1.last_score(), lab.node2.last_score()) == ("110", "100")
    # a second failure of the same burst, too soon after the first, confirms nothing
    lab.node1.run("monitor")
    assert lab.node1.last_score() == "110"
    for node in (lab.node1, lab.node2):
        node.backdate_failure(CONFIRM_SECONDS)
        node.run("monitor")
    assert (lab.node1.last_score(), lab.node2.last_score()) == ("1", "-INFINITY")
    lab.emulator.control.clear_faults("fos1")  # back: raised at once
    assert lab.node2.run("monitor", interval=11000).rc == OCFStatus.SUCCESS
    assert lab.node2.last_score() == "100"
    assert lab.node1.run("monitor").rc == OCFStatus.RUNNING_PROMOTED
    assert lab.node1.last_score() == "110"
    assert lab.node1.state()["failed_reads"] == 0
    assert lab.emulator.relay_log() == []


def test_start_without_the_devices_has_no_score_to_keep(lab):
    lab.emulator.control.power("fos1", "off")
    assert lab.node2.run("start").rc == 0
    assert lab.node2.last_score() == "-INFINITY"


def test_stop_forgets_the_streak(lab):
    lab.node1.run("start")
    lab.emulator.control.power("fos1", "off")
    lab.node1.run("monitor")
    assert lab.node1.state()["failed_reads"] == 1
    assert lab.node1.run("stop").rc == 0
    assert not lab.node1.state_file.exists()


def test_watchdog_enabled_is_degraded(lab):
    lab.emulator.control.set_values("fos1", wdog=True)
    lab.node1.run("start")
    run = lab.node1.run("monitor")
    assert run.rc == OCFStatus.DEGRADED and "hardware watchdog enabled" in run.reason
    level10 = lab.node1.run("validate-all", OCF_CHECK_LEVEL=10)
    assert level10.rc == OCFStatus.ERR_CONFIGURED and "set wdog=0 wdogdef=0" in level10.reason


def test_validate_level_10_contacts_the_devices(lab):
    assert lab.node1.run("validate-all", OCF_CHECK_LEVEL=10).rc == 0
    lab.emulator.control.power("fos2", "off")
    run = lab.node1.run("validate-all", OCF_CHECK_LEVEL=10)
    assert run.rc == OCFStatus.ERR_ARGS and run.reason.startswith("fos2")  # from this host
    assert lab.node1.run("validate-all").rc == 0  # level 0 does not


def test_not_a_promotable_clone_sets_no_score(lab):
    env = {"OCF_RESKEY_CRM_meta_promoted_max": None, "OCF_RESKEY_CRM_meta_master_max": None}
    for action in ("start", "monitor", "promote", "stop"):
        assert lab.node2.run(action, **env).rc == 0
    assert lab.node2.crm_calls() == []


def test_failing_crm_attribute_never_fails_an_action(lab):
    for action, expected in (("start", 0), ("monitor", 0), ("promote", 0), ("monitor", 8),
                             ("stop", 0)):
        assert lab.node2.run(action, FAKE_CRM_STATUS=1).rc == expected
    assert ("could not set the promotion score of node2 (crm_attribute --promotion=isdn "
            "--update=100): exit status 1") in lab.node2.log()


def test_node_name_falls_back_to_crm_node_then_uname(lab):
    run = lab.node2.run("start", OCF_RESKEY_CRM_meta_on_node=None, FAKE_NODE_NAME="node2")
    assert run.rc == 0 and "--node node2" in lab.node2.score_calls()[-1]
    name = os.uname().nodename
    run = lab.node2.run("validate-all", OCF_RESKEY_CRM_meta_on_node=None,
                        OCF_RESKEY_port_d=name)
    assert run.rc == 0, run


def test_notify_is_not_advertised_but_succeeds(lab):
    """Notifications serve no purpose here (each costs a process per node per
    transition): not in the meta-data, and a configuration that asks anyway gets 0."""
    run = lab.node1.run("notify", OCF_RESKEY_CRM_meta_notify_type="pre",
                        OCF_RESKEY_CRM_meta_notify_operation="promote",
                        OCF_RESKEY_CRM_meta_notify_promote_uname="node2 ",
                        OCF_RESKEY_CRM_meta_notify_demote_uname="node1")
    assert run.rc == 0 and "INFO" not in lab.node1.log()
    metadata = lab.node1.run("meta-data").stdout
    assert '<action name="notify"' not in metadata
    debug = lab.node1.run("notify", HA_debug="1", OCF_RESKEY_CRM_meta_notify_type="pre",
                          OCF_RESKEY_CRM_meta_notify_operation="promote",
                          OCF_RESKEY_CRM_meta_notify_promote_uname="node2")
    assert debug.rc == 0 and "notify pre-promote: promote node2" in lab.node1.log()


def test_debug_lines_only_with_ha_debug(lab):
    lab.node1.run("start", HA_debug="0")
    assert "DEBUG" not in lab.node1.log()
    lab.node1.run("monitor", HA_debug="1")
    assert "DEBUG: promotion score of node1: 110" in lab.node1.log()


def test_password_never_in_log_reason_or_output(emulator_process, tmp_path):
    emulator = emulator_process(extra=["--password", PASSWORD])
    conf = emulator.write_conf(tmp_path / "bnfos.conf", password=PASSWORD)
    node2 = Agent(tmp_path, conf, "node2")
    outputs = []
    for action in ("validate-all", "start", "monitor", "promote", "monitor", "demote", "stop"):
        run = node2.run(action, HA_debug="1")
        outputs.append(run.stdout + run.stderr)
    emulator.control.power("fos1", "off")
    for action in ("start", "promote", "monitor"):
        run = node2.run(action, HA_debug="1", OCF_RESKEY_CRM_meta_timeout=3000)
        outputs.append(run.stdout + run.stderr)
    assert PASSWORD not in "".join(outputs) + node2.log()
    assert "DEBUG" in node2.log()


def test_monitor_of_a_started_instance_with_a_broken_configuration(lab):
    lab.node1.run("start")
    lab.conf.write_text("[fos1]\nport = 80\n")
    for run in (lab.node1.run("monitor"), lab.node1.probe()):
        assert run.rc == OCFStatus.ERR_GENERIC  # not 6: that would stop the clone everywhere
        assert "syntax error" in run.reason


def test_watchdog_that_fired_is_degraded(lab):
    lab.node2.run("start")
    lab.node2.run("promote")
    lab.emulator.control.set_values("fos1", wdog=True)
    lab.emulator.control.expire_watchdog("fos1")  # relays fall to A--D: node2's position
    run = lab.node2.run("monitor")
    assert run.rc == OCFStatus.DEGRADED_PROMOTED
    assert run.reason.endswith("hardware watchdog fired (relays dropped to A--D)")
    assert "ERROR" not in lab.node2.log().split("\n")[-2]  # a warning, every interval


def fake_ocf_library(directory, body: str):
    directory.mkdir()
    (directory / "ocf.py").write_text(body)
    return directory


def test_ocf_functions_dir_is_honoured(lab, tmp_path):
    stub_log = tmp_path / "stub.log"
    stub = fake_ocf_library(tmp_path / "lib", (
        "import logging, sys\n"
        "log = logging.getLogger('stub')\n"
        f"log.addHandler(logging.FileHandler({str(stub_log)!r}))\n"
        "logger = logging.LoggerAdapter(log, {'OCF_RESOURCE_INSTANCE': 'x'})\n"
        "class SyslogLibHandler(logging.Handler):\n    pass\n"
        "HA_DATEFMT = ''\n"))
    run = lab.node1.run("promote", OCF_FUNCTIONS_DIR=stub)
    assert run.rc == OCFStatus.NOT_RUNNING
    assert "ERROR: promote of an instance that is not started" in stub_log.read_text()


def test_run_by_hand_on_a_terminal_logs_to_stderr_once_and_names_the_agent(lab):
    """No HA_LOGFILE, stderr a terminal: log lines on stderr, each exit reason once,
    and no "berofos(None)" when OCF_RESOURCE_INSTANCE is not set."""
    import pty

    env = dict(lab.node1.env)
    for name in ("HA_LOGFILE", "OCF_RESOURCE_INSTANCE"):
        env.pop(name)
    controller, terminal = pty.openpty()
    try:
        process = subprocess.run([str(lab.node1.program), "promote"], env=env,
                                 stdout=subprocess.PIPE, stderr=terminal, timeout=60)
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller)
    text = output.decode()
    assert process.returncode == OCFStatus.NOT_RUNNING
    assert text.count("promote of an instance that is not started") == 1
    assert "ocf-exit-reason:promote of an instance that is not started" in text
    assert "None" not in text
    lab.node1.env.pop("HA_LOGFILE")
    started = subprocess.run([str(lab.node1.program), "start"], env=lab.node1.env,
                             capture_output=True, text=True)
    assert started.returncode == 0 and "INFO" not in started.stderr  # not a terminal: quiet


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the agent as nobody")
def test_run_by_hand_as_a_user_is_err_perm_with_a_reason(lab, installed_tree, tmp_path):
    import shutil
    import tempfile

    public = Path(tempfile.mkdtemp(prefix="berofos-user-", dir="/tmp"))  # nobody can reach it
    try:
        public.chmod(0o755)
        conf = public / "bnfos.conf"
        shutil.copy(lab.conf, conf)
        conf.chmod(0o644)
        run_dir = public / "run"
        run_dir.mkdir(mode=0o755)  # root's: nobody may write there
        agent = Agent(public, conf, "node1", program=installed_tree)
        agent.env.update(HA_RSCTMP=str(run_dir), HA_LOGFILE="/dev/null")
        run = agent.run("start", user="65534")
        assert run.rc == OCFStatus.ERR_PERM, run
        assert run.reason.startswith("start needs root: ") and str(run_dir) in run.reason
    finally:
        shutil.rmtree(public, ignore_errors=True)


def test_validate_all_warns_about_parameters_it_does_not_know(lab):
    run = lab.node1.run("validate-all", OCF_RESKEY_portb="node1", OCF_RESKEY_htp_timeout="5",
                        OCF_RESKEY_CRM_meta_clone="0")
    assert run.rc == OCFStatus.SUCCESS
    log = lab.node1.log()
    assert "OCF_RESKEY_portb is not a parameter of berofos (port_b?)" in log
    assert "OCF_RESKEY_htp_timeout is not a parameter of berofos (http_timeout?)" in log
    assert "CRM_meta" not in log


def test_without_ocf_py_start_fails_and_stop_works(lab, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    start = lab.node1.run("start", OCF_FUNCTIONS_DIR=empty)
    assert start.rc == OCFStatus.ERR_INSTALLED and "ocf.py not found" in start.reason
    lab.node1.run("start")
    stop = lab.node1.run("stop", OCF_FUNCTIONS_DIR=empty)
    assert stop.rc == OCFStatus.SUCCESS and lab.node1.role() is None


def test_stop_survives_a_log_file_it_cannot_open(lab):
    lab.node1.run("start")
    run = lab.node1.run("stop", HA_LOGFILE="/nonexistent/dir/pacemaker.log")
    assert run.rc == OCFStatus.SUCCESS and lab.node1.role() is None
    assert "Traceback" not in run.stderr


def test_stop_removes_a_marker_left_half_written(lab):
    lab.node1.run("start")
    leftover = lab.node1.marker.parent / ("." + lab.node1.marker.name + ".k2x9_a")
    leftover.write_text("promo")
    assert lab.node1.run("stop").rc == 0
    assert not leftover.exists() and lab.node1.role() is None


def test_non_ascii_login_is_refused_without_echo(emulator_process, tmp_path):
    emulator = emulator_process()
    conf = emulator.write_conf(tmp_path / "bnfos.conf", password="pw\u20acx")
    run = Agent(tmp_path, conf, "node1").run("start")
    assert run.rc == OCFStatus.ERR_ARGS and "ASCII" in run.reason
    assert "\u20ac" not in run.stderr and "pw" not in run.reason


def test_degraded_is_not_a_failure_in_the_log(lab):
    lab.emulator.control.power("fos1", "off")
    lab.node1.run("start")
    lab.node1.run("monitor")
    lines = [line for line in lab.node1.log().splitlines() if "fos1 (127.0.0.1" in line]
    assert lines and all("WARNING" in line for line in lines)


def test_the_real_crm_attribute_takes_every_call(lab, tmp_path):
    """The fake records calls; this runs Pacemaker's own crm_attribute on a CIB file,
    so that an argument it would parse differently (a bare -INFINITY) shows."""
    cib = tmp_path / "cib.xml"
    cib.write_text(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True,
                                  check=True).stdout)
    env = dict(os.environ, CIB_file=str(cib))
    for section, xml in (("nodes", '<node id="1" uname="node1"/>'),
                         ("status", '<node_state id="1" uname="node1"/>')):
        subprocess.run(["cibadmin", "--create", "-o", section, "--xml-text", xml], env=env,
                       check=True, capture_output=True)

    def score():
        result = subprocess.run(["crm_attribute", "--promotion=isdn", "--node", "node1",
                                 "--lifetime", "reboot", "--query", "--quiet"], env=env,
                                capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None

    real = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CIB_file": str(cib)}
    assert lab.node1.run("start", **real).rc == 0 and score() == "110"
    lab.emulator.control.power("fos2", "off")
    assert lab.node1.run("monitor", **real).rc == OCFStatus.DEGRADED
    assert score() == "110"  # kept: one failed read
    lab.node1.backdate_failure(CONFIRM_SECONDS)
    assert lab.node1.run("monitor", **real).rc == OCFStatus.DEGRADED
    assert score() == "-INFINITY"
    assert lab.node1.run("stop", **real).rc == 0 and score() is None
    assert "could not" not in lab.node1.log()


def test_stop_succeeds_even_when_something_breaks(tmp_path):
    """In-process, with a command runner that blows up: a failed stop gets a node fenced."""
    import logging

    from berofos_ocf.agent.actions import BerofosAgent
    from berofos_ocf.agent.environment import AgentEnvironment
    from berofos_ocf.agent.ocflog import AgentLog

    def broken_runner(argv, timeout):
        raise RuntimeError("boom")

    reasons: list[str] = []
    environ = {"OCF_RESOURCE_INSTANCE": "isdn", "HA_RSCTMP": str(tmp_path),
               "OCF_RESKEY_CRM_meta_on_node": "node1",
               "OCF_RESKEY_CRM_meta_promoted_max": "1"}
    agent = BerofosAgent(AgentEnvironment(environ, ["berofos", "stop"]),
                         AgentLog(logging.getLogger("test.broken"), reasons.append),
                         runner=broken_runner)
    assert agent.run() == OCFStatus.SUCCESS
    assert reasons == ["internal error in stop: RuntimeError: boom"]


# -- a promote killed half-way ------------------------------------------------------------------

def test_sigterm_during_promote_withdraws_the_score_and_names_what_moved(lab):
    lab.node2.run("start")
    lab.emulator.control.fault("fos2", "hang", scope="write")
    env = dict(lab.node2.env, OCF_RESKEY_CRM_meta_timeout="60000")
    process = subprocess.Popen([str(lab.node2.program), "promote"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not lab.emulator.relay_log() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # fos1 confirmed and logged; fos2 hangs on its write
    process.terminate()
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == OCFStatus.ERR_GENERIC
    reasons = [line for line in stderr.splitlines() if line.startswith("ocf-exit-reason:")]
    assert reasons[-1].startswith("ocf-exit-reason:promote stopped by SIGTERM")
    assert "moved: fos1 (127.0.0.1:" in reasons[-1] and "A--B -> A--D" in reasons[-1]
    assert "fos2" not in reasons[-1]
    assert "fos1 (127.0.0.1" in lab.node2.log() and "relays A--B -> A--D" in lab.node2.log()
    assert lab.node2.last_score() == "-INFINITY"
    assert lab.node2.role() == "unpromoted"


# -- the run directory: no link followed, no unsafe directory used ------------------------------

def test_run_directory_writable_by_everyone_is_refused(lab):
    run_dir = lab.node1.marker.parent
    run_dir.chmod(0o777)
    run = lab.node1.run("start")
    assert run.rc == OCFStatus.ERR_PERM and "writable by everyone" in run.reason
    run_dir.chmod(0o1777)  # the sticky bit makes it safe (as /tmp)
    assert lab.node1.run("start").rc == OCFStatus.SUCCESS
    assert lab.node1.role() == "unpromoted"


@pytest.mark.parametrize("planted", ["berofos-isdn.role", "berofos-isdn.state"])
def test_links_planted_in_the_run_directory_are_never_followed(lab, tmp_path, planted):
    precious = tmp_path / "shadow"
    precious.write_text("root:secret\n")
    precious.chmod(0o600)
    run_dir = lab.node1.marker.parent
    run_dir.chmod(0o1777)
    (run_dir / planted).symlink_to(precious)
    assert lab.node1.run("start").rc == OCFStatus.SUCCESS
    assert lab.node1.run("promote").rc == OCFStatus.SUCCESS
    assert lab.node1.run("stop").rc == OCFStatus.SUCCESS
    assert precious.read_text() == "root:secret\n"
    assert not (run_dir / planted).is_symlink()


# -- the split guard: two promoted halves do not play ping-pong ------------------------------

TOGETHER, ALONE1, ALONE2 = "node1 node2", "node1", "node2"  # crm_node -p of each half


@pytest.fixture
def split_lab(lab):
    """The lab in a two-node cluster with two_node, no fencing and no quorum device."""
    lab.node1.in_two_node_cluster_without_fencing()
    lab.node2.in_two_node_cluster_without_fencing()
    return lab


def node2_promoted_by_the_other_half(lab) -> None:
    """node1 held the lines with node2 in sight; the link fails; node2, alone, is promoted."""
    lab.node1.run("start", FAKE_PARTITION=TOGETHER)
    lab.node2.run("start", FAKE_PARTITION=TOGETHER)
    assert lab.node1.run("promote", FAKE_PARTITION=TOGETHER).rc == 0
    assert lab.node1.state()["promoted_with_peer"] is True
    assert lab.node2.run("promote", FAKE_PARTITION=ALONE2).rc == 0
    assert relays(lab.emulator) == [0, 0]


def node1_recovered_after_yielding(lab) -> None:
    """node1's monitor yields; Pacemaker recovers it in place: demote, stop, start."""
    assert lab.node1.run("monitor", FAKE_PARTITION=ALONE1).rc == OCFStatus.FAILED_PROMOTED
    for action in ("demote", "stop", "start"):
        assert lab.node1.run(action, FAKE_PARTITION=ALONE1).rc == 0


def test_split_guard_the_holder_yields_to_a_promote_from_out_of_sight(split_lab):
    lab = split_lab
    node2_promoted_by_the_other_half(lab)
    run = lab.node1.run("monitor", FAKE_PARTITION=ALONE1)
    assert run.rc == OCFStatus.FAILED_PROMOTED
    assert "not taking them back" in lab.node1.log()
    assert lab.node1.last_score() == "-INFINITY" and lab.node1.state()["yielded_to"] == "node2"
    for action in ("demote", "stop", "start"):  # nothing can promote node1 again
        assert lab.node1.run(action, FAKE_PARTITION=ALONE1).rc == 0
    assert lab.node1.last_score() == "-INFINITY"
    run = lab.node1.run("monitor", interval=11000, FAKE_PARTITION=ALONE1)
    assert run.rc == OCFStatus.DEGRADED and "lines left to node2" in run.reason
    assert lab.node2.run("monitor", FAKE_PARTITION=ALONE2).rc == OCFStatus.RUNNING_PROMOTED
    switches = len(lab.emulator.relay_log())
    # the link is back: node1 sees node2 again and scores as usual, nothing moves
    assert lab.node1.run("monitor", interval=11000, FAKE_PARTITION=TOGETHER).rc == 0
    assert lab.node1.last_score() == "100" and lab.node1.state()["yielded_to"] is None
    assert len(lab.emulator.relay_log()) == switches


def test_split_guard_yield_survives_the_monitor_being_cancelled(split_lab):
    """Pacemaker acts on the withheld score at once and SIGKILLs the monitor that set
    it (a cancel in flight): the yield must already be on disk, or the unpromoted
    monitor after the demote scores 100 and node1 takes the lines back."""
    lab = split_lab
    node2_promoted_by_the_other_half(lab)
    run = lab.node1.run("monitor", FAKE_PARTITION=ALONE1, FAKE_CRM_KILL_ON="-INFINITY")
    assert run.rc == -9 and lab.node1.last_score() == "-INFINITY"
    assert lab.node1.state()["yielded_to"] == "node2"
    assert lab.node1.run("demote", FAKE_PARTITION=ALONE1).rc == 0
    assert lab.node1.run("monitor", interval=11000, FAKE_PARTITION=ALONE1).rc == \
        OCFStatus.DEGRADED
    assert lab.node1.last_score() == "-INFINITY"


@pytest.mark.parametrize("safety", ["fencing", "arbiter"])
def test_split_guard_sleeps_where_the_cluster_cannot_split(split_lab, safety):
    """With fencing or a quorum device the losing half is stopped or fenced: a yield
    could only be wrong (lines moved by hand while the peer is down)."""
    lab = split_lab
    for node in (lab.node1, lab.node2):
        if safety == "fencing":
            node.env["FAKE_STONITH"] = "true"
        else:
            cmap = Path(node.env["FAKE_CMAP"])
            cmap.write_text(cmap.read_text() + "quorum.device.model (str) = net\n")
    node2_promoted_by_the_other_half(lab)
    assert lab.node1.state()["split_guard"] is False
    assert lab.node1.run("monitor", FAKE_PARTITION=ALONE1).rc == OCFStatus.FAILED_PROMOTED
    assert lab.node1.state()["yielded_to"] is None and lab.node1.last_score() == "100"


def test_split_guard_a_probe_ends_the_yield(split_lab):
    lab = split_lab
    node2_promoted_by_the_other_half(lab)
    node1_recovered_after_yielding(lab)
    assert lab.node1.state()["yielded_to"] == "node2"
    assert lab.node1.last_score() == "-INFINITY"
    # 'pcs resource cleanup': the operator knows node2 is down, Pacemaker probes
    assert lab.node1.probe(FAKE_PARTITION=ALONE1).rc == OCFStatus.SUCCESS
    assert lab.node1.state()["yielded_to"] is None and lab.node1.last_score() == "100"
    assert "a probe (cleanup) asked for a fresh look" in lab.node1.log()


def test_split_guard_an_unreadable_device_does_not_end_the_yield(split_lab):
    lab = split_lab
    node2_promoted_by_the_other_half(lab)
    node1_recovered_after_yielding(lab)
    for device in ("fos1", "fos2"):
        lab.emulator.control.power(device, "off")
    lab.node1.run("monitor", interval=11000, FAKE_PARTITION=ALONE1)
    assert lab.node1.state()["yielded_to"] == "node2"
    assert lab.node1.last_score() == "-INFINITY"


def test_split_guard_the_node_that_took_over_repairs(split_lab):
    """node2 was promoted after losing sight of node1 (node1 died).  The device reboots
    with a power-on mode someone set back to node1: node2 must take the lines back,
    not yield to a dead node."""
    lab = split_lab
    lab.node2.run("start", FAKE_PARTITION=ALONE2)
    assert lab.node2.run("promote", FAKE_PARTITION=ALONE2).rc == 0
    assert lab.node2.state()["promoted_with_peer"] is False
    for device in ("fos1", "fos2"):
        lab.emulator.control.set_values(device, mode=1, modedef=1)
    assert lab.node2.run("monitor", FAKE_PARTITION=ALONE2).rc == OCFStatus.FAILED_PROMOTED
    assert lab.node2.state()["yielded_to"] is None and lab.node2.last_score() == "100"
    assert lab.node2.run("promote", FAKE_PARTITION=ALONE2).rc == 0
    assert relays(lab.emulator) == [0, 0]


def test_split_guard_without_the_partition_falls_back_to_pacemaker(split_lab):
    lab = split_lab
    lab.node1.run("start", FAKE_PARTITION=TOGETHER)
    lab.node1.run("promote", FAKE_PARTITION=TOGETHER)
    lab.node2.run("start")
    lab.node2.run("promote")
    assert lab.node1.run("monitor").rc == OCFStatus.FAILED_PROMOTED  # crm_node -p fails
    assert lab.node1.state()["yielded_to"] is None  # migration-threshold bounds it instead


def test_promoted_with_the_peer_is_learnt_by_later_monitors(split_lab):
    lab = split_lab
    lab.node2.run("start", FAKE_PARTITION=ALONE2)
    lab.node2.run("promote", FAKE_PARTITION=ALONE2)
    assert lab.node2.state()["promoted_with_peer"] is False
    lab.node2.run("monitor", FAKE_PARTITION=TOGETHER)
    assert lab.node2.state()["promoted_with_peer"] is True


def test_start_warns_about_two_nodes_without_fencing_or_arbiter(lab, tmp_path):
    cmap = tmp_path / "cmap"
    cmap.write_text("nodelist.node.0.name (str) = node1\nnodelist.node.1.name (str) = node2\n"
                    "quorum.two_node (u8) = 1\n")
    assert lab.node1.run("start", FAKE_CMAP=cmap).rc == 0  # stonith-enabled: true
    assert "no fencing and no qdevice" not in lab.node1.log()
    assert lab.node1.state()["split_guard"] is False
    assert lab.node1.run("stop").rc == 0
    assert lab.node1.run("start", FAKE_CMAP=cmap, FAKE_STONITH="false").rc == 0
    warnings = [line for line in lab.node1.log().splitlines() if "no fencing and no qdevice"
                in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]
    assert lab.node1.state()["split_guard"] is True  # the split guard is armed
    cmap.write_text(cmap.read_text() + "quorum.device.model (str) = net\n")
    assert lab.node1.run("validate-all", OCF_CHECK_LEVEL=10, FAKE_CMAP=cmap,
                         FAKE_STONITH="false").rc == 0
    assert len([line for line in lab.node1.log().splitlines()
                if "no fencing and no qdevice" in line]) == 1


# -- what people read in crm_mon -A ------------------------------------------------------------

def test_node_attributes_say_where_the_lines_are_and_change_only_when_they_change(lab):
    node1, node2 = lab.node1, lab.node2
    node1.run("start")
    node2.run("start")
    assert node1.attributes() == {"isdn-lines": "here", "isdn-health": "ok"}
    assert node2.attributes() == {"isdn-lines": "node1", "isdn-health": "ok"}
    calls = len(node1.attribute_calls())
    for _ in range(3):
        node1.run("monitor", interval=11000)
    assert len(node1.attribute_calls()) == calls  # no churn
    assert node2.run("promote").rc == 0
    node1.run("monitor", interval=11000)
    node2.run("monitor")
    assert node1.attributes()["isdn-lines"] == "node2"
    assert node2.attributes()["isdn-lines"] == "here"
    lab.emulator.control.set_values("fos2", mode=1)
    node2.run("monitor")
    assert node2.attributes()["isdn-lines"] == "split"
    assert node2.attributes()["isdn-health"].startswith("fos2 (127.0.0.1:")
    lab.emulator.control.power("fos1", "off")
    node1.run("monitor", interval=11000)
    assert node1.attributes()["isdn-lines"] == "unknown"
    assert node1.attributes()["isdn-health"].startswith("fos1 (127.0.0.1:")
    assert node1.run("stop").rc == 0
    assert node1.attributes() == {}


def test_node_attributes_are_bounded_and_printable(lab, tmp_path):
    """A device that answers a hostile reason phrase (20 kB, CR, an escape, a forged log
    line) cannot push it into crm_mon -A."""
    from .test_client_hostile import RawServer

    reason = ("x" * 20_000 + "\r\x1b[2J forged: fos1 relays A--D -> A--B").encode()
    with RawServer(lambda conn: conn.sendall(b"HTTP/1.0 500 " + reason + b"\r\n"
                                             b"Content-Length: 0\r\n\r\n")) as server:
        conf = tmp_path / "hostile.conf"
        conf.write_text(f"[fos1]\nhost = 127.0.0.1:{server.port}\n")
        conf.chmod(0o600)
        agent = Agent(tmp_path, conf, "node1")
        agent.run("start")
        agent.run("monitor", interval=11000)
    health = agent.attributes()["isdn-health"]
    assert health.isprintable() and "\x1b" not in health and "\r" not in health
    assert len(health) <= 80 + len("... (NNNNN characters)")


def test_no_node_attributes_outside_a_promotable_clone(lab):
    env = {"OCF_RESKEY_CRM_meta_promoted_max": None, "OCF_RESKEY_CRM_meta_master_max": None}
    lab.node1.run("start", **env)
    lab.node1.run("monitor", **env)
    assert lab.node1.attribute_calls() == []


def test_reload_agent_checks_the_new_parameters_and_restarts_nothing(lab):
    lab.node1.run("start")
    assert lab.node1.run("promote").rc == 0
    run = lab.node1.run("reload-agent", OCF_RESKEY_http_timeout=7)
    assert run.rc == OCFStatus.SUCCESS and "reloaded: http_timeout=7" in lab.node1.log()
    assert lab.node1.role() == "promoted"
    bad = lab.node1.run("reload-agent", OCF_RESKEY_http_timeout="soon")
    assert bad.rc == OCFStatus.ERR_CONFIGURED
    assert lab.emulator.relay_log() == []


def test_run_files_are_readable_by_the_alert_agent_whatever_the_umask(lab):
    """Pacemaker's executor runs agents with umask 027; the alert agent runs as hacluster."""
    env = dict(lab.node1.env)
    result = subprocess.run(["sh", "-c", f"umask 077; exec {lab.node1.program} start"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for path in (lab.node1.marker, lab.node1.state_file):
        assert path.stat().st_mode & 0o777 == 0o644, path


@pytest.mark.parametrize("planted", ["link", "foreign"])
def test_a_marker_the_agent_never_wrote_is_not_a_started_instance(lab, tmp_path, planted):
    """In a run directory others may write to (sticky), a planted marker saying
    'promoted' must not make a probe report a promoted instance here."""
    run_dir = lab.node1.marker.parent
    run_dir.chmod(0o1777)
    if planted == "link":
        target = tmp_path / "promoted.txt"
        target.write_text("promoted\n")
        lab.node1.marker.symlink_to(target)
    else:
        lab.node1.marker.write_text("promoted\n")
        os.chown(lab.node1.marker, 65534, 65534)
    assert lab.node1.probe().rc == OCFStatus.NOT_RUNNING
    assert lab.emulator.relay_log() == []
