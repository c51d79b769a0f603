"""Real Pacemaker/Corosync clusters of 1, 2 or 3 nodes on one machine, for tests and the demo.

Each node runs in its own network, mount, UTS, IPC and PID namespaces (see
``cluster_init.py``), wired by a veth pair into a bridge in the root namespace.
The emulated berofos runs in the root namespace on the bridge's address, so
every node reaches it over its own link.  Addresses are in 10.200.N.0/24 and
exist only inside namespaces this module creates.

The cluster is configured the way the README tells users, with pcs on files:
``pcs cluster setup --corosync_conf`` (and, with ``arbiter=True``,
``pcs quorum device add model net algorithm=ffsplit`` with the
``berofos check --holder`` heuristic, and a ``corosync-qnetd`` arbiter in a
namespace of its own, TLS certificates made offline with the certutil tools
exactly as pcs makes them), and ``pcs -f`` on a CIB file pre-seeded on every
node (the promotable clone with the README's meta attributes, an ``asterisk``
stand-in colocated with the promoted instance and started after promote, the
quorum node kept off the clone).  **Fencing is disabled**: these nodes die by
SIGKILL of their namespace, and a single promoted instance rests on quorum
(the arbiter, or a third node) or, with ``two_node`` alone, on the agent's
split guard and Pacemaker's failure counting.

With ``bypass=True`` the cluster is the README's "one Wazo in front of a PBX":
one node (quorate alone: corosync's expected votes are 1), the
``berofos-bypass`` primitive started after an ``asterisk`` stand-in and kept
with it, and the emulator serving GBL4 on the bridge address as well (the
kicker unicasts its kicks there; the promotable shapes run it ``--no-udp``),
its device starting with the provider on the PBX (A--D).

Everything is torn down by PID and by name in :meth:`Cluster.stop`, which the
tests call from a ``finally`` (fixture teardown), failures included.
"""

from __future__ import annotations

__all__ = ["Cluster", "ClusterView", "cluster_support", "AGENT_PROVIDER", "install_agent",
           "installed_cli", "installed_alert_agent",
           "uninstall_agent", "wait_relay_change", "BYPASS_RESOURCE", "BYPASS_WATCHDOG",
           "BYPASS_KICKER_FILE"]

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
AGENT_PROVIDER = "berofos-test"
CLUSTER_NAME = "berofos-test"
_HACLUSTER = "hacluster"
# The README's meta attributes of the berofos primitive: two recoveries in
# place, then the node is banned until its failures expire.
RESOURCE_META = ("migration-threshold=2", "failure-timeout=10min", "priority=10")
# The README's bypass primitive: its meta attributes; the monitor at a third of
# the tests' short watchdog interval, so a dead kicker is replaced before it fires.
BYPASS_RESOURCE = "isdn-bypass"
BYPASS_META = ("migration-threshold=3", "failure-timeout=2min")
BYPASS_WATCHDOG = 10
BYPASS_KICKER_FILE = f"/run/resource-agents/berofos-bypass-{BYPASS_RESOURCE}.kicker"


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(argv, **kwargs)


