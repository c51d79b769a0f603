"""``make bench``: what the agent and the CLI cost, measured side by side in one run.

Every case is a whole process (interpreter start-up included, as Pacemaker
pays it on every action), run ROUNDS times, the cases interleaved round by
round so that a noisy neighbour hits them alike.  Wall time and CPU time
(user + system of the child, from wait4) are reported as medians with the
spread (lowest-highest), and the ratios the targets are about:

* actions that need no device (meta-data, stop) against resource-agents'
  ``dummypy``, a Python agent on ``ocf.py`` that does no I/O: ≤ 1.3×;
* monitor against its floor, a process that imports what monitor cannot avoid
  (``ocf.py``, ``requests``), makes one request per device and runs
  ``crm_attribute`` once (as every monitor in a promotable clone must): ≤ 1.2×.
  Outside a cluster ``crm_attribute`` cannot run, so both run the same stand-in
  (``/bin/true`` under that name): the fork and exec are counted, the CIB
  update is not;
* promote of 8 devices against promote of 1: ≤ 1.3×;
* ``berofos status`` on 8 devices against 1 (the devices concurrently).

The emulator runs in its own process; its CPU is not counted.

Then, where test clusters can run (root, namespaces), the failover time: a
real cluster (``token: 1000``) of 2 nodes with ``two_node``, 2 nodes with a
corosync-qnetd arbiter (the README's recommended shape), and 3 nodes is started
FAILOVER_RUNS times each, the promoted node is killed with SIGKILL, and the time
from the kill to the relays moving (the emulator's relay log) is collected.  Beside it, the Wazo
baseline it replaces, computed from its documented schedule (a cron job every
minute, then about 20 s of pings before switching): that one is a model, not a
measurement.  Last, the one-Wazo wiring (``berofos-bypass``): its only node is
killed FAILOVER_RUNS times (and booted again in between), and the time from
the kill to the berofos's own watchdog moving the lines to the PBX is set
against ``watchdog_timeout``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
DUMMYPY = "/usr/lib/ocf/resource.d/heartbeat/dummypy"
OCF_LIB = "/usr/lib/ocf/lib/heartbeat"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
FAILOVER_RUNS = int(os.environ.get("BENCH_FAILOVERS", "5"))


def run_measured(argv: list[str], env: dict, before=None) -> tuple[float, float, int]:
    """Run one process; (wall seconds, CPU seconds, exit status)."""
    if before:
        before()
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, process.returncode


class Emulator:
    def __init__(self, tmp: Path, devices: int, latency: float = 0.0) -> None:
        self.ready = tmp / f"ready-{devices}-{latency}.json"
        argv = [PYTHON, "-m", "berofos_ocf", "emulator", "--no-udp", "--control", "127.0.0.1:0",
                "--ready-file", str(self.ready)] + ["--listen", "127.0.0.1:0"] * devices
        self.process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self.ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the emulator did not start")
            time.sleep(0.02)
        self.info = json.loads(self.ready.read_text())
        sys.path.insert(0, str(ROOT))
        from berofos_ocf.emulator.control import EmulatorControl

        self.control = EmulatorControl(self.info["control"])
        self.conf = tmp / f"bnfos-{devices}-{latency}.conf"
        self.conf.write_text("".join(
            f"[{d['name']}]\nmac = {d['mac']}\nhost = {d['address']}\n\n"
            for d in self.info["devices"]))
        if latency:
            for device in self.info["devices"]:
                self.control.fault(device["name"], "latency", seconds=latency)

    def urls(self) -> list[str]:
        return [f"http://{d['address']}/config.txt" for d in self.info["devices"]]

    def set_all(self, mode: int) -> None:
        for device in self.info["devices"]:
            self.control.set_values(device["name"], mode=mode)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


def agent_env(tmp: Path, conf: Path, node: str = "node2", **extra) -> dict:
    env = {"PATH": f"{tmp / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf",
           "OCF_RESOURCE_INSTANCE": "bench", "OCF_RESKEY_config": str(conf),
           "OCF_RESKEY_port_b": "node1", "OCF_RESKEY_port_d": "node2",
           "OCF_RESKEY_CRM_meta_on_node": node, "OCF_RESKEY_CRM_meta_timeout": "20000",
           "OCF_RESKEY_CRM_meta_interval": "10000", "HA_RSCTMP": str(tmp / "run"),
           "OCF_RESKEY_CRM_meta_promoted_max": "1", "HA_debug": "0"}
    env.update(extra)
    return env


FLOOR = ("import subprocess, sys; sys.path.append(%r); import ocf, requests; "
         "s = requests.Session(); [s.get(u, timeout=3).content for u in sys.argv[2:]]; "
         "subprocess.run([sys.argv[1]])" % OCF_LIB)


def main() -> int:
    if not os.path.exists(DUMMYPY):
        print(f"{DUMMYPY} missing: install resource-agents", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="berofos-bench-"))
    try:
        return _bench(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bench(tmp: Path) -> int:
    (tmp / "run").mkdir()
    (tmp / "bin").mkdir()
    crm_attribute = tmp / "bin" / "crm_attribute"
    crm_attribute.symlink_to("/bin/true")
    agent = str(ROOT / "agents" / "berofos")
    emulators = []
    try:
        for devices, latency in ((1, 0.0), (8, 0.0), (1, 0.2), (8, 0.2)):
            emulators.append(Emulator(tmp, devices, latency))
        _run_cases(tmp, agent, str(crm_attribute), *emulators)
    finally:
        for emulator in emulators:
            emulator.stop()
    failover()
    return 0


def _run_cases(tmp: Path, agent: str, crm_attribute: str, one, eight, slow_one,
               slow_eight) -> None:
    base = {"PATH": "/usr/bin:/bin", "OCF_ROOT": "/usr/lib/ocf", "HA_debug": "0",
            "OCF_RESOURCE_INSTANCE": "bench", "HA_RSCTMP": str(tmp / "run")}
    dummy_env = dict(base, OCF_RESKEY_state=str(tmp / "dummypy.state"))
    env1, env8 = agent_env(tmp, one.conf), agent_env(tmp, eight.conf)
    # as dummypy runs: no clone, so no crm_attribute
    plain1 = {k: v for k, v in env1.items() if k != "OCF_RESKEY_CRM_meta_promoted_max"}
    marker = tmp / "run" / "berofos-bench.role"

    def started() -> None:
        marker.write_text("unpromoted\n")

    def back_to_b(emulator):
        return lambda: (started(), emulator.set_all(1))

    cli = [PYTHON, "-m", "berofos_ocf"]
    cli_env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    cases = {
        "dummypy meta-data": ([DUMMYPY, "meta-data"], dummy_env, None),
        "berofos meta-data": ([agent, "meta-data"], env1, None),
        "dummypy stop": ([DUMMYPY, "stop"], dummy_env, None),
        "berofos stop": ([agent, "stop"], plain1, started),
        "berofos stop, promotable clone": ([agent, "stop"], env1, started),
        "floor, 1 device": ([PYTHON, "-c", FLOOR, crm_attribute] + one.urls(), base, None),
        "berofos monitor, 1 device": ([agent, "monitor"], env1, started),
        "floor, 8 devices": ([PYTHON, "-c", FLOOR, crm_attribute] + eight.urls(), base, None),
        "berofos monitor, 8 devices": ([agent, "monitor"], env8, started),
        "berofos promote, 1 device": ([agent, "promote"], env1, back_to_b(one)),
        "berofos promote, 8 devices": ([agent, "promote"], env8, back_to_b(eight)),
        "berofos status, 1 device": (cli + ["-c", str(one.conf), "status"], cli_env, None),
        "berofos status, 8 devices": (cli + ["-c", str(eight.conf), "status"], cli_env, None),
        "status, 1 device answering in 0.2 s":
            (cli + ["-c", str(slow_one.conf), "status"], cli_env, None),
        "status, 8 devices answering in 0.2 s":
            (cli + ["-c", str(slow_eight.conf), "status"], cli_env, None),
    }
    samples = {name: ([], []) for name in cases}
    for argv, env, before in cases.values():  # warm the page cache once
        run_measured(argv, env, before)
    for _ in range(ROUNDS):
        for name, (argv, env, before) in cases.items():
            wall, cpu, status = run_measured(argv, env, before)
            if status not in (0, 8):
                raise SystemExit(f"{name}: exit status {status}")
            samples[name][0].append(wall)
            samples[name][1].append(cpu)
    report(samples)


def failover() -> None:
    from .cluster import cluster_support, install_agent, uninstall_agent

    if FAILOVER_RUNS < 1:
        return
    reason = cluster_support()
    if reason:
        print(f"\nfailover: not measured, no test clusters here ({reason})")
        return
    provider = "berofos-bench"
    install_agent(provider)
    try:
        failovers = _failovers(provider)
        switchovers = _switchovers(provider)
        bypass = _bypass_handovers(provider)
    finally:
        uninstall_agent(provider)
    _report_failovers(failovers)
    _report_switchovers(switchovers)
    _report_bypass(bypass)


# -- failover: kill of the promoted node -------------------------------------------------------

_SHAPES = {"2 nodes, two_node": (2, False), "2 nodes + qnetd arbiter": (2, True),
           "3 nodes": (3, False)}


def _failovers(provider: str) -> dict[str, list]:
    """Timelines by case: the shape, and for two_node whether the killed node was the DC."""
    cases: dict[str, list] = {}
    for run in range(FAILOVER_RUNS):
        for want_dc_killed in (False, True):  # two_node: each DC case at least FAILOVER_RUNS
            dc_killed, timeline = _one_failover(2, False, provider, want_dc_killed)
            case = "2 nodes, two_node, " + ("DC killed" if dc_killed else "DC survived")
            cases.setdefault(case, []).append(timeline)
        for label, (size, arbiter) in list(_SHAPES.items())[1:]:
            dc_killed, timeline = _one_failover(size, arbiter, provider, None)
            cases.setdefault(label, []).append(timeline)
    return cases


def _one_failover(size: int, arbiter: bool, provider: str, want_dc_killed: bool | None):
    """(the killed node was the DC, the failover's timeline); with ``want_dc_killed`` the
    lines are first moved (crm_resource --move) so that the promoted node is, or is
    not, the DC."""
    from .cluster import Cluster
    from .timeline import failover_timeline

    workdir = Path(tempfile.mkdtemp(prefix=f"berofos-failover-{size}-"))
    lab = Cluster(size, workdir, provider=provider, arbiter=arbiter)
    try:
        lab.start()
        promoted = lab.wait_promoted(120)
        time.sleep(2)  # settled: first monitors done
        dc = lab.view().dc()
        if want_dc_killed is not None and (promoted == dc) != want_dc_killed:
            target = dc if want_dc_killed else next(n for n in ("node1", "node2") if n != dc)
            _move(lab, target, "crm_resource")
            promoted = lab.wait_promoted(60, target)
            time.sleep(2)
        before = len(lab.relay_log())
        killed_at = lab.kill(promoted)
        moved_at = _relays_moved(lab, before, 60)
        survivor_dc = lab.wait_for(lambda view: view.dc(), 30, "a DC after the kill")
        return promoted == dc, failover_timeline(lab.dir / survivor_dc, killed_at, moved_at)
    finally:
        lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _relays_moved(lab, before: int, timeout: float) -> float:
    from .cluster import wait_relay_change

    change = wait_relay_change(lab.control, before, timeout)
    if change is None:
        raise SystemExit(f"relays did not move within {timeout} s")
    return change["time"]


def _print_timelines(cases: dict[str, list]) -> None:
    """Each case's median (range), then its runs' breakdowns, one a line."""
    for case, timelines in cases.items():
        totals = [t.total for t in timelines]
        print(f"\n{case}: median {statistics.median(totals):.2f} "
              f"({min(totals):.2f}-{max(totals):.2f})")
        for timeline in timelines:
            print(f"  {timeline}")


def _report_failovers(cases: dict[str, list]) -> None:
    print(f"\nfailover: kill of the promoted node -> relays moved at the emulator, "
          f"{FAILOVER_RUNS} runs a case, token 1000 ms; seconds after the kill")
    _print_timelines(cases)
    # Wazo's cron job: the master dies at a uniformly random point of the minute;
    # the next run pings it for about 20 s, then switches.
    print("\nWazo cron + pings (a model, not measured): median 50 (20-80): the next minute "
          "(0-60 s), then about 20 s of pings")
    for case in ("2 nodes, two_node, DC survived", "2 nodes, two_node, DC killed"):
        median = statistics.median(t.total for t in cases[case])
        print(f"target: {case}, median <= 2.6 s: {'met' if median <= 2.6 else 'MISSED'} "
              f"({median:.2f} s)")


# -- switchover: a planned move of the lines ---------------------------------------------------

_SWITCHOVERS = {
    "crm_resource --move --promoted": "crm_resource",
    "pcs resource move --promoted": "pcs",
    "pcs node standby": "pcs-standby",
    "crm_attribute standby": "crm-standby",
}


def _switchovers(provider: str) -> dict[str, list]:
    """Timelines of planned moves, each way FAILOVER_RUNS times, on one 2-node cluster."""
    from .cluster import Cluster

    workdir = Path(tempfile.mkdtemp(prefix="berofos-switchover-"))
    lab = Cluster(2, workdir, provider=provider)
    results: dict[str, list] = {label: [] for label in _SWITCHOVERS}
    try:
        lab.start()
        lab.wait_promoted(120)
        for _ in range(FAILOVER_RUNS):
            for label, how in _SWITCHOVERS.items():
                results[label].append(_one_switchover(lab, how))
    finally:
        lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _one_switchover(lab, how: str):
    from .timeline import switchover_timeline

    time.sleep(3)  # settled: the last move's monitors done
    holder = lab.wait_promoted(60)
    target = "node2" if holder == "node1" else "node1"
    dc = lab.view().dc()
    before = len(lab.relay_log())
    if how in ("crm_resource", "pcs"):
        commanded_at = _move(lab, target, how)
    else:
        commanded_at = _standby(lab, holder, how)
    moved_at = _relays_moved(lab, before, 60)
    timeline = switchover_timeline(lab.dir / dc, commanded_at, moved_at)
    lab.wait_promoted(60, target)
    if how == "crm_resource":  # pcs 0.11 removes its own constraint once moved
        lab.crm(target, "crm_resource", "--clear", "--resource", "isdn-clone")
    elif how in ("pcs-standby", "crm-standby"):
        lab.crm(target, "crm_attribute", "--node", holder, "--name", "standby",
                "--update", "off")
    return timeline


def _move(lab, target: str, how: str) -> float:
    """Move the promoted role to ``target``; the moment the command started."""
    argv = (["crm_resource", "--move", "--promoted", "--resource", "isdn-clone",
             "--node", target] if how == "crm_resource"
            else ["pcs", "resource", "move", "isdn-clone", target, "--promoted"])
    started = time.time()
    subprocess.Popen(lab.on_argv(target, argv), stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    return started


def _standby(lab, holder: str, how: str) -> float:
    argv = (["pcs", "node", "standby", holder] if how == "pcs-standby"
            else ["crm_attribute", "--node", holder, "--name", "standby", "--update", "on"])
    started = time.time()
    subprocess.Popen(lab.on_argv(holder, argv), stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    return started


def _report_switchovers(results: dict[str, list]) -> None:
    print(f"\nswitchover: command -> relays moved, {FAILOVER_RUNS} runs each, seconds after "
          "the command started (its own start-up included)")
    _print_timelines(results)
    best = min(statistics.median(t.total for t in timelines) for timelines in results.values())
    print(f"\ntarget: switchover median <= 0.5 s: {'met' if best <= 0.5 else 'MISSED'} "
          f"({best:.2f} s, the fastest command)")


# -- one Wazo in front of a PBX: kill of the node -> the berofos watchdog ---------------------

def _bypass_handovers(provider: str) -> list[float]:
    """Seconds from the kill of the bypass node to the lines at the PBX, one a run; the
    node is booted again between runs (its start re-arms the fired watchdog)."""
    import random

    from berofos_ocf.agent.bypass_table import kick_interval

    from .cluster import BYPASS_RESOURCE, Cluster

    workdir = Path(tempfile.mkdtemp(prefix="berofos-bypass-"))
    lab = Cluster(1, workdir, provider=provider, bypass=True)
    seconds = []
    try:
        lab.start()
        for _ in range(FAILOVER_RUNS):
            lab.wait_running(BYPASS_RESOURCE, 120)
            _wait_in_line(lab, 30)
            # a few kicks, then the kill anywhere between two of them
            time.sleep(2 + random.uniform(0, kick_interval(lab.watchdog_timeout)))
            before = len(lab.relay_log())
            killed_at = lab.kill("node1")
            seconds.append(_relays_moved(lab, before, lab.watchdog_timeout + 10) - killed_at)
            lab.start_node("node1")
    finally:
        lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return seconds


def _wait_in_line(lab, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while lab.device_state() != (1, 1):
        if time.monotonic() > deadline:
            raise SystemExit(f"the Wazo was not put in line within {timeout} s")
        time.sleep(0.1)


def _report_bypass(seconds: list[float]) -> None:
    from .cluster import BYPASS_WATCHDOG

    median = statistics.median(seconds)
    print(f"\nbypass (one Wazo in front of a PBX): kill of the node -> lines on the PBX by "
          f"the berofos watchdog, {len(seconds)} runs, watchdog_timeout {BYPASS_WATCHDOG} s: "
          f"median {median:.2f} ({min(seconds):.2f}-{max(seconds):.2f}): "
          + " ".join(f"{value:.2f}" for value in seconds))
    print(f"target: median <= watchdog_timeout ({BYPASS_WATCHDOG} s): "
          f"{'met' if median <= BYPASS_WATCHDOG else 'MISSED'} ({median:.2f} s)")


def ms(values: list[float]) -> str:
    return (f"{statistics.median(values) * 1000:7.1f} "
            f"({min(values) * 1000:.0f}-{max(values) * 1000:.0f})")


def report(samples: dict) -> None:
    print(f"{ROUNDS} rounds, cases interleaved; milliseconds, median (lowest-highest)\n")
    print(f"{'case':40} {'wall':>22} {'cpu':>22}")
    for name, (wall, cpu) in samples.items():
        print(f"{name:40} {ms(wall):>22} {ms(cpu):>22}")
    print()

    def ratio(a: str, b: str, kind: int) -> float:
        return statistics.median(samples[a][kind]) / statistics.median(samples[b][kind])

    targets = [
        ("meta-data / dummypy meta-data", "berofos meta-data", "dummypy meta-data", 1.3),
        ("stop / dummypy stop", "berofos stop", "dummypy stop", 1.3),
        ("monitor / floor, 1 device", "berofos monitor, 1 device", "floor, 1 device", 1.2),
        ("monitor / floor, 8 devices", "berofos monitor, 8 devices", "floor, 8 devices", 1.2),
        ("promote 8 devices / 1 device", "berofos promote, 8 devices",
         "berofos promote, 1 device", 1.3),
        ("status 8 devices / 1 device", "berofos status, 8 devices",
         "berofos status, 1 device", None),
        ("status 8 / 1, devices answering in 0.2 s", "status, 8 devices answering in 0.2 s",
         "status, 1 device answering in 0.2 s", None),
    ]
    print(f"{'ratio':42} {'wall':>6} {'cpu':>6}  target")
    for label, a, b, target in targets:
        wall, cpu = ratio(a, b, 0), ratio(a, b, 1)
        verdict = ""
        if target:
            verdict = f"<= {target}: " + ("met" if max(wall, cpu) <= target else "MISSED")
        print(f"{label:42} {wall:6.2f} {cpu:6.2f}  {verdict}")


if __name__ == "__main__":
    sys.exit(main())
