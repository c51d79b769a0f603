"""``make demo``: the berofos agent in a live 2-node Pacemaker cluster, and a failover.

A real cluster (Corosync 3, Pacemaker 2.1) of two nodes in network namespaces on
this machine, configured as the README recommends: a corosync-qnetd arbiter on a
third host gives the pair its third vote (TLS, the ``berofos check --holder``
heuristic), with an emulated berofos on the bridge.  The promoted node is killed
(SIGKILL of its whole namespace); the survivor keeps quorum with the arbiter's
vote, is promoted and moves the relays.  Everything is torn down at the end.
Fencing is disabled in this demo cluster: the arbiter is what keeps a split from
giving both nodes a promoted instance.  Where namespaces are not permitted, the
same story is told without a cluster (``tests/demo_agent.py``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from .cluster import Cluster, cluster_support, install_agent, uninstall_agent

PROVIDER = "berofos-demo"
LABELS = {0: "A--D", 1: "A--B"}
PORT = {"node1": "B", "node2": "D"}


def say(text: str = "") -> None:
    print(text, flush=True)


def show_cluster(lab: Cluster, node: str) -> None:
    result = lab.on(node, ["crm_mon", "-1", "--exclude=summary"], timeout=10)
    for line in result.stdout.strip().splitlines():
        say(f"    {line}")


def show_relays(lab: Cluster) -> None:
    mode = lab.relays()
    holder = "node1" if mode == 1 else "node2"
    say(f"  berofos fos1 ({lab.device_address}): relays {LABELS[mode]}, the ISDN lines are "
        f"on {holder} (port {PORT[holder]})")


def main() -> int:
    reason = cluster_support()
    if reason:
        say(f"a live cluster cannot run here ({reason}); showing the agent without one\n")
        from .demo_agent import main as agent_demo

        return agent_demo()
    workdir = Path(tempfile.mkdtemp(prefix="berofos-demo-"))
    say(f"installing the agent as ocf:{PROVIDER}:berofos (make install)")
    install_agent(PROVIDER)
    lab = Cluster(2, workdir / "cluster", provider=PROVIDER, arbiter=True)
    try:
        say("starting a 2-node cluster: node1 wired to port B, node2 to port D, "
            "the emulated berofos on the bridge, a corosync-qnetd arbiter as the third vote")
        started = time.monotonic()
        lab.start()
        show_relays(lab)
        promoted = lab.wait_promoted(120)
        say(f"\n{promoted} promoted {time.monotonic() - started:.1f} s after start "
            "(it already had the lines: nothing to switch)")
        show_cluster(lab, promoted)
        show_relays(lab)
        survivor = "node2" if promoted == "node1" else "node1"
        time.sleep(3)
        say(f"\nkilling {promoted} (SIGKILL of its namespace: corosync, pacemaker, "
            "everything)")
        killed_at = lab.kill(promoted)
        log = []
        deadline = time.monotonic() + 60
        while not log and time.monotonic() < deadline:
            log = lab.relay_log()
            time.sleep(0.05)
        if not log:
            say("the relays did not move within 60 s")
            return 1
        moved = log[0]
        lab.wait_promoted(60, survivor, seen_from=survivor)
        say(f"\n{survivor} promoted; the cluster as {survivor} sees it:")
        show_cluster(lab, survivor)
        show_relays(lab)
        say("\nrelay log of the emulated berofos:")
        for entry in lab.relay_log():
            stamp = time.strftime("%H:%M:%S", time.localtime(entry["time"]))
            millis = int(entry["time"] % 1 * 1000)
            say(f"  {stamp}.{millis:03d} fos1 {LABELS[entry['old']]} -> "
                f"{LABELS[entry['new']]} ({entry['cause']})")
        agent_lines = [line for line in (lab.dir / survivor / "log-pacemaker" /
                                         "pacemaker.log").read_text().splitlines()
                       if line.startswith("berofos(") and "relays" in line]
        if agent_lines:
            say(f"\nthe agent's log on {survivor}:")
            for line in agent_lines:
                say(f"  {line}")
        say("\ntearing the cluster down")
        lab.stop()
        say(f"relays moved to {survivor} in {moved['time'] - killed_at:.2f} s after "
            f"{promoted} was killed")
        return 0
    finally:
        lab.stop()
        uninstall_agent(PROVIDER)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