def cluster_support() -> str | None:
    """None when this machine can run test clusters, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, mounts)"
    for tool in ("corosync", "pacemakerd", "crm_mon", "pcs", "ip", "unshare", "nsenter",
                 "corosync-qdevice", "corosync-qnetd", "certutil"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    name = f"bfprobe{os.getpid()}"
    try:
        _run(["ip", "netns", "add", name])
        _run(["ip", "netns", "exec", name, "unshare", "-m", "-u", "-i", "-p", "-f",
              "--mount-proc", "true"])
    except subprocess.CalledProcessError as err:
        return f"namespaces not permitted here: {err.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _install_variables(provider: str) -> list[str]:
    # A provider and package directory of their own: a real installation of
    # berofos-ocf on this machine is neither used nor overwritten.
    private = f"/usr/lib/{provider}-ocf"
    return [f"PROVIDER={provider}", f"PYTHONDIR={private}", f"BINDIR={private}/bin",
            f"MANDIR={private}/man", f"PYTHON={PYTHON}"]


def installed_cli(provider: str = AGENT_PROVIDER) -> str:
    """Where :func:`install_agent` puts the ``berofos`` command."""
    return f"/usr/lib/{provider}-ocf/bin/berofos"


def installed_alert_agent(provider: str = AGENT_PROVIDER) -> str:
    """Where :func:`install_agent` puts the alert agent (``ALERTDIR`` beside ``BINDIR``)."""
    return f"/usr/lib/{provider}-ocf/libexec/berofos-ocf/berofos-alert"


def install_agent(provider: str = AGENT_PROVIDER) -> Path:
    """``make install`` under ``ocf:PROVIDER:berofos``, as a user would install it."""
    _run(["make", "-s", "install"] + _install_variables(provider), cwd=ROOT)
    return Path("/usr/lib/ocf/resource.d") / provider / "berofos"


def uninstall_agent(provider: str = AGENT_PROVIDER) -> None:
    _run(["make", "-s", "uninstall"] + _install_variables(provider), cwd=ROOT, check=False)
    shutil.rmtree(f"/usr/lib/{provider}-ocf", ignore_errors=True)


def wait_relay_change(control, since: int, seconds: float) -> dict | None:
    """The first entry after ``since`` of an emulator's relay log, within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        log = control.relay_log()
        if len(log) > since:
            return log[since]
        time.sleep(0.02)
    return None


def _in_etc(etc: Path, argv: list[str]) -> None:
    """Run a tool that knows only /etc/corosync with ``etc`` bound over it (private mounts)."""
    _run(["unshare", "-m", "--propagation", "private", "sh", "-c",
          'mount --bind "$0" /etc/corosync && exec "$@"', str(etc), *argv])


class ClusterView:
    """What ``crm_mon --output-as=xml`` says, reduced to what the tests ask."""

    def __init__(self, xml: str) -> None:
        self.root = ET.fromstring(xml)

    def online(self) -> list[str]:
        return sorted(n.get("name") for n in self.root.iter("node")
                      if n.get("online") == "true" and n.get("id"))

    def instances(self, resource: str = "isdn") -> dict[str, str]:
        """Node → role of every active instance of the clone."""
        roles = {}
        for element in self.root.iter("resource"):
            if element.get("id") != resource or element.get("active") != "true":
                continue
            for node in element.iter("node"):
                roles[node.get("name")] = element.get("role")
        return roles

    def promoted(self) -> list[str]:
        return sorted(n for n, role in self.instances().items() if role == "Promoted")

    def running(self, resource: str) -> list[str]:
        return sorted(self.instances(resource))

    def node_attributes(self) -> dict[str, dict[str, str]]:
        """Node → its attributes (``crm_mon -A``; the view must come with them)."""
        found: dict[str, dict[str, str]] = {}
        for node in self.root.iter("node"):
            for attribute in node.iter("attribute"):
                found.setdefault(node.get("name"), {})[attribute.get("name")] = \
                    attribute.get("value")
        return found

    def failures(self) -> list[dict]:
        return [dict(f.attrib) for f in self.root.iter("failure")]

    def dc(self) -> str | None:
        """The node that coordinates the cluster (the designated controller)."""
        summary = self.root.find("summary/current_dc")
        return summary.get("name") if summary is not None and summary.get("present") == "true" \
            else None

    def quorate(self) -> bool:
        summary = self.root.find("summary/current_dc")
        return summary is not None and summary.get("with_quorum") == "true"


