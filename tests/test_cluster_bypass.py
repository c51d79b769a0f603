"""``berofos-bypass`` in a real one-node Pacemaker 2.1 / Corosync 3 cluster: a Wazo before a PBX.

One cluster for the whole module (``tests/cluster.py`` with ``bypass=True``):
a single node in network namespaces, the ``berofos-bypass`` primitive with a
10 s watchdog (monitor every 3 s) ordered after an ``asterisk`` stand-in
(``ocf:heartbeat:Dummy``) as the README configures it, and the emulated
berofos on the bridge, serving GBL4 there for the kicker.  The scenarios run
in file order on that cluster, each starting from the Wazo in line; the last
one kills the node.  Assertions look at the emulator (relays, watchdog, the
relay log with its causes) and at the cluster's own view.
"""

from __future__ import annotations

import time

import pytest

from .cluster import (
    BYPASS_RESOURCE,
    BYPASS_WATCHDOG,
    Cluster,
    cluster_support,
    install_agent,
    uninstall_agent,
    wait_relay_change,
)

pytestmark = pytest.mark.cluster

A_D, A_B = 0, 1
IN_LINE = (A_B, 1)  # relays A--B + C--D, watchdog running
ON_PBX = (A_D, 0)   # relays A--D, watchdog off
NODE = "node1"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = cluster_support()
    if reason:
        pytest.skip(f"no test clusters on this machine: {reason}")
    made = Cluster(1, tmp_path_factory.mktemp("bypass") / "cluster", bypass=True)
    try:
        install_agent()
        made.start()
        yield made
    finally:
        made.stop()
        uninstall_agent()


@pytest.fixture
def in_line(lab):
    """The Wazo in line, the kicker running, no failure on record: each scenario's start."""
    lab.wait_running(BYPASS_RESOURCE, 90)
    deadline = time.monotonic() + 30
    while lab.device_state() != IN_LINE and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab.device_state() == IN_LINE
    assert lab.kicker() is not None
    return lab


def changes(lab: Cluster, since: int = 0) -> list[tuple[int, int, str]]:
    return [(e["old"], e["new"], e["cause"]) for e in lab.relay_log()[since:]]


def wait_change(lab: Cluster, since: int, seconds: float) -> dict:
    """The first relay change after entry ``since`` of the relay log."""
    change = wait_relay_change(lab.control, since, seconds)
    assert change is not None, f"no relay change within {seconds} s: {changes(lab)}"
    return change


def operations(lab: Cluster, since: int) -> list[str]:
    """``stop isdn-bypass``-like entries of the node's log after line ``since``, in order."""
    lines = (lab.dir / NODE / "log-pacemaker" / "pacemaker.log").read_text().splitlines()
    found = []
    for line in lines[since:]:
        if "Result of " in line and " operation for " in line and ": ok" in line:
            operation, resource = line.split("Result of ", 1)[1].split(" operation for ")
            found.append(f"{operation} {resource.split()[0]}")
    return found


def log_length(lab: Cluster) -> int:
    path = lab.dir / NODE / "log-pacemaker" / "pacemaker.log"
    return len(path.read_text().splitlines())


def test_start_puts_the_wazo_in_line_after_asterisk(in_line):
    lab = in_line
    assert changes(lab) == [(A_D, A_B, "http")]
    assert lab.view().running("asterisk") == [NODE]
    settings = lab.control.device("fos1")["settings"]
    assert (settings["scenario"], settings["modedef"], settings["wdogitime"]) == (
        1, A_B, BYPASS_WATCHDOG)
    started = [entry for entry in operations(lab, 0) if entry.startswith("start ")]
    assert started == ["start asterisk", f"start {BYPASS_RESOURCE}"]


def test_maintenance_mode_for_twice_the_interval_keeps_the_wazo_in_line(in_line):
    lab = in_line
    seen = len(lab.relay_log())
    lab.crm(NODE, "crm_attribute", "--type", "crm_config", "--name", "maintenance-mode",
            "--update", "true")
    try:
        time.sleep(2 * BYPASS_WATCHDOG)
        assert changes(lab, seen) == [] and lab.device_state() == IN_LINE
        assert lab.control.device("fos1")["settings"]["wdogrtime"] >= BYPASS_WATCHDOG - 3
    finally:
        lab.crm(NODE, "crm_attribute", "--type", "crm_config", "--name", "maintenance-mode",
                "--delete")
    time.sleep(4)  # a monitor after maintenance: nothing to repair
    assert changes(lab, seen) == [] and lab.view().failures() == []


def test_killing_only_the_kicker_is_detected_and_repaired(in_line):
    lab = in_line
    seen, old = len(lab.relay_log()), lab.kicker()["pid"]
    lab.on(NODE, ["kill", "-KILL", str(old)], check=True)
    killed = time.monotonic()
    failure = lab.wait_for(lambda view: view.failures(), 30, "the monitor to see it")
    assert failure[0]["op_key"].startswith(f"{BYPASS_RESOURCE}_monitor")
    assert "kicker" in failure[0].get("exitreason", "")
    lab.wait_for(lambda view: (lab.kicker() or {}).get("pid", old) != old
                 and view.running(BYPASS_RESOURCE) == [NODE], 30, "a new kicker")
    print(f"kicker replaced {time.monotonic() - killed:.1f} s after it was killed")
    # recovered by a restart (the lines to the PBX and back) before the watchdog fired
    assert changes(lab, seen) == [(A_B, A_D, "http"), (A_D, A_B, "http")]
    assert lab.device_state() == IN_LINE
    lab.crm(NODE, "crm_resource", "--cleanup", "--resource", BYPASS_RESOURCE)


def test_stopping_asterisk_hands_the_lines_to_the_pbx_first(in_line):
    lab = in_line
    seen, lines = len(lab.relay_log()), log_length(lab)
    commanded = time.time()
    lab.crm(NODE, "crm_resource", "--resource", "asterisk", "--meta", "--set-parameter",
            "target-role", "--parameter-value", "Stopped")
    moved = wait_change(lab, seen, 15)
    print(f"lines on the PBX {moved['time'] - commanded:.2f} s after the stop was asked")
    assert (moved["old"], moved["new"], moved["cause"]) == (A_B, A_D, "http")
    assert moved["time"] - commanded < 3.0
    lab.wait_for(lambda view: view.running("asterisk") == [], 30, "asterisk stopped")
    assert lab.device_state() == ON_PBX
    stopped = [entry for entry in operations(lab, lines) if entry.startswith("stop ")]
    assert stopped == [f"stop {BYPASS_RESOURCE}", "stop asterisk"]
    lab.crm(NODE, "crm_resource", "--resource", "asterisk", "--meta", "--delete-parameter",
            "target-role")
    lab.wait_running(BYPASS_RESOURCE, 30)


def test_the_node_killed_hands_the_lines_to_the_pbx_within_the_interval(in_line):
    lab = in_line
    seen = len(lab.relay_log())
    killed_at = lab.kill(NODE)
    moved = wait_change(lab, seen, BYPASS_WATCHDOG + 10)
    elapsed = moved["time"] - killed_at
    print(f"lines on the PBX {elapsed:.2f} s after the node was killed "
          f"(watchdog_timeout {BYPASS_WATCHDOG} s)")
    assert (moved["old"], moved["new"], moved["cause"]) == (A_B, A_D, "watchdog")
    assert elapsed <= BYPASS_WATCHDOG + 2
