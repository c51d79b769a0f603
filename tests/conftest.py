"""Shared fixtures: emulated devices, in-process and as a separate process.

Everything talks to 127.0.0.1 with ports picked by the kernel, so test runs
never collide with each other or with a device on the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from berofos_ocf.bnfosconf import DeviceEntry, render_bnfos_conf
from berofos_ocf.emulator import DeviceOptions, Emulator
from berofos_ocf.emulator.control import EmulatorControl

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PASSWORD = "s3cret-pw"


def entries_for(emulator: Emulator, *, password: str | None = None) -> list[DeviceEntry]:
    """bnfos.conf entries for every emulated device (login when a password is given)."""
    return [DeviceEntry(d.name, mac=":".join(f"{b:02X}" for b in d.mac), host=d.listen[0],
                        port=d.listen[1], user="admin" if password else None,
                        password=password) for d in emulator.devices]


@pytest.fixture
def emulator():
    """One emulated device without password, HTTP and GBL4 on loopback."""
    with Emulator([("127.0.0.1", 0)], udp_port=0) as running:
        yield running


@pytest.fixture
def protected_emulator():
    """One emulated device with password protection on."""
    with Emulator([("127.0.0.1", 0)], udp_port=0, password=PASSWORD) as running:
        yield running


class EmulatorProcess:
    """``berofos emulator`` run as its own process, with its control interface."""

    def __init__(self, tmp_path: Path, devices: int = 1, extra: list[str] | None = None,
                 host: str = "127.0.0.1") -> None:
        self.ready_file = tmp_path / f"emulator-{time.monotonic_ns()}.json"
        self.relay_log_file = tmp_path / "relay.log"
        argv = [PYTHON, "-m", "berofos_ocf", "emulator", "--udp-port", "0",
                "--control", f"{host}:0", "--ready-file", str(self.ready_file),
                "--relay-log", str(self.relay_log_file)]
        for _ in range(devices):
            argv += ["--listen", f"{host}:0"]
        argv += extra or []
        self.output = open(tmp_path / "emulator.out", "w")
        self.process = subprocess.Popen(argv, cwd=ROOT, stdout=self.output,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not self.ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator did not start: "
                                   + (tmp_path / "emulator.out").read_text())
            time.sleep(0.02)
        self.info = json.loads(self.ready_file.read_text())
        self.control = EmulatorControl(self.info["control"])

    @property
    def udp_port(self) -> int:
        return self.info["udp_port"]

    def entries(self, password: str | None = None) -> list[DeviceEntry]:
        result = []
        for device in self.info["devices"]:
            host, port = device["address"].split(":")
            result.append(DeviceEntry(device["name"], mac=device["mac"], host=host,
                                      port=int(port), user="admin" if password else None,
                                      password=password))
        return result

    def write_conf(self, path: Path, password: str | None = None) -> Path:
        path.write_text(render_bnfos_conf(self.entries(password)))
        path.chmod(0o600)
        return path

    def relay_log(self) -> list[dict]:
        return self.control.relay_log()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()


@pytest.fixture
def emulator_process(tmp_path):
    """Factory of emulator processes; all are stopped at the end of the test."""
    started: list[EmulatorProcess] = []

    def start(devices: int = 1, extra: list[str] | None = None) -> EmulatorProcess:
        process = EmulatorProcess(tmp_path, devices, extra)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


__all__ = ["DeviceOptions", "entries_for", "PASSWORD", "PYTHON", "ROOT", "FIXTURES"]


# -- the agent as Pacemaker runs it ---------------------------------------------------------

CRM_ATTRIBUTE_FAKE = """#!/bin/sh
# Records how the agent sets its promotion score; takes $FAKE_CRM_DELAY seconds
# and exits with $FAKE_CRM_STATUS.  Asked for stonith-enabled, answers
# $FAKE_STONITH (default: true, Pacemaker's default).  A call whose arguments
# hold $FAKE_CRM_KILL_ON is recorded, then SIGKILLs the agent: Pacemaker cancels
# a recurring monitor in flight that way when it acts on the score it just set.
[ -z "$FAKE_CRM_DELAY" ] || sleep "$FAKE_CRM_DELAY"
case "$*" in *stonith-enabled*) echo "${FAKE_STONITH:-true}"; exit 0;; esac
printf '%s\\n' "$*" >> "$FAKE_CRM_LOG"
if [ -n "$FAKE_CRM_KILL_ON" ]; then
    case "$*" in *"$FAKE_CRM_KILL_ON"*) kill -KILL "$PPID";; esac
