"""PID 1 of one test host: a cluster node (corosync, qdevice, pacemaker) or the arbiter (qnetd).

Started by :mod:`tests.cluster` as
``ip netns exec NS unshare -m -u -i -p -f --mount-proc --propagation private
/usr/bin/python3 cluster_init.py ROLE NAME DIR [COROSYNC_CONF]`` with ROLE
``node`` or ``arbiter``.  It sets the host name, mounts what must not be shared
between hosts on one machine (libqb's rings in /dev/shm, the agents' /run, the
certificate databases under /etc/corosync), binds the host's own directories
over Pacemaker's and Corosync's, starts the daemons with a clean environment,
then reaps children until it is killed: SIGKILL of this process is a hard
failure of the whole host.

A node runs ``corosync -f``, then ``corosync-qdevice -f`` when its
configuration has a quorum device, then ``pacemakerd``.  The arbiter runs
``corosync-qnetd -f`` (TLS on, client certificates required, as packaged).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

NODE_BINDS = {"lib-pacemaker": "/var/lib/pacemaker", "lib-corosync": "/var/lib/corosync",
              "log-pacemaker": "/var/log/pacemaker", "log-corosync": "/var/log/corosync",
              "etc-corosync": "/etc/corosync"}
ARBITER_BINDS = {"etc-corosync": "/etc/corosync"}
# UTC: log timestamps are read back by the tests and the bench.
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "TZ": "UTC",
             "PCMK_logfile": "/var/log/pacemaker/pacemaker.log",
             # daemons to log at debug level (the bench's diagnosis), default none
             "PCMK_debug": os.environ.get("BEROFOS_TEST_PCMK_DEBUG", "no"),
             "HA_LOGFILE": "/var/log/pacemaker/pacemaker.log"}


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def private_mounts(directory: str, binds: dict[str, str]) -> None:
    mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run")
    mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm")
    for name, target in binds.items():
        mount("--bind", os.path.join(directory, name), target)
    for path in ("/run/resource-agents", "/run/crm", "/run/corosync-qdevice",
                 "/run/corosync-qnetd"):
        os.makedirs(path, exist_ok=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)


def has_quorum_device(corosync_conf: str) -> bool:
    with open(corosync_conf, encoding="utf-8") as handle:
        return any(line.strip().startswith("device {") for line in handle)


def wait_for_corosync(limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if subprocess.run(["corosync-cmapctl", "-g", "totem.cluster_name"], env=CLEAN_ENV,
                          capture_output=True).returncode == 0:
            return
        time.sleep(0.1)


def start_node(corosync_conf: str, output) -> list[subprocess.Popen]:
    corosync = subprocess.Popen(["corosync", "-f", "-c", corosync_conf], env=CLEAN_ENV,
                                stdout=output, stderr=output)
    time.sleep(0.3)  # pacemakerd and qdevice retry, but a running corosync saves a round
    daemons = [corosync]
    if has_quorum_device(corosync_conf):
        wait_for_corosync()  # qdevice does not retry: it exits if corosync is not up yet
        daemons.append(subprocess.Popen(["corosync-qdevice", "-f"], env=CLEAN_ENV,
                                        stdout=output, stderr=output))
    daemons.append(subprocess.Popen(["pacemakerd"], env=CLEAN_ENV, stdout=output,
                                    stderr=output))
    return daemons


def start_arbiter(output) -> list[subprocess.Popen]:
    return [subprocess.Popen(["corosync-qnetd", "-f"], env=CLEAN_ENV, stdout=output,
                             stderr=output)]


def main() -> int:
    role, name, directory = sys.argv[1:4]
    socket.sethostname(name)
    private_mounts(directory, NODE_BINDS if role == "node" else ARBITER_BINDS)
    output = open(os.path.join(directory, "init.log"), "a")
    daemons = start_node(sys.argv[4], output) if role == "node" else start_arbiter(output)
    print(f"{name}: " + ", ".join(f"{d.args[0]} {d.pid}" for d in daemons), file=output,
          flush=True)
    pids = {d.pid for d in daemons}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:  # PID 1 reaps every orphan of the host
        try:
            pid, status = os.wait()
        except ChildProcessError:
            time.sleep(0.5)
            continue
        if pid in pids:
            print(f"{name}: pid {pid} exited with {status}", file=output, flush=True)


if __name__ == "__main__":
    sys.exit(main())