class Cluster:
    """N nodes (``node1`` on port B, ``node2`` on port D, ``node3`` a quorum node),
    and with ``arbiter`` a corosync-qnetd host that gives two nodes their third vote;
    or, with ``bypass``, one node: the Wazo in front of a PBX (``watchdog_timeout``)."""

    def __init__(self, size: int, workdir: Path, *, token_ms: int = 1000,
                 relay_mode: int = 1, modedef: int | None = None,
                 prefer: str | None = None, provider: str = AGENT_PROVIDER,
                 arbiter: bool = False, bypass: bool = False,
                 watchdog_timeout: int = BYPASS_WATCHDOG) -> None:
        if size not in ((1,) if bypass else (2, 3)):
            raise ValueError("1 node with bypass, else 2 or 3 nodes")
        if arbiter and size != 2:
            raise ValueError("the arbiter is for two nodes")
        self.bypass = bypass
        self.watchdog_timeout = watchdog_timeout
        self.size = size
        self.arbiter = arbiter
        self.dir = workdir
        self.token_ms = token_ms
        # bypass: the provider on the PBX (A--D) until the resource puts the Wazo in line
        self.relay_mode = 0 if bypass else relay_mode
        self.modedef = self.relay_mode if modedef is None else modedef
        self.prefer = prefer  # node with a role=Promoted location preference of 50
        self.provider = provider
        tag = f"{os.getpid() % 10000:04d}{random.randrange(100):02d}"
        self.subnet = f"10.200.{random.randrange(1, 250)}"
        self.bridge = f"brbf{tag}"
        self.nodes = [f"node{i}" for i in range(1, size + 1)]
        self.netns = {node: f"bf{tag}{node}" for node in self.nodes}
        self.veth = {node: f"vbf{tag}{node[-1]}" for node in self.nodes}
        self.address = {node: f"{self.subnet}.{i}" for i, node in enumerate(self.nodes, 1)}
        self.device_address = f"{self.subnet}.254"
        self.arbiter_address = f"{self.subnet}.253"
        self.arbiter_netns = f"bf{tag}arb"
        self.arbiter_veth = f"vbf{tag}a"
        self.arbiter_pid: int | None = None
        self._arbiter_launcher: subprocess.Popen | None = None
        self.init_pids: dict[str, int] = {}
        self._launchers: dict[str, subprocess.Popen] = {}
        self.emulator: subprocess.Popen | None = None
        self.control = None
        self.conf = self.dir / "bnfos.conf"

    # -- building ----------------------------------------------------------------------

    def start(self) -> Cluster:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self._network()
        self._emulator()
        self._corosync_conf()
        self._cib()
        if self.arbiter:
            self._certificates()
            self.start_arbiter()
        for node in self.nodes:
            self.start_node(node)
        return self

    def _network(self) -> None:
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        _run(["ip", "addr", "add", f"{self.device_address}/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        hosts = [(self.netns[n], self.veth[n], self.address[n]) for n in self.nodes]
        if self.arbiter:
            hosts.append((self.arbiter_netns, self.arbiter_veth, self.arbiter_address))
        for ns, veth, address in hosts:
            _run(["ip", "netns", "add", ns])
            _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                  "netns", ns])
            _run(["ip", "link", "set", veth, "master", self.bridge, "up"])
            inside = ["ip", "netns", "exec", ns]
            _run(inside + ["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
            _run(inside + ["ip", "link", "set", "eth0", "up"])
            _run(inside + ["ip", "link", "set", "lo", "up"])

    def _emulator(self) -> None:
        ready = self.dir / "emulator.json"
        self.relay_log_file = self.dir / "relays.log"
        # GBL4 on the bridge address for the kicker; the promotable agent needs none
        udp = ["--udp-port", "50123"] if self.bypass else ["--no-udp"]
        argv = [PYTHON, "-m", "berofos_ocf", "emulator", "--listen",
                f"{self.device_address}:80", *udp, "--control", "127.0.0.1:0",
                "--ready-file", str(ready), "--relay-log", str(self.relay_log_file),
                "--set", f"mode={self.relay_mode}", "--set", f"modedef={self.modedef}"]
        with open(self.dir / "emulator.err", "w") as errors:
            self.emulator = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                                             stderr=errors)
        deadline = time.monotonic() + 15
        while not ready.exists():
            if self.emulator.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("emulator did not start: "
                                   + (self.dir / "emulator.err").read_text())
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        sys.path.insert(0, str(ROOT))
        from berofos_ocf.emulator.control import EmulatorControl

        self.control = EmulatorControl(info["control"])
        self.conf.write_text(f"[fos1]\nmac = {info['devices'][0]['mac']}\n"
                             f"host = {self.device_address}\n")
        self.conf.chmod(0o600)

    def _corosync_conf(self) -> None:
        """corosync.conf as pcs writes it (``--corosync_conf``: a file, no pcsd)."""
        self.corosync_conf = self.dir / "corosync.conf"
        nodes = [item for n in self.nodes for item in (n, f"addr={self.address[n]}")]
        _run(["pcs", "cluster", "setup", CLUSTER_NAME, *nodes, "transport", "knet",
              "crypto", "cipher=none", "hash=none", "totem", f"token={self.token_ms}",
              "--corosync_conf", str(self.corosync_conf)])
        if self.arbiter:
            _run(["pcs", f"--corosync_conf={self.corosync_conf}", "quorum", "device", "add",
                  "model", "net", f"host={self.arbiter_address}", "algorithm=ffsplit",
                  "heuristics", "mode=sync",
                  f"exec_berofos={installed_cli(self.provider)} check --holder"])
        text = self.corosync_conf.read_text()
        # the nodes' logs go to their own files; there is no syslog in a namespace
        text = text[:text.index("logging {")] + (
            "logging {\n    to_logfile: yes\n    logfile: /var/log/corosync/corosync.log\n"
            "    to_stderr: no\n    to_syslog: no\n    timestamp: hires\n}\n")
        self.corosync_conf.write_text(text)

    def _certificates(self) -> None:
        """TLS between qdevice and qnetd: the steps pcs runs, with the certutil tools, offline.

        Each host gets its own /etc/corosync (a directory of the test, bound
        over it in the host's mount namespace), where the tools keep their
        NSS databases.
        """
        arbiter_etc = self._etc(self._arbiter_dir())
        ca = arbiter_etc / "qnetd" / "nssdb" / "qnetd-cacert.crt"
        _in_etc(arbiter_etc, ["corosync-qnetd-certutil", "-i"])
        first, *others = [self._etc(self._node_dir(n)) for n in self.nodes]
        _in_etc(first, ["corosync-qdevice-net-certutil", "-i", "-c", str(ca)])
        _in_etc(first, ["corosync-qdevice-net-certutil", "-r", "-n", CLUSTER_NAME])
        request = first / "qdevice" / "net" / "nssdb" / "qdevice-net-node.crq"
        _in_etc(arbiter_etc, ["corosync-qnetd-certutil", "-s", "-c", str(request),
                              "-n", CLUSTER_NAME])
        signed = arbiter_etc / "qnetd" / "nssdb" / f"cluster-{CLUSTER_NAME}.crt"
        _in_etc(first, ["corosync-qdevice-net-certutil", "-M", "-c", str(signed)])
        bundle = first / "qdevice" / "net" / "nssdb" / "qdevice-net-node.p12"
        for etc in others:
            _in_etc(etc, ["corosync-qdevice-net-certutil", "-i", "-c", str(ca)])
            _in_etc(etc, ["corosync-qdevice-net-certutil", "-m", "-c", str(bundle)])

    @staticmethod
    def _etc(host_dir: Path) -> Path:
        etc = host_dir / "etc-corosync"
        (etc / "uidgid.d").mkdir(parents=True, exist_ok=True)
        return etc

    def _arbiter_dir(self) -> Path:
        return self.dir / "arbiter"

    def _cib(self) -> None:
        """The configuration of the README, with pcs on a CIB file, for every node."""
        cib = self.dir / "cib.xml"
        cib.write_text(_run(["cibadmin", "--empty"]).stdout)
        env = dict(os.environ, CIB_file=str(cib))
        two_node = self.size == 2 and not self.arbiter
        properties = {"stonith-enabled": "false", "dc-deadtime": "2s",
                      "no-quorum-policy": "ignore" if two_node else "stop"}
        for name, value in properties.items():
            _run(["crm_attribute", "--type", "crm_config", "--name", name, "--update", value],
                 env=env)
        pcs = ["pcs", "-f", str(cib)]
        if self.bypass:
            self._bypass_resources(pcs)
            self.cib = cib
            return
        _run(pcs + ["resource", "create", "isdn", f"ocf:{self.provider}:berofos",
                    "port_b=node1", "port_d=node2", f"config={self.conf}",
                    "op", "monitor", "interval=10s", "role=Promoted", "timeout=20s",
                    "op", "monitor", "interval=11s", "role=Unpromoted", "timeout=20s",
                    "meta", *RESOURCE_META,
                    "promotable", "promoted-max=1", "promoted-node-max=1", "clone-max=2",
                    "clone-node-max=1"])
        _run(pcs + ["resource", "create", "asterisk", "ocf:heartbeat:Dummy",
                    "op", "monitor", "interval=10s"])
        _run(pcs + ["constraint", "colocation", "add", "asterisk", "with", "Promoted",
                    "isdn-clone", "INFINITY"])
        _run(pcs + ["constraint", "order", "promote", "isdn-clone", "then", "start",
                    "asterisk"])
        if self.size == 3:
            _run(pcs + ["constraint", "location", "isdn-clone", "avoids", "node3"])
        if self.prefer:
            self.add_preference(self.prefer, pcs=pcs)
        self._alerts(pcs)
        self.cib = cib

    def _bypass_resources(self, pcs: list[str]) -> None:
        """The README's bypass configuration: Asterisk first, the lines in line after it."""
        _run(pcs + ["resource", "create", "asterisk", "ocf:heartbeat:Dummy",
                    "op", "monitor", "interval=10s"])
        interval = max(1, self.watchdog_timeout // 3)
        _run(pcs + ["resource", "create", BYPASS_RESOURCE,
                    f"ocf:{self.provider}:berofos-bypass", f"config={self.conf}",
                    f"watchdog_timeout={self.watchdog_timeout}",
                    "op", "monitor", f"interval={interval}s", "timeout=20s",
                    "meta", *BYPASS_META])
        _run(pcs + ["constraint", "order", "start", "asterisk", "then", "start",
                    BYPASS_RESOURCE])
        _run(pcs + ["constraint", "colocation", "add", BYPASS_RESOURCE, "with", "asterisk",
                    "INFINITY"])

    def _alerts(self, pcs: list[str]) -> None:
        """The README's alert agent, its recipient a file every node can append to.

        The agent runs as hacluster: the file lives in a directory of its own
        under /tmp (the test's own directory is root's only), shared by the
        nodes (only /run and /dev/shm are private to each).
        """
        import tempfile

        self.alerts_dir = Path(tempfile.mkdtemp(prefix="berofos-alerts-", dir="/tmp"))
        self.alerts_dir.chmod(0o755)
        self.alerts_file = self.alerts_dir / "alerts.log"
        self.alerts_file.touch()
        shutil.chown(self.alerts_file, _HACLUSTER)
        _run(pcs + ["alert", "create", f"path={installed_alert_agent(self.provider)}",
                    "id=berofos-alert", "options", "syslog=no"])
        _run(pcs + ["alert", "recipient", "add", "berofos-alert",
                    f"value={self.alerts_file}", "id=berofos-alert-file"])

    def alerts(self) -> list[str]:
        """The lines the alert agent wrote so far."""
        return self.alerts_file.read_text().splitlines()

    def _node_dir(self, node: str) -> Path:
        return self.dir / node

    def start_node(self, node: str) -> None:
        """Boot a node (again): fresh /run, its CIB and logs kept as on a disk."""
        directory = self._node_dir(node)
        fresh = not (directory / "lib-pacemaker").exists()
        for sub in ("lib-pacemaker/cib", "lib-pacemaker/pengine", "lib-pacemaker/blackbox",
                    "lib-pacemaker/cores", "lib-corosync", "log-pacemaker/bundles",
                    "log-corosync"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self._etc(directory)
        if fresh:
            target = directory / "lib-pacemaker" / "cib" / "cib.xml"
            shutil.copy(self.cib, target)
            target.chmod(0o600)
            _run(["chown", "-R", f"{_HACLUSTER}:haclient", str(directory / "lib-pacemaker"),
                  str(directory / "log-pacemaker")])
        launcher = self._launch(self.netns[node], ["node", node, str(directory),
                                                    str(self.corosync_conf)], directory)
        self._launchers[node] = launcher
        self.init_pids[node] = self._find_init(launcher.pid)

    def start_arbiter(self) -> None:
        """Boot (again) the corosync-qnetd host."""
        directory = self._arbiter_dir()
        self._etc(directory)
        self._arbiter_launcher = self._launch(self.arbiter_netns,
                                              ["arbiter", "arbiter", str(directory)], directory)
        self.arbiter_pid = self._find_init(self._arbiter_launcher.pid)

    @staticmethod
    def _launch(netns: str, arguments: list[str], directory: Path) -> subprocess.Popen:
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "launcher.err", "a") as errors:
            return subprocess.Popen(
                ["ip", "netns", "exec", netns, "unshare", "-m", "-u", "-i", "-p", "-f",
                 "--mount-proc", "--propagation", "private", PYTHON,
                 str(ROOT / "tests" / "cluster_init.py"), *arguments],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)

    def kill_arbiter(self) -> None:
        """Hard failure of the arbiter host."""
        os.kill(self.arbiter_pid, signal.SIGKILL)
        self._arbiter_launcher.wait(10)
        self.arbiter_pid = self._arbiter_launcher = None

    @staticmethod
    def _find_init(launcher_pid: int) -> int:
        """The PID (in our namespace) of the node's PID 1, the child of ``unshare -f``."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # ip netns exec execs unshare, which forks the namespace's PID 1
            try:
                children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text()
            except FileNotFoundError:
                raise RuntimeError("the node launcher died") from None
            if children.split():
                return int(children.split()[0])
            time.sleep(0.02)
        raise RuntimeError("the node's init did not start")

    # -- using -------------------------------------------------------------------------

    def on_argv(self, node: str, argv: list[str]) -> list[str]:
        """``argv`` made to run inside a live node's namespaces."""
        return ["nsenter", "-t", str(self.init_pids[node]), "-m", "-u", "-n", "-p", "-i",
                "--", *argv]

    def on(self, node: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a command inside a live node's namespaces."""
        kwargs.setdefault("check", False)
        return _run(self.on_argv(node, argv), **kwargs)

    def view(self, node: str | None = None, *, attributes: bool = False) -> ClusterView | None:
        """The cluster as a live node sees it (None if no node answers)."""
        candidates = [node] if node else [n for n in self.nodes if n in self.init_pids]
        argv = ["crm_mon", "-1", "--output-as=xml"] + (["-A"] if attributes else [])
        for name in candidates:
            result = self.on(name, argv, timeout=10)
            if result.returncode == 0 and result.stdout.strip():
                return ClusterView(result.stdout)
        return None

    def wait_for(self, predicate, timeout: float, what: str, node: str | None = None,
                 interval: float = 0.2):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.view(node)
            if last is not None:
                result = predicate(last)
                if result:
                    return result
            time.sleep(interval)
        roles = last.instances() if last else "no answer"
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; saw {roles}")

    def wait_promoted(self, timeout: float = 60, node: str | None = None,
                      seen_from: str | None = None) -> str:
        def check(view: ClusterView):
            promoted = view.promoted()
            if len(promoted) == 1 and (node is None or promoted == [node]):
                if view.running("asterisk") == promoted:
                    return promoted[0]
            return None
        return self.wait_for(check, timeout, f"{node or 'a node'} promoted", seen_from)

    def wait_running(self, resource: str, timeout: float = 60, node: str = "node1") -> str:
        """Wait until ``resource`` runs on ``node``; the node."""
        return self.wait_for(lambda view: node if view.running(resource) == [node] else None,
                             timeout, f"{resource} running on {node}")

    def kicker(self, node: str = "node1") -> dict | None:
        """The bypass resource's kicker record on ``node`` (its private /run), or None."""
        result = self.on(node, ["cat", BYPASS_KICKER_FILE], timeout=10)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def device_state(self) -> tuple[int, int]:
        """(relay mode, watchdog state) of the emulated device."""
        device = self.control.device("fos1")
        return device["relay_mode"], device["watchdog_state"]

    def relay_log(self) -> list[dict]:
        return self.control.relay_log()

    def relays(self) -> int:
        return self.control.device("fos1")["relay_mode"]

    def kill(self, node: str) -> float:
        """Hard failure: SIGKILL the node's PID 1 (the kernel kills its whole namespace)."""
        pid = self.init_pids.pop(node)
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        self._launchers.pop(node).wait(10)
        return killed_at

    def partition(self, node: str) -> None:
        """Cut the node off the bridge (from the other nodes and from the berofos)."""
        _run(["ip", "link", "set", self.veth[node], "down"])

    def heal(self, node: str) -> None:
        _run(["ip", "link", "set", self.veth[node], "up"])

    def split(self) -> None:
        """Cut the link between node1 and node2; both keep the berofos and the arbiter."""
        for node, peer in (("node1", "node2"), ("node2", "node1")):
            _run(["ip", "netns", "exec", self.netns[node], "ip", "route", "add", "unreachable",
                  f"{self.address[peer]}/32"])

    def heal_split(self) -> None:
        for node, peer in (("node1", "node2"), ("node2", "node1")):
            _run(["ip", "netns", "exec", self.netns[node], "ip", "route", "del", "unreachable",
                  f"{self.address[peer]}/32"])

    def block_device(self, node: str) -> None:
        """The berofos unreachable from this node only (its other links stay up)."""
        _run(["ip", "netns", "exec", self.netns[node], "ip", "route", "add", "unreachable",
              f"{self.device_address}/32"])

    def unblock_device(self, node: str) -> None:
        _run(["ip", "netns", "exec", self.netns[node], "ip", "route", "del", "unreachable",
              f"{self.device_address}/32"])

    def add_preference(self, node: str, score: int = 50, *, pcs: list[str] | None = None,
                       via: str | None = None) -> None:
        """The README's way to prefer a node for the lines: role=Promoted location rule."""
        argv = ["constraint", "location", "isdn-clone", "rule", "role=Promoted",
                f"score={score}", "#uname", "eq", node]
        if pcs is not None:
            _run(pcs + argv)
        else:
            self.crm(via, "pcs", *argv)

    def crm(self, node: str, *argv: str) -> subprocess.CompletedProcess:
        return self.on(node, list(argv), check=True)

    # -- tearing down ------------------------------------------------------------------

    def stop(self) -> None:
        pids = list(self.init_pids.values()) + ([self.arbiter_pid] if self.arbiter_pid else [])
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        launchers = list(self._launchers.values())
        if self._arbiter_launcher is not None:
            launchers.append(self._arbiter_launcher)
        for launcher in launchers:
            try:
                launcher.wait(10)
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()
        self.init_pids.clear()
        self._launchers.clear()
        self.arbiter_pid = self._arbiter_launcher = None
        if self.emulator is not None and self.emulator.poll() is None:
            self.emulator.terminate()
            try:
                self.emulator.wait(10)
            except subprocess.TimeoutExpired:
                self.emulator.kill()
        for ns in [*self.netns.values(), self.arbiter_netns]:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for veth in [*self.veth.values(), self.arbiter_veth]:
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        if getattr(self, "alerts_dir", None):
            shutil.rmtree(self.alerts_dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()
