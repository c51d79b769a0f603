"""PID 1 of one test cluster node: private /run and /dev/shm, its own state, corosync, pacemaker.

Started by :mod:`tests.cluster` as
``ip netns exec NS unshare -m -u -i -p -f --mount-proc --propagation private
/usr/bin/python3 cluster_init.py NODE DIR COROSYNC_CONF``.  It sets the host
name, mounts what must not be shared between nodes on one machine (libqb's
rings in /dev/shm, the agents' /run), binds the node's own directories over
Pacemaker's and Corosync's, starts ``corosync -f`` and ``pacemakerd`` with a
clean environment, then reaps children until it is killed: SIGKILL of this
process is a hard failure of the whole node.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

BINDS = {"lib-pacemaker": "/var/lib/pacemaker", "lib-corosync": "/var/lib/corosync",
         "log-pacemaker": "/var/log/pacemaker", "log-corosync": "/var/log/corosync"}
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
             "PCMK_logfile": "/var/log/pacemaker/pacemaker.log", "PCMK_debug": "no",
             "HA_LOGFILE": "/var/log/pacemaker/pacemaker.log"}


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def main() -> int:
    node, directory, corosync_conf = sys.argv[1:4]
    socket.sethostname(node)
    mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run")
    mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm")
    for name, target in BINDS.items():
        mount("--bind", os.path.join(directory, name), target)
    os.makedirs("/run/resource-agents", exist_ok=True)
    os.makedirs("/run/crm", exist_ok=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    output = open(os.path.join(directory, "init.log"), "a")
    corosync = subprocess.Popen(["corosync", "-f", "-c", corosync_conf], env=CLEAN_ENV,
                                stdout=output, stderr=output)
    time.sleep(0.3)  # pacemakerd retries, but a running corosync saves it a round
    pacemakerd = subprocess.Popen(["pacemakerd"], env=CLEAN_ENV, stdout=output, stderr=output)
    print(f"{node}: corosync {corosync.pid}, pacemakerd {pacemakerd.pid}", file=output,
          flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:  # PID 1 reaps every orphan of the node
        try:
            pid, status = os.wait()
        except ChildProcessError:
            time.sleep(0.5)
            continue
        if pid in (corosync.pid, pacemakerd.pid):
            print(f"{node}: pid {pid} exited with {status}", file=output, flush=True)


if __name__ == "__main__":
    sys.exit(main())
