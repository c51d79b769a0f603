"""``make demo-bypass``: one Wazo in front of a PBX, its only node killed, the berofos takes over.

A real one-node cluster (Corosync 3, Pacemaker 2.1) in network namespaces on
this machine, configured as the README's "One Wazo and one PBX" section says:
an Asterisk stand-in, then ``berofos-bypass`` (watchdog_timeout 10 s here), and
an emulated berofos on the bridge.  Start puts the Wazo in line; the node is
then killed (SIGKILL of its whole namespace: no stop runs, nobody is left to
switch anything) and the berofos's own watchdog hands the provider's lines to
the PBX.  Where namespaces are not permitted, the same story without a cluster:
the agent started by hand, its kicker killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from berofos_ocf.agent.bypass_table import kick_interval

from .cluster import (
    BYPASS_RESOURCE,
    Cluster,
    cluster_support,
    install_agent,
    uninstall_agent,
    wait_relay_change,
)

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
PROVIDER = "berofos-demo"
WATCHDOG = 10
WHERE = {0: "A--D: the provider straight on the PBX", 1: "A--B + C--D: the Wazo in line"}


def say(text: str = "") -> None:
    print(text, flush=True)


def show_relays(control, address: str) -> None:
    device = control.device("fos1")
    watchdog = {0: "off", 1: "running", 2: "fired"}[device["watchdog_state"]]
    say(f"  berofos fos1 ({address}): relays {WHERE[device['relay_mode']]}; "
        f"watchdog {watchdog}")


def show_relay_log(entries: list[dict]) -> None:
    say("\nrelay log of the emulated berofos:")
    for entry in entries:
        stamp = time.strftime("%H:%M:%S", time.localtime(entry["time"]))
        say(f"  {stamp}.{int(entry['time'] % 1 * 1000):03d} fos1 "
            f"{WHERE[entry['old']].split(':')[0]} -> {WHERE[entry['new']].split(':')[0]} "
            f"({entry['cause']})")


def the_end(moved: dict | None, killed_at: float, what: str) -> int:
    if moved is None:
        say(f"the lines did not move within {WATCHDOG + 10} s")
        return 1
    say(f"the lines reached the PBX {moved['time'] - killed_at:.2f} s after {what} "
        f"(watchdog_timeout {WATCHDOG} s)")
    return 0


def in_a_cluster(workdir: Path) -> int:
    lab = Cluster(1, workdir / "cluster", provider=PROVIDER, bypass=True,
                  watchdog_timeout=WATCHDOG)
    try:
        say("starting a 1-node cluster: the Wazo (node1) on ports B and C, the PBX on D, "
            "the emulated berofos on the bridge")
        lab.start()
        show_relays(lab.control, lab.device_address)
        lab.wait_running(BYPASS_RESOURCE, 120)
        say("\nAsterisk started, then the lines were put in line; the cluster:")
        result = lab.on("node1", ["crm_mon", "-1", "--exclude=summary"], timeout=10)
        for line in result.stdout.strip().splitlines():
            say(f"    {line}")
        time.sleep(2)
        show_relays(lab.control, lab.device_address)
        say(f"  the kicker (pid {lab.kicker()['pid']} on node1) kicks its watchdog every "
            f"{kick_interval(WATCHDOG):.2f} s")
        time.sleep(1)
        say("\nkilling node1 (SIGKILL of its namespace: Pacemaker, Asterisk, the kicker, "
            "everything)")
        seen = len(lab.relay_log())
        killed_at = lab.kill("node1")
        moved = wait_relay_change(lab.control, seen, WATCHDOG + 10)
        show_relays(lab.control, lab.device_address)
        show_relay_log(lab.relay_log())
        say("\ntearing the cluster down")
        lab.stop()
        return the_end(moved, killed_at, "the Wazo was killed")
    finally:
        lab.stop()


def without_a_cluster(workdir: Path) -> int:
    """The agent started by hand on the emulator; its kicker killed stands for the node."""
    from berofos_ocf.emulator.control import EmulatorControl

    ready = workdir / "ready.json"
    emulator = subprocess.Popen(
        [PYTHON, "-m", "berofos_ocf", "emulator", "--listen", "127.0.0.1:0", "--udp-port", "0",
         "--control", "127.0.0.1:0", "--ready-file", str(ready), "--set", "mode=0",
         "--set", "modedef=0"], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        while not ready.exists():
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        control, device = EmulatorControl(info["control"]), info["devices"][0]
        conf = workdir / "bnfos.conf"
        conf.write_text(f"[fos1]\nmac = {device['mac']}\nhost = {device['address']}\n")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf",
               "OCF_RESOURCE_INSTANCE": "isdn-bypass", "OCF_RESKEY_config": str(conf),
               "OCF_RESKEY_udp_port": str(info["udp_port"]),
               "OCF_RESKEY_watchdog_timeout": str(WATCHDOG), "HA_RSCTMP": str(workdir),
               "HA_LOGFILE": str(workdir / "agent.log")}
        agent = [str(ROOT / "agents" / "berofos-bypass")]
        show_relays(control, device["address"])
        say("\nstart:")
        subprocess.run(agent + ["start"], env=env, check=True)
        show_relays(control, device["address"])
        record = json.loads((workdir / "berofos-bypass-isdn-bypass.kicker").read_text())
        time.sleep(2)
        say(f"\nkilling the kicker (pid {record['pid']}), as if the node had died")
        seen = len(control.relay_log())
        killed_at = time.time()
        os.kill(record["pid"], signal.SIGKILL)
        moved = wait_relay_change(control, seen, WATCHDOG + 10)
        show_relays(control, device["address"])
        show_relay_log(control.relay_log())
        return the_end(moved, killed_at, "the kicker was killed")
    finally:
        emulator.terminate()
        emulator.wait()


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="berofos-demo-bypass-"))
    reason = cluster_support()
    try:
        if reason:
            say(f"a live cluster cannot run here ({reason}); the agent without one\n")
            return without_a_cluster(workdir)
        say(f"installing the agents as ocf:{PROVIDER}:berofos-bypass (make install)")
        install_agent(PROVIDER)
        try:
            return in_a_cluster(workdir)
        finally:
            uninstall_agent(PROVIDER)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
