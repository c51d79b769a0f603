"""The agent carrying the ISDN lines from one node to the other, on the emulator.

No cluster here: the actions are run by hand in the order Pacemaker would run
them, on two pretend nodes (``wazo-1`` on port B, ``wazo-2`` on port D) that
share one emulated berofos.  After each step the relay position is read from
the emulator.  ``make demo`` shows the same with a live Pacemaker cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
CODES = {0: "running (unpromoted)", 7: "not running", 8: "running, promoted", 9:
         "FAILED promoted", 190: "degraded", 191: "degraded, promoted", 1: "error"}


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from berofos_ocf.emulator.control import EmulatorControl
    from berofos_ocf.keys import RELAY_LABELS

    tmp = Path(tempfile.mkdtemp(prefix="berofos-demo-"))
    ready = tmp / "ready.json"
    emulator = subprocess.Popen(
        [PYTHON, "-m", "berofos_ocf", "emulator", "--listen", "127.0.0.1:0", "--no-udp",
         "--control", "127.0.0.1:0", "--ready-file", str(ready)],
        cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        while not ready.exists():
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        control = EmulatorControl(info["control"])
        device = info["devices"][0]
        conf = tmp / "bnfos.conf"
        conf.write_text(f"[fos1]\nmac = {device['mac']}\nhost = {device['address']}\n")
        print(f"emulated berofos fos1 at {device['address']}; wazo-1 on port B, wazo-2 on "
              "port D\n")

        def relays() -> str:
            mode = control.device("fos1")["relay_mode"]
            return f"relays {RELAY_LABELS[mode]} ({'wazo-1' if mode else 'wazo-2'} has the lines)"

        def agent(node: str, action: str, interval: str = "10000") -> None:
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf",
                   "OCF_RESOURCE_INSTANCE": "isdn", "OCF_RESKEY_config": str(conf),
                   "OCF_RESKEY_port_b": "wazo-1", "OCF_RESKEY_port_d": "wazo-2",
                   "OCF_RESKEY_CRM_meta_on_node": node, "OCF_RESKEY_CRM_meta_interval": interval,
                   "HA_RSCTMP": str(tmp / node), "HA_LOGFILE": str(tmp / f"{node}.log")}
            result = subprocess.run([str(ROOT / "agents" / "berofos"), action], env=env,
                                    capture_output=True, text=True)
            reasons = [line.split(":", 1)[1] for line in result.stderr.splitlines()
                       if line.startswith("ocf-exit-reason:")]
            outcome = CODES.get(result.returncode, "") if action == "monitor" else (
                "ok" if result.returncode == 0 else "failed")
            reason = f" - {reasons[-1]}" if reasons else ""
            print(f"  {node:7} {action:8} -> {result.returncode:3} {outcome}{reason}")

        steps = [
            ("start both instances", [("wazo-1", "start"), ("wazo-2", "start")]),
            ("promote wazo-2", [("wazo-2", "promote")]),
            ("monitor", [("wazo-1", "monitor"), ("wazo-2", "monitor")]),
            ("demote wazo-2, promote wazo-1", [("wazo-2", "demote"), ("wazo-1", "promote")]),
            ("monitor", [("wazo-1", "monitor")]),
        ]
        print(relays())
        for title, actions in steps:
            print(f"\n{title}:")
            for node, action in actions:
                agent(node, action)
            print(f"  {relays()}")
        print("\nsomeone runs 'berofos switch slave' behind the cluster's back:")
        switched = subprocess.run([PYTHON, "-m", "berofos_ocf", "-c", str(conf), "switch",
                                   "slave"], cwd=ROOT, capture_output=True, text=True)
        print(f"  {switched.stdout.strip()}")
        print(f"  {relays()}")
        agent("wazo-1", "monitor")
        print("\nPacemaker recovers the promoted instance: promote again:")
        agent("wazo-1", "promote")
        agent("wazo-1", "monitor")
        print(f"  {relays()}")
        print("\nrelay log of the emulator:")
        for entry in control.relay_log():
            stamp = time.strftime("%H:%M:%S", time.localtime(entry["time"]))
            print(f"  {stamp} fos1 {RELAY_LABELS[entry['old']]} -> "
                  f"{RELAY_LABELS[entry['new']]} ({entry['cause']})")
        print("\nagent log (wazo-1):")
        print("".join("  " + line for line in (tmp / "wazo-1.log").read_text().splitlines(True)))
    finally:
        emulator.terminate()
        emulator.wait()
        subprocess.run(["rm", "-rf", str(tmp)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