fi
exit "${FAKE_CRM_STATUS:-0}"
"""
CMAPCTL_FAKE = """#!/bin/sh
# corosync-cmapctl of a node whose corosync.conf is $FAKE_CMAP (its key dump);
# without it, corosync is not running.
[ -n "$FAKE_CMAP" ] || { echo "Failed to initialize the cmap API. Error CS_ERR_LIBRARY" >&2; exit 1; }
cat "$FAKE_CMAP"
"""
CRM_NODE_FAKE = """#!/bin/sh
# Answers crm_node -n like a cluster member called $FAKE_NODE_NAME would, and
# crm_node -p with the members of its partition, $FAKE_PARTITION.
if [ "$1" = "-p" ]; then
    [ -n "$FAKE_PARTITION" ] || { echo "error: Could not connect to controller" >&2; exit 102; }
    echo "$FAKE_PARTITION"
    exit 0
fi
[ -n "$FAKE_NODE_NAME" ] || { echo "error: Could not connect to controller" >&2; exit 102; }
echo "$FAKE_NODE_NAME"
"""


@pytest.fixture(scope="session")
def installed_tree(tmp_path_factory):
    """``make install`` into a world-readable directory (ocf-tester runs meta-data as nobody).

    Returns the path of the installed agent.
    """
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="berofos-install-", dir="/tmp"))
    top.chmod(0o755)
    subprocess.run(["make", "-s", "install", "DESTDIR=", f"PYTHONDIR={top}/python",
                    f"OCF_ROOT={top}/ocf", f"BINDIR={top}/bin", f"MANDIR={top}/man",
                    f"PYTHON={PYTHON}"], cwd=ROOT, check=True, capture_output=True)
    yield top / "ocf" / "resource.d" / "berofos" / "berofos"
    subprocess.run(["rm", "-rf", str(top)], check=False)


class AgentRun:
    """The outcome of one agent process."""

    def __init__(self, result: subprocess.CompletedProcess, elapsed: float) -> None:
        self.rc = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.elapsed = elapsed
        reasons = [line.split(":", 1)[1] for line in result.stderr.splitlines()
                   if line.startswith("ocf-exit-reason:")]
        self.reason = reasons[-1] if reasons else ""

    def __repr__(self) -> str:
        return f"AgentRun(rc={self.rc}, reason={self.reason!r}, stderr={self.stderr!r})"


class Agent:
    """Runs ``agents/berofos ACTION`` as Pacemaker would: clean environment, fake CRM tools.

    ``node`` is the node it runs on (CRM_meta_on_node); the role marker lives in
    a directory of its own so that two instances can share one machine.
    """

    def __init__(self, tmp_path: Path, config: Path, node: str, *, port_b: str = "node1",
                 port_d: str = "node2", program: Path | None = None) -> None:
        self.dir = tmp_path / f"agent-{node}"
        self.dir.mkdir(exist_ok=True)
        (self.dir / "run").mkdir(exist_ok=True)
        bin_dir = tmp_path / "fakebin"
        bin_dir.mkdir(exist_ok=True)
        for name, text in (("crm_attribute", CRM_ATTRIBUTE_FAKE), ("crm_node", CRM_NODE_FAKE),
                           ("corosync-cmapctl", CMAPCTL_FAKE)):
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        self.program = program or ROOT / "agents" / "berofos"
        self.log_file = self.dir / "agent.log"
        self.crm_log = self.dir / "crm_attribute.calls"
        self.marker = self.dir / "run" / "berofos-isdn.role"
        self.env = {
            "PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin",
            "OCF_ROOT": "/usr/lib/ocf",
            "OCF_RESOURCE_INSTANCE": "isdn",
            "OCF_RESOURCE_TYPE": "berofos",
            "OCF_RESOURCE_PROVIDER": "berofos",
            "OCF_RESKEY_config": str(config),
            "OCF_RESKEY_port_b": port_b,
            "OCF_RESKEY_port_d": port_d,
            "OCF_RESKEY_CRM_meta_on_node": node,
            "OCF_RESKEY_CRM_meta_timeout": "20000",
            "OCF_RESKEY_CRM_meta_promoted_max": "1",
            "OCF_RESKEY_CRM_meta_master_max": "1",
            "OCF_RESKEY_CRM_meta_clone_max": "2",
            "OCF_RESKEY_CRM_meta_notify": "true",
            "HA_RSCTMP": str(self.dir / "run"),
            "HA_LOGFILE": str(self.log_file),
            "HA_debug": "0",
            "FAKE_CRM_LOG": str(self.crm_log),
        }

    def run(self, action: str, *, interval: int | None = None, timeout: float = 60,
            user: str | None = None, **overrides) -> AgentRun:
        env = dict(self.env)
        if action == "monitor":
            env["OCF_RESKEY_CRM_meta_interval"] = str(10000 if interval is None else interval)
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = str(value)
        argv = [str(self.program), action]
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + argv
        started = time.monotonic()
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        return AgentRun(result, time.monotonic() - started)

    def probe(self, **overrides) -> AgentRun:
        return self.run("monitor", interval=0, **overrides)

    def role(self) -> str | None:
        return self.marker.read_text().strip() if self.marker.exists() else None

    def crm_calls(self) -> list[str]:
        if not self.crm_log.exists():
            return []
        return self.crm_log.read_text().splitlines()

    def score_calls(self) -> list[str]:
        return [call for call in self.crm_calls() if "--promotion" in call]

    def last_score(self) -> str | None:
        """``--update=N`` → "N" (withheld: "-INFINITY"), ``--delete`` → None, none → KeyError."""
        calls = self.score_calls()
        if not calls:
            raise KeyError("crm_attribute was never called")
        updates = [arg for arg in calls[-1].split() if arg.startswith("--update=")]
        return updates[0].split("=", 1)[1] if updates else None

    def attribute_calls(self) -> list[str]:
        return [call for call in self.crm_calls() if "--promotion" not in call]

    def attributes(self) -> dict[str, str]:
        """The node attributes for people as the recorded calls left them."""
        values: dict[str, str] = {}
        for call in self.attribute_calls():
            name = call.split("--name ", 1)[1].split(" ", 1)[0]
            if " --update=" in call:
                values[name] = call.split(" --update=", 1)[1]
            else:
                values.pop(name, None)
        return values

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    @property
    def state_file(self) -> Path:
        return self.dir / "run" / "berofos-isdn.state"

    def state(self) -> dict:
        """The agent's memory between actions (berofos_ocf.runstate.InstanceState)."""
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def in_two_node_cluster_without_fencing(self) -> None:
        """Every later action sees two nodes, two_node, stonith-enabled=false, no qdevice."""
        cmap = self.dir / "cmap"
        cmap.write_text("nodelist.node.0.name (str) = node1\nnodelist.node.1.name (str) = "
                        "node2\nquorum.two_node (u8) = 1\n")
        self.env.update(FAKE_CMAP=str(cmap), FAKE_STONITH="false")

    def backdate_failure(self, seconds: float) -> None:
        """Make the current streak of failed reads look ``seconds`` older (no waiting)."""
        state = self.state()
        state["unusable_since"] -= seconds
        self.state_file.write_text(json.dumps(state))
