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
