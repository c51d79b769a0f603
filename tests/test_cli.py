"""The ``berofos`` command end to end: a real process against a real emulator process."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import pty
import select
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from berofos_ocf.bnfosconf import DeviceEntry, load_bnfos_conf, render_bnfos_conf
from berofos_ocf.cli import main
from berofos_ocf.cli.output import Progress
from berofos_ocf.emulator import Emulator, Fault
from berofos_ocf.gbl4 import (
    AnyReply,
    Command,
    FlashPage,
    FlashPrepare,
    ScanReply,
    ScanRequest,
    decode_request,
    format_mac,
)
from berofos_ocf.health import ProblemKind
from berofos_ocf.manpage import cli_manpage
from berofos_ocf.runstate import InstanceState, RoleMarker, StateFile

from .conftest import PYTHON, ROOT, entries_for

PASSWORD = "pw-Zq81"


def berofos(*args: str, stdin: str | None = None, env: dict | None = None,
            timeout: float = 60, no_terminal: bool = False) -> subprocess.CompletedProcess:
    """``berofos ARGS`` as a process; ``no_terminal``: in a session of its own, without a
    controlling terminal (as from cron or a pipeline started by a service)."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    environment.update(env or {})
    return subprocess.run([PYTHON, "-m", "berofos_ocf", *args], cwd=ROOT, capture_output=True,
                          text=True, input=stdin, env=environment, timeout=timeout,
                          start_new_session=no_terminal)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert result.returncode == code, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 1 and all(line.startswith("berofos: ") for line in lines), result.stderr
    assert "Traceback" not in result.stderr
    assert text in result.stderr


@pytest.fixture
def two_devices(emulator_process, tmp_path):
    """Two protected emulated devices and a bnfos.conf naming both."""
    emulator = emulator_process(devices=2, extra=["--password", PASSWORD])
    conf = emulator.write_conf(tmp_path / "bnfos.conf", password=PASSWORD)
    return emulator, str(conf)


def test_status_switch_status(two_devices):
    emulator, conf = two_devices
    before = berofos("-c", conf, "status")
    assert before.returncode == 0, before.stderr
    rows = before.stdout.splitlines()
    # issue 9: the table fits 80 columns; reachability is in STATE (details with -v)
    assert rows[0].split()[:4] == ["DEVICE", "ADDRESS", "RELAYS", "POWER-ON"]
    assert [row.split()[2] for row in rows[1:]] == ["A--B", "A--B"]

    switched = berofos("-c", conf, "switch", "slave")
    assert switched.returncode == 0, switched.stderr
    assert switched.stdout.count("relays A--B -> A--D (confirmed)") == 2

    after = berofos("-c", conf, "status", "--json")
    assert [d["relays"] for d in json.loads(after.stdout)] == ["A--D", "A--D"]
    log = emulator.relay_log()
    assert sorted((e["device"], e["old"], e["new"]) for e in log) == [
        ("fos1", 1, 0), ("fos2", 1, 0)]
    file_lines = emulator.relay_log_file.read_text().splitlines()
    assert len(file_lines) == 2 and all("A--B -> A--D (http)" in line for line in file_lines)


def test_switch_again_changes_nothing(two_devices):
    emulator, conf = two_devices
    result = berofos("-c", conf, "switch", "master")
    assert result.returncode == 0
    assert result.stdout.count("relays already A--B") == 2
    assert emulator.relay_log() == []


def test_device_selection_before_and_after_the_command(two_devices):
    emulator, conf = two_devices
    first = berofos("-c", conf, "-f", "fos2", "switch", "d")
    second = berofos("switch", "d", "-c", conf, "-f", "FOS2")
    assert first.returncode == second.returncode == 0
    assert "fos1" not in first.stdout + second.stdout
    assert [e["device"] for e in emulator.relay_log()] == ["fos2"]


def test_status_with_one_device_down(two_devices):
    emulator, conf = two_devices
    emulator.control.power("fos2", "off")
    result = berofos("-c", conf, "status")
    assert result.returncode == 1
    fos2 = [row for row in result.stdout.splitlines() if row.startswith("fos2")][0]
    assert fos2.endswith(" unreachable")  # issue 9: the STATE column says what it is
    assert "Traceback" not in result.stderr


def test_switch_fails_loudly_when_a_device_cannot_be_moved(two_devices):
    emulator, conf = two_devices
    emulator.control.fault("fos2", "ignore-writes")
    result = berofos("-c", conf, "switch", "slave", "--wait", "2")
    assert_one_line_error(result, 1, "fos2")
    assert "did not reach A--D" in result.stderr
    assert "fos1 (127.0.0.1" in result.stdout  # the other device was still switched


def test_set_then_get(two_devices):
    _, conf = two_devices
    result = berofos("-c", conf, "set", "wdog=0", "wdogdef=0", "scenario=0", "mode=1",
                     "modedef=1", "wdogitime=45")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(confirmed)") == 2
    got = berofos("-c", conf, "-f", "fos1", "get", "wdogitime", "modedef", "wdog")
    assert got.stdout.splitlines() == ["wdogitime = 45", "modedef = 1 (A--B)", "wdog = no"]
    as_json = json.loads(berofos("-c", conf, "get", "wdogitime", "--json").stdout)
    # issue 9: one JSON shape for every command, a list of device records
    assert [(r["name"], r["ok"], r["values"]) for r in as_json] == [
        ("fos1", True, {"wdogitime": 45}), ("fos2", True, {"wdogitime": 45})]


def test_show_lists_every_value(two_devices):
    _, conf = two_devices
    result = berofos("-c", conf, "-f", "fos1", "show")
    assert result.stdout.startswith("Configuration of fos1 (127.0.0.1:")
    assert " wdogitime = 60" in result.stdout and " mode      = 1 (A--B)" in result.stdout
    assert PASSWORD not in result.stdout


@pytest.mark.parametrize("args, text", [
    (["set", "wdogitime=0"], "wdogitime: 0 is outside 1-65535"),
    (["set", "wdogstate=1"], "wdogstate is read-only"),
    (["set", "nonsense"], "'nonsense' is not KEY=VALUE"),
    (["set", "colour=red"], "unknown key 'colour'"),
    (["switch", "c"], "is not a relay position"),
    (["get", "apwd"], "apwd is write-only"),
    (["-f", "fos9", "status"], "no device [fos9]"),
    (["flash"], "the following arguments are required"),
    (["reset"], "add --yes"),
    (["netconf", "--ip", "10.0.0.1"], "this command works on one device"),
    (["--timeout", "-1", "status"], "must be more than 0"),
])
def test_usage_errors_exit_2_with_one_line(two_devices, args, text):
    _, conf = two_devices
    assert_one_line_error(berofos("-c", conf, *args), 2, text)


def test_missing_config_file(tmp_path):
    result = berofos("-c", str(tmp_path / "absent.conf"), "status")
    assert_one_line_error(result, 2, "absent.conf: file not found")


def test_config_syntax_error_names_the_line(tmp_path):
    conf = tmp_path / "bnfos.conf"
    conf.write_text("[fos1]\nhost = 10.0.0.1\nport = 80\n")
    assert_one_line_error(berofos("-c", str(conf), "status"), 2, "bnfos.conf:3: syntax error")


def test_wrong_password_is_a_device_failure_and_never_printed(emulator_process, tmp_path):
    emulator = emulator_process(extra=["--password", PASSWORD])
    conf = emulator.write_conf(tmp_path / "bnfos.conf", password="wrong-pw-77")
    result = berofos("-c", str(conf), "switch", "slave", "--wait", "5")
    assert_one_line_error(result, 1, "credentials rejected by fos1")
    assert "wrong-pw-77" not in result.stdout + result.stderr
    assert len(emulator.control.requests("fos1")) == 1  # not retried


def test_unreachable_device(tmp_path):
    conf = tmp_path / "bnfos.conf"
    conf.write_text("[fos1]\nmac = 00:19:32:00:12:1D\nhost = 127.0.0.1:9\n")
    result = berofos("-c", str(conf), "switch", "master", "--wait", "1")
    assert_one_line_error(result, 1, "fos1 (127.0.0.1:9): connection refused")


def test_host_and_login_from_the_environment(emulator_process):
    emulator = emulator_process(extra=["--password", PASSWORD])
    address = emulator.info["devices"][0]["address"]
    without = berofos("--host", address, "status")
    assert without.returncode == 1 and "no login is configured" in without.stdout
    with_login = berofos("--host", address, "status", env={"BEROFOS_LOGIN": f"admin:{PASSWORD}"})
    assert with_login.returncode == 0 and "A--B" in with_login.stdout


def test_password_command_protects_and_updates_the_file(emulator_process, tmp_path):
    emulator = emulator_process(devices=2)
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    result = berofos("-c", str(conf), "password", "--stdin", "--update-config",
                     stdin="n3w-secret\n")
    assert result.returncode == 0, result.stderr
    assert "n3w-secret" not in result.stdout + result.stderr
    assert all(d["settings"]["pwd"] for d in emulator.control.devices())
    assert [d.password for d in load_bnfos_conf(str(conf)).devices] == ["n3w-secret"] * 2
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    assert berofos("-c", str(conf), "status").returncode == 0


def test_password_update_keeps_a_latin1_comment_and_the_bom(emulator_process, tmp_path):
    emulator = emulator_process()
    conf = tmp_path / "bnfos.conf"
    text = render_bnfos_conf(emulator.entries()).encode()
    conf.write_bytes(b"\xef\xbb\xbf# r\xe9seau t\xe9l\xe9phonique\n" + text)
    result = berofos("-c", str(conf), "password", "--stdin", "--update-config",
                     stdin="n3w-secret\n")
    assert result.returncode == 0, result.stderr
    assert conf.read_bytes().startswith(b"\xef\xbb\xbf# r\xe9seau t\xe9l\xe9phonique\n")
    assert [d.password for d in load_bnfos_conf(str(conf)).devices] == ["n3w-secret"]


def test_password_update_that_cannot_be_written_says_what_to_do(emulator, tmp_path,
                                                               monkeypatch):
    conf = write_devices(tmp_path / "bnfos.conf", entries_for(emulator))

    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("berofos_ocf.cli.password.write_bnfos_conf", disk_full)
    status, out, err = run_main("-c", conf, "password", "--stdin", "--update-config",
                                stdin=io.StringIO("n3w-secret\n"))
    assert status == 2 and "password protection on" in out, (out, err)
    assert err == (f"berofos: error: {conf} not updated (no space left on device): fos1 now "
                   "take the new password: add 'login = admin:<the password>' to their "
                   "sections by hand\n")
    assert "n3w-secret" not in out + err


def test_password_update_writes_through_a_link_and_keeps_owner_group_mode(emulator_process,
                                                                         tmp_path):
    if os.geteuid() != 0:
        pytest.skip("giving a file to another owner and group needs root")
    emulator = emulator_process()
    (tmp_path / "etc").mkdir()
    target = emulator.write_conf(tmp_path / "etc" / "bnfos.conf")
    os.chown(target, 0, 1)  # root:daemon 0640, the cluster's group reads it
    target.chmod(0o640)
    link = tmp_path / "bnfos.conf"
    link.symlink_to(target)
    result = berofos("-c", str(link), "password", "--stdin", "--update-config",
                     stdin="n3w-secret\n")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert [d.password for d in load_bnfos_conf(str(target)).devices] == ["n3w-secret"]
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 1, 0o640)


def test_password_too_long(two_devices):
    _, conf = two_devices
    result = berofos("-c", conf, "password", "--stdin", stdin="x" * 16 + "\n")
    assert_one_line_error(result, 2, "limited to 15 characters")


def test_scan_and_write_the_file(emulator_process, tmp_path):
    emulator = emulator_process(devices=2)
    conf = tmp_path / "bnfos.conf"
    conf.write_text(f"[pbx-fos]\nmac = {emulator.info['devices'][1]['mac']}\n"
                    "host = 10.9.9.9\nlogin = admin:kept\n")
    conf.chmod(0o644)
    result = berofos("--udp-port", str(emulator.udp_port), "scan", "--to", "127.0.0.1",
                     "--window", "0.5", "--write", str(conf), "--yes")
    assert result.returncode == 0, result.stderr
    assert "2 devices found." in result.stdout
    assert "pbx-fos (" in result.stdout and "address 10.9.9.9 -> 127.0.0.1:" in result.stdout
    devices = load_bnfos_conf(str(conf)).devices
    assert [(d.name, d.address, d.password) for d in devices] == [
        ("pbx-fos", emulator.info["devices"][1]["address"], "kept"),
        ("fos1", emulator.info["devices"][0]["address"], None)]
    assert oct(conf.stat().st_mode & 0o777) == "0o640"  # a password: not for others
    assert berofos("-c", str(conf), "-f", "fos1", "status").returncode == 0


def test_scan_json(emulator_process):
    emulator = emulator_process()
    result = berofos("--udp-port", str(emulator.udp_port), "scan", "--to", "127.0.0.1",
                     "--window", "0.3", "--json")
    (device,) = json.loads(result.stdout)
    assert device["firmware"] == "1.53" and device["flash_mode"] is False


def test_netconf_keeps_what_is_not_given(emulator_process, tmp_path):
    emulator = emulator_process()
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    result = berofos("-c", str(conf), "--udp-port", str(emulator.udp_port), "netconf",
                     "-g", "127.0.0.254", "--dhcp", "no")
    assert result.returncode == 0, result.stderr
    values = emulator.control.device("fos1")["settings"]
    assert values["gateway"] == "127.0.0.254" and values["address"] == "127.0.0.1"
    assert values["dhcp"] is False


def test_flash_shows_progress_and_lands(emulator_process, tmp_path):
    emulator = emulator_process()
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    image = tmp_path / "bnfos_v153.bin"
    image.write_bytes(bytes(range(256)) * 9)  # 2304 bytes: 5 pages
    refused = berofos("-c", str(conf), "--udp-port", str(emulator.udp_port), "flash", str(image))
    assert_one_line_error(refused, 1, "not in flash mode")
    emulator.control.flash_mode("fos1", True)
    # issue 9: flashing asks first; without a terminal, --yes
    result = berofos("-c", str(conf), "--udp-port", str(emulator.udp_port), "flash", str(image),
                     "--yes")
    assert result.returncode == 0, result.stderr
    assert "5/5 pages" in result.stderr and "5 pages flashed" in result.stdout
    assert emulator.control.device("fos1")["image"]["pages"] == 5


def test_ping_and_kick(two_devices):
    emulator, conf = two_devices
    port = str(emulator.udp_port)
    ping = berofos("-c", conf, "--udp-port", port, "ping")
    assert ping.returncode == 0 and ping.stdout.count("answer in") == 2
    kick = berofos("-c", conf, "--udp-port", port, "kick", "--count", "2", "--interval", "0.1")
    assert kick.returncode == 0 and kick.stdout.count("watchdog kicked") == 4


def test_ping_without_answer(two_devices):
    emulator, conf = two_devices
    emulator.control.power("fos1", "off")
    result = berofos("-c", conf, "--udp-port", str(emulator.udp_port), "-t", "0.5", "ping")
    assert_one_line_error(result, 1, "no answer to ping")


def test_keys_lists_the_table():
    result = berofos("keys")
    assert result.returncode == 0
    assert any(line.split()[:2] == ["mode", "rw"] for line in result.stdout.splitlines())


def test_python_dash_m_and_help():
    result = berofos("--help")
    assert result.returncode == 0 and "switch" in result.stdout


def test_netconf_with_every_option_keeps_protection(emulator_process, tmp_path):
    emulator = emulator_process(extra=["--password", PASSWORD])
    conf = emulator.write_conf(tmp_path / "bnfos.conf", password=PASSWORD)
    result = berofos("-c", str(conf), "--udp-port", str(emulator.udp_port), "netconf",
                     "-i", "127.0.0.1", "-n", "255.0.0.0", "-g", "127.0.0.254", "-d", "no",
                     "-p", str(emulator.entries()[0].port), "--phy", "100")
    assert result.returncode == 0, result.stderr
    assert "link 100M" in result.stdout
    described = emulator.control.device("fos1")
    assert described["settings"]["netmask"] == "255.0.0.0"
    assert described["settings"]["pwd"] is True  # the HTTP-auth bit was sent back as it was


def test_set_mode_waits_for_relays_that_move_late(emulator_process, tmp_path):
    emulator = emulator_process(extra=["--relay-delay", "0.8"])
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    result = berofos("-c", str(conf), "set", "mode=0", "modedef=0")
    assert result.returncode == 0, result.stderr
    assert "(confirmed)" in result.stdout and emulator.control.device("fos1")["relay_mode"] == 0


@pytest.mark.parametrize("assignment, text", [
    ("apwd=secret", "use 'berofos password'"),
    ("pwd=1", "would lock you out"),
])
def test_set_refuses_what_belongs_to_the_password_command(emulator_process, tmp_path,
                                                         assignment, text):
    emulator = emulator_process()
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    assert_one_line_error(berofos("-c", str(conf), "set", assignment), 2, text)
    assert emulator.control.requests("fos1") == []


def test_password_with_blanks_is_refused(two_devices):
    _, conf = two_devices
    result = berofos("-c", conf, "password", "--stdin", stdin="trailing \n")
    assert_one_line_error(result, 2, "must not begin or end with blanks")


def test_reset_erases_a_device_in_flash_mode(emulator_process, tmp_path):
    emulator = emulator_process()
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    emulator.control.flash_mode("fos1", True)
    result = berofos("-c", str(conf), "--udp-port", str(emulator.udp_port), "reset", "--yes")
    assert result.returncode == 0, result.stderr
    assert emulator.control.device("fos1")["firmware"] == "0.0"


def test_status_row_of_an_unreachable_device_names_the_problem(two_devices):
    emulator, conf = two_devices
    emulator.control.power("fos2", "off")
    rows = berofos("-c", conf, "status").stdout.splitlines()
    # issue 9: an 80-column table, its STATE column, then each problem in words
    assert rows[0].split()[-1] == "STATE"
    fos2 = [row for row in rows if row.startswith("fos2")][0]
    assert fos2.split()[2:] == ["-", "-", "-", "unreachable"]
    words = [row for row in rows if row.startswith("fos2 (")][0]
    assert "connection reset" in words or "without answering" in words


def test_status_of_a_device_without_a_relay_mode_fails(two_devices):
    emulator, conf = two_devices
    emulator.control.fault("fos1", "truncate")
    result = berofos("-c", conf, "-f", "fos1", "status")
    assert result.returncode == 1
    assert "answer not usable: config.txt has no 4_mode line" in result.stdout


def test_huge_numbers_are_usage_errors(two_devices):
    _, conf = two_devices
    assert_one_line_error(berofos("-c", conf, "set", "wdogitime=" + "9" * 5000), 2,
                          "is not a number")


def test_scan_write_checks_the_file_before_scanning(emulator_process, tmp_path):
    emulator = emulator_process()
    result = berofos("--udp-port", str(emulator.udp_port), "scan", "--to", "127.0.0.1",
                     "--write", str(tmp_path / "missing-dir" / "bnfos.conf"))
    assert_one_line_error(result, 2, "not writable")


def test_missing_device_file_says_how_to_make_one(tmp_path):
    result = berofos("-c", str(tmp_path / "bnfos.conf"), "switch", "master")
    assert_one_line_error(result, 2, "berofos scan --write")


def test_udp_timeout_suggests_a_broadcast(two_devices):
    emulator, conf = two_devices
    emulator.control.power("fos1", "off")
    result = berofos("-c", conf, "-f", "fos1", "--udp-port", str(emulator.udp_port), "-t", "0.3",
                     "netconf", "-i", "127.0.0.1")
    assert_one_line_error(result, 1, "try --to 255.255.255.255")


# -- check: the corosync-qdevice heuristic, in process ------------------------------------


def run_main(*argv: str, environ: dict | None = None, stdin=None) -> tuple[int, str, str]:
    """``berofos ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err, stdin=stdin, environ=environ or {})
    return status, out.getvalue(), err.getvalue()


def closed_port() -> int:
    """A TCP port on 127.0.0.1 where nobody listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pair():
    """Two protected emulated devices in this process, relays A--B."""
    with Emulator([("127.0.0.1", 0), ("127.0.0.1", 0)], udp_port=None,
                  password=PASSWORD) as running:
        yield running


def write_devices(path, devices: list[DeviceEntry]) -> str:
    path.write_text(render_bnfos_conf(devices))
    path.chmod(0o600)
    return str(path)


def promote_here(state_dir, conf: str, own_mode: int, role: str = "promoted") -> str:
    """The files the agent leaves when instance isdn is promoted on node1."""
    state_dir.mkdir(exist_ok=True)
    RoleMarker(str(state_dir), "isdn").write(role)
    StateFile(str(state_dir), "isdn").write(InstanceState(
        config=conf, devices=["fos1", "fos2"], own_mode=own_mode, node="node1"))
    return str(state_dir)


def test_check_passes_silently_when_every_device_answers(pair, tmp_path):
    conf = write_devices(tmp_path / "bnfos.conf", entries_for(pair, password=PASSWORD))
    assert run_main("-c", conf, "check") == (0, "", "")


def test_check_names_the_device_that_is_down(pair, tmp_path):
    fos1, _ = entries_for(pair, password=PASSWORD)
    port = closed_port()
    down = DeviceEntry("fos2", host="127.0.0.1", port=port, user="admin", password=PASSWORD)
    conf = write_devices(tmp_path / "bnfos.conf", [fos1, down])
    status, out, err = run_main("-c", conf, "check", "--wait", "2")
    assert (status, out) == (1, "")
    assert err == f"berofos: fos2 (127.0.0.1:{port}): connection refused\n"


def test_check_names_the_device_that_rejects_the_password(pair, tmp_path):
    fos1, fos2 = entries_for(pair, password=PASSWORD)
    fos2.password = "wrong-pw-31"
    conf = write_devices(tmp_path / "bnfos.conf", [fos1, fos2])
    status, out, err = run_main("-c", conf, "check")
    assert (status, out) == (1, "")
    assert err.startswith("berofos: credentials rejected by fos2 (127.0.0.1:")
    assert len(err.splitlines()) == 1 and "wrong-pw-31" not in err


def test_check_of_a_hanging_device_ends_within_wait(pair, tmp_path):
    conf = write_devices(tmp_path / "bnfos.conf", entries_for(pair, password=PASSWORD))
    pair.devices[0].add_fault(Fault("hang"))
    started = time.monotonic()
    status, _, err = run_main("-c", conf, "-t", "10", "check", "--wait", "1")
    assert time.monotonic() - started < 1 + 1.5  # bounded by --wait, not by -t
    assert status == 1 and err.startswith("berofos: fos1 (127.0.0.1:")
    assert len(err.splitlines()) == 1


def test_check_holder_without_a_promoted_instance_fails(pair, tmp_path):
    conf = write_devices(tmp_path / "bnfos.conf", entries_for(pair, password=PASSWORD))
    for state_dir in (tmp_path / "absent", promote_here(tmp_path / "run", conf, 1,
                                                         role="unpromoted")):
        status, out, err = run_main("check", "--holder", "--state-dir", str(state_dir))
        assert (status, out) == (1, "")
        assert err == ("berofos: this node holds no lines: no berofos resource is "
                       "promoted here\n")


@pytest.mark.parametrize("how", ["--state-dir", "HA_RSCTMP"])
def test_check_holder_passes_where_the_relays_connect_this_node(pair, tmp_path, how):
    conf = write_devices(tmp_path / "bnfos.conf", entries_for(pair, password=PASSWORD))
    state_dir = promote_here(tmp_path / "run", conf, own_mode=1)  # the devices are at A--B
    if how == "HA_RSCTMP":
        assert run_main("check", "--holder", environ={"HA_RSCTMP": state_dir}) == (0, "", "")
    else:
        assert run_main("check", "--holder", "--state-dir", state_dir) == (0, "", "")


def test_check_holder_fails_where_the_relays_connect_the_other_node(pair, tmp_path):
    conf = write_devices(tmp_path / "bnfos.conf", entries_for(pair, password=PASSWORD))
    pair.devices[1].operator_set({"mode": 0})
    state_dir = promote_here(tmp_path / "run", conf, own_mode=1)
    status, out, err = run_main("check", "--holder", "--state-dir", state_dir)
    assert (status, out) == (1, "")
    assert err == (f"berofos: {pair.devices[1].name} (127.0.0.1:{pair.devices[1].listen[1]}): "
                   "relays at A--D, this node is on A--B\n")


@pytest.mark.parametrize("selection", [["-c", "x.conf"], ["-f", "fos1"],
                                       ["--host", "127.0.0.1"]])
def test_check_holder_refuses_a_device_selection(tmp_path, selection):
    status, _, err = run_main(*selection, "check", "--holder", "--state-dir", str(tmp_path))
    assert status == 2 and "takes its devices from the agent's state" in err
    assert selection[0] in err


# -- scan --write: hand-written files, forged replies --------------------------------------


class Terminal(io.StringIO):
    """Standard input as if typed at a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def scanned():
    """Two emulated devices with GBL4 on loopback, in this process."""
    with Emulator([("127.0.0.1", 0), ("127.0.0.1", 0)], udp_port=0) as running:
        yield running


def scan_write(emulator: Emulator, conf, *extra: str, stdin=None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["--udp-port", str(emulator.udp_port), "scan", "--to", "127.0.0.1",
                   "--window", "0.3", "--write", str(conf), *extra], stdout=out, stderr=err,
                  stdin=stdin or io.StringIO(""), environ={})
    return status, out.getvalue(), err.getvalue()


def test_scan_write_matches_a_section_without_mac_by_its_host(scanned, tmp_path):
    first, second = entries_for(scanned)
    conf = tmp_path / "bnfos.conf"
    conf.write_text(f"[pbxfos]\nhost = {second.address}\nlogin = admin:kept\n")
    status, out, err = scan_write(scanned, conf)
    assert (status, err) == (0, "")
    devices = load_bnfos_conf(str(conf)).devices
    assert [(d.name, d.mac, d.address, d.password) for d in devices] == [
        ("pbxfos", second.mac, second.address, "kept"),
        ("fos1", first.mac, first.address, None)]
    assert f"{conf}: 2 device(s) written" in out


def test_scan_write_counts_what_the_file_holds(scanned, tmp_path):
    conf = tmp_path / "bnfos.conf"
    conf.write_text("[away]\nmac = 02:00:00:00:00:01\nhost = 10.0.0.1\n")
    status, out, _ = scan_write(scanned, conf)
    assert status == 0 and f"{conf}: 3 device(s) written" in out
    assert [d.name for d in load_bnfos_conf(str(conf)).devices] == ["away", "fos1", "fos2"]


def test_scan_write_that_finds_nothing_writes_nothing(tmp_path):
    conf = tmp_path / "bnfos.conf"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # a device that never answers
        out, err = io.StringIO(), io.StringIO()
        status = main(["--udp-port", str(silent.getsockname()[1]), "scan", "--to", "127.0.0.1",
                       "--window", "0.2", "--write", str(conf)], stdout=out, stderr=err,
                      environ={})
    assert status == 1 and not conf.exists()
    assert err.getvalue() == f"berofos: no device answered: {conf} left as it was\n"


def moved_device_file(emulator: Emulator, path) -> str:
    """A file that knows fos1 by its MAC, at an address it is not at."""
    first, _ = entries_for(emulator)
    path.write_text(f"[fos1]\nmac = {first.mac}\nhost = 10.9.9.9\nlogin = admin:pw\n")
    path.chmod(0o600)
    return first.address


def test_scan_write_without_terminal_keeps_a_known_address(scanned, tmp_path):
    conf = tmp_path / "bnfos.conf"
    seen = moved_device_file(scanned, conf)
    status, _, err = scan_write(scanned, conf)
    assert status == 1
    assert err == (f"berofos: fos1 ({entries_for(scanned)[0].mac}): address 10.9.9.9 -> {seen} "
                   "refused, 10.9.9.9 kept (add --yes to accept)\n")
    other = entries_for(scanned)[1].address
    assert [d.address for d in load_bnfos_conf(str(conf)).devices] == ["10.9.9.9", other]


@pytest.mark.parametrize("extra, answer, accepted", [
    (["--yes"], "", True), ([], "y\n", True), ([], "n\n", False), ([], "\n", False)])
def test_scan_write_asks_before_moving_a_known_device(scanned, tmp_path, extra, answer,
                                                      accepted):
    conf = tmp_path / "bnfos.conf"
    seen = moved_device_file(scanned, conf)
    status, out, _ = scan_write(scanned, conf, *extra, stdin=Terminal(answer))
    assert f"fos1 ({entries_for(scanned)[0].mac}): address 10.9.9.9 -> {seen}" in out
    assert ("accept? [y/N]" in out) is not bool(extra)
    fos1 = load_bnfos_conf(str(conf)).devices[0]
    assert (fos1.address, fos1.password) == (seen if accepted else "10.9.9.9", "pw")
    assert status == (0 if accepted else 1)


# -- device text is shown escaped ----------------------------------------------------------

HOSTILE_CONFIG_TXT = (b"bnfos_confmap_magic=0.2\x1b[2J\n3_dn=fos\x1b]0;owned\x07\n4_mode=1\n"
                      b"2_wintv=60\x1b[31m\n9_x\x1b[1m=relays A--D -> A--B\rfake\n")


@contextlib.contextmanager
def config_server(body: bytes):
    """An HTTP server that answers every request with ``body``; yields its HOST:PORT."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hostile_device():
    """An HTTP server that answers config.txt with escape sequences and a CR in its values."""
    with config_server(HOSTILE_CONFIG_TXT) as address:
        yield address


@pytest.mark.parametrize("command", [["show"], ["status"], ["get", "hostname", "wdogitime"]])
def test_device_text_is_escaped(hostile_device, command):
    status, out, err = run_main("--host", hostile_device, *command)
    assert "\x1b" not in out + err and "\x07" not in out + err and "\r" not in out + err
    assert "\\x1b" in out


def test_show_escapes_what_the_device_prints(hostile_device):
    _, out, _ = run_main("--host", hostile_device, "show")
    assert " hostname  = fos\\x1b]0;owned\\x07" in out
    assert " wdogitime = '60\\x1b[31m' (not understood)" in out
    assert " 9_x\\x1b[1m= relays A--D -> A--B\\rfake (unknown line)" in out


# == issue 9: one judgement of a device, conventions, dead ends =============================
#
# Every test below fails on the command line before issue 9 (checked against its code).


def status_json(conf: str, *extra: str) -> tuple[int, list[dict]]:
    result = berofos("-c", conf, *extra, "status", "--json")
    return result.returncode, json.loads(result.stdout)


def kinds(records: list[dict]) -> dict[str, list[str]]:
    return {r["name"]: [p["kind"] for p in r["problems"]] for r in records}


@pytest.fixture
def open_pair(emulator_process, tmp_path):
    """Two emulated devices without password, their control, and a file naming both."""
    emulator = emulator_process(devices=2)
    return emulator, str(emulator.write_conf(tmp_path / "bnfos.conf"))


def test_status_after_the_watchdog_fired_names_both_problems_and_exits_1(open_pair):
    """The issue's own case: fos1's watchdog fired (A--D), fos2 at A--B."""
    emulator, conf = open_pair
    emulator.control.expire_watchdog("fos1")
    result = berofos("-c", conf, "status")
    assert result.returncode == 1, result
    lines = result.stdout.splitlines()
    assert lines[1].split()[2:] == ["A--D", "A--B", "fired", "2", "problems"]
    assert f"fos1 ({emulator.info['devices'][0]['address']}): hardware watchdog fired " \
           "(relays dropped to A--D)" in lines
    assert f"    fix: berofos -c {conf} -f fos1 set wdog=0 wdogdef=0" in lines
    assert f"    fix: berofos -c {conf} switch master" in lines  # power-on modes say A--B
    code, records = status_json(conf)
    assert code == 1
    assert kinds(records) == {"fos1": ["watchdog-fired", "relays-split"], "fos2": []}
    assert [r["ok"] for r in records] == [False, True]


def test_status_exit_0_when_nothing_needs_a_human(open_pair):
    _, conf = open_pair
    code, records = status_json(conf)
    assert code == 0 and kinds(records) == {"fos1": [], "fos2": []}


PROBLEMS = {  # kind: (how to cause it on fos2, the fix it must name)
    "unreachable": (lambda c: c.power("fos2", "off"), "scan --write"),
    "bad-answer": (lambda c: c.fault("fos2", "truncate"), None),
    "relays-split": (lambda c: c.set_values("fos2", mode=0), "switch master"),
    "watchdog-fired": (lambda c: c.expire_watchdog("fos2"), "-f fos2 set wdog=0 wdogdef=0"),
    "watchdog-enabled": (lambda c: c.set_values("fos2", wdogitime=3600, wdog=True),
                         "-f fos2 set wdog=0 wdogdef=0"),
    "watchdog-at-power-on": (lambda c: c.set_values("fos2", wdogdef=True),
                             "-f fos2 set wdogdef=0"),
    "bypass-scenario": (lambda c: c.set_values("fos2", scenario=1), "-f fos2 set scenario=0"),
}


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
def test_status_exits_1_for_every_problem_kind_with_its_fix(open_pair, kind):
    emulator, conf = open_pair
    cause, fix = PROBLEMS[kind]
    cause(emulator.control)
    code, records = status_json(conf)
    assert code == 1
    assert kinds(records)["fos2"][:1] == [kind] and kinds(records)["fos1"] == []
    problem = records[1]["problems"][0]
    assert problem["words"] and (fix is None) == (problem["fix"] is None)
    if fix:
        assert problem["fix"].startswith("berofos ") and conf in problem["fix"]
        assert fix in problem["fix"]
    text = berofos("-c", conf, "status")
    assert text.returncode == 1 and f"fos2 ({records[1]['address']}): " in text.stdout


def test_status_says_login_rejected_not_unreachable(emulator_process, tmp_path):
    emulator = emulator_process(extra=["--password", PASSWORD])
    conf = str(emulator.write_conf(tmp_path / "bnfos.conf"))
    code, records = status_json(conf)
    assert code == 1 and kinds(records) == {"fos1": ["login-rejected"]}
    assert records[0]["problems"][0]["fix"] == f"berofos -c {conf} -f fos1 password " \
                                                "--update-config"
    row = berofos("-c", conf, "status").stdout.splitlines()[1]
    assert row.split()[-1] == "login-rejected"


def test_status_odd_answer_exits_1(hostile_device):
    status, out, _ = run_main("--host", hostile_device, "status", "--json")
    (record,) = json.loads(out)
    assert status == 1 and [p["kind"] for p in record["problems"]] == ["odd-answer"]
    assert "format 0.2" in record["problems"][0]["words"]


def test_status_table_fits_80_columns(emulator_process, tmp_path):
    emulator = emulator_process(devices=2, extra=["--set", "wdogdef=1", "--set", "scenario=1"])
    conf = str(emulator.write_conf(tmp_path / "bnfos.conf"))
    emulator.control.expire_watchdog("fos1")
    table = berofos("-c", conf, "status").stdout.split("\n\n")[0].splitlines()
    rows = [line for line in table if not line.startswith(("fos1 (", "fos2 (", "    fix"))]
    assert len(rows) == 3 and max(len(row) for row in rows) <= 80
    verbose = berofos("-c", conf, "-v", "status").stdout.splitlines()
    assert verbose[0].split()[-3:] == ["MAC", "SCENARIO", "PASSWORD"]


# -- 2. an unusable answer is an error, never a value --------------------------------------


@pytest.mark.parametrize("fault", ["truncate", "no-magic"])
@pytest.mark.parametrize("command", [["get", "mode", "wdogitime"], ["show"]])
def test_get_and_show_of_an_unusable_answer_exit_1(open_pair, fault, command):
    emulator, conf = open_pair
    emulator.control.fault("fos1", fault)
    result = berofos("-c", conf, "-f", "fos1", *command)
    assert_one_line_error(result, 1, "fos1 (127.0.0.1:")
    assert "(missing)" not in result.stdout + result.stderr


WATCHDOG_FIRED_CONFIG = (b"bnfos_confmap_magic=0.1\n4_mode=0\n1_rm=1\n6_wen=2\n2_wen=0\n"
                         b"6_wstate=2\n0_wretv=0\n")


def test_a_fired_watchdog_reads_as_the_firmware_prints_it():
    """After the watchdog fires, the firmware prints 6_wen from 6_wstate's value: 2."""
    with config_server(WATCHDOG_FIRED_CONFIG) as address:
        _, out, _ = run_main("--host", address, "show")
        assert " wdog      = no" in out and " wdogstate = 2 (failure)" in out
        assert "not understood" not in out
        status, out, _ = run_main("--host", address, "status", "--json")
        assert status == 1 and json.loads(out)[0]["watchdog"] == "fired"


# -- 3. a switch by hand on a live cluster -------------------------------------------------

CRM_MON = """<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml">
  <summary><cluster_options stonith-enabled="false" symmetric-cluster="true"
      no-quorum-policy="stop" maintenance-mode="{maintenance}" stop-all-resources="false"
      stonith-timeout-ms="60000" priority-fencing-delay-ms="0"/></summary>
  <resources>
    <resource id="dummy" resource_agent="ocf:pacemaker:Dummy" role="Started" active="true"
        orphaned="false" managed="true" failed="false" failure_ignored="false"
        nodes_running_on="1"/>
    <clone id="isdn-clone" multi_state="true" unique="false" managed="{managed}"
        disabled="false" failed="false" failure_ignored="false">
      <resource id="isdn" resource_agent="ocf:{provider}:berofos" role="Promoted" active="true"
          orphaned="false" blocked="false" managed="{managed}" failed="false"
          failure_ignored="false" nodes_running_on="1"><node name="node1" id="1" cached="true"/>
      </resource>
    </clone>
  </resources>
  <status code="0" message="OK"/>
</pacemaker-result>
"""
CIB_RESOURCES = """<resources><clone id="isdn-clone"><primitive id="isdn" class="ocf"
  provider="mycompany" type="berofos"><instance_attributes id="isdn-ia">
  <nvpair id="isdn-ia-b" name="port_b" value="node1"/>
  <nvpair id="isdn-ia-d" name="port_d" value="node2"/></instance_attributes></primitive>
  </clone></resources>
"""


def fake_cluster_tools(tmp_path, crm_mon: str | None, status: int = 0) -> dict:
    """An environment whose crm_mon and cibadmin answer like a cluster node's."""
    bin_dir = tmp_path / "fake-pacemaker"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("crm_mon", crm_mon or "not connected"), ("cibadmin", CIB_RESOURCES)):
        (bin_dir / f"{name}.out").write_text(text)
        (bin_dir / name).write_text(f"#!/bin/sh\ncat '{bin_dir}/{name}.out'\nexit {status}\n")
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def test_switch_refuses_while_pacemaker_manages_the_lines(two_devices, tmp_path):
    emulator, conf = two_devices
    env = fake_cluster_tools(tmp_path, CRM_MON.format(maintenance="false", managed="true",
                                                      provider="mycompany"))
    result = berofos("-c", conf, "switch", "slave", env=env)
    assert_one_line_error(result, 2, "pcs resource move isdn-clone node2 --promoted")
    assert "maintenance-mode=true" in result.stderr and "--force" in result.stderr
    assert emulator.relay_log() == []
    forced = berofos("-c", conf, "switch", "slave", "--force", env=env)
    assert forced.returncode == 0 and len(emulator.relay_log()) == 2


def test_set_refuses_the_relays_while_pacemaker_manages_the_lines(two_devices, tmp_path):
    emulator, conf = two_devices
    env = fake_cluster_tools(tmp_path, CRM_MON.format(maintenance="false", managed="true",
                                                      provider="berofos"))
    for assignment in ("mode=0", "modedef=0"):
        result = berofos("-c", conf, "set", assignment, env=env)
        assert_one_line_error(result, 2, "--promoted")
    assert emulator.relay_log() == []
    assert berofos("-c", conf, "set", "wdogitime=60", env=env).returncode == 0  # not relays
    forced = berofos("-c", conf, "set", "mode=0", "modedef=0", "--force", env=env)
    assert forced.returncode == 0 and len(emulator.relay_log()) == 2


@pytest.mark.parametrize("maintenance, managed, status", [
    ("true", "true", 0),    # maintenance mode: switching by hand is what it is for
    ("false", "false", 0),  # is-managed=false, or the node in maintenance
    ("false", "true", 102),  # crm_mon: not connected (no cluster running here)
])
def test_switch_is_allowed_where_the_cluster_does_not_manage_the_lines(two_devices, tmp_path,
                                                                       maintenance, managed,
                                                                       status):
    emulator, conf = two_devices
    env = fake_cluster_tools(tmp_path, CRM_MON.format(maintenance=maintenance, managed=managed,
                                                      provider="berofos"), status)
    result = berofos("-c", conf, "switch", "slave", env=env)
    assert result.returncode == 0, result.stderr
    assert len(emulator.relay_log()) == 2


def test_switch_asks_pacemaker_through_the_injected_runner(pair, tmp_path):
    conf = write_devices(tmp_path / "bnfos.conf", entries_for(pair, password=PASSWORD))
    asked = []

    def runner(argv, timeout):
        asked.append(argv[0])
        if argv[0] == "crm_mon":
            return 0, CRM_MON.format(maintenance="false", managed="true", provider="x"), ""
        return 1, "", "cibadmin: no connection"

    out, err = io.StringIO(), io.StringIO()
    status = main(["-c", conf, "switch", "master"], stdout=out, stderr=err, environ={},
                  runner=runner)
    assert status == 2 and asked == ["crm_mon", "cibadmin"]
    assert "'pcs resource move isdn-clone NODE --promoted'" in err.getvalue()


# -- 4. password: no terminal, Ctrl-D, a protected device the file has no login for --------


def at_terminal(*args: str, keys: bytes = b"", after: bytes = b"", env: dict | None = None,
                timeout: float = 30) -> tuple[int, str]:
    """``berofos ARGS`` on a terminal (a pty): ``keys`` are typed once ``after`` shows."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                   "TERM": "xterm", **(env or {})}
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.chdir(ROOT)
        os.execve(PYTHON, [PYTHON, "-m", "berofos_ocf", *args], environment)
    output, typed, deadline = b"", not keys, time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not typed and after in output:
            os.write(fd, keys)
            typed = True
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_password_without_a_terminal_points_at_stdin(two_devices):
    _, conf = two_devices
    result = berofos("-c", conf, "password", stdin="", no_terminal=True)
    assert_one_line_error(result, 2, "--stdin")


def test_password_ended_with_ctrl_d_points_at_stdin(two_devices):
    _, conf = two_devices
    status, output = at_terminal("-c", conf, "password", keys=b"\x04", after=b"password: ")
    assert status == 2, output
    assert "Traceback" not in output and "EOFError" not in output
    assert "berofos: error: no password typed (end of input)" in output and "--stdin" in output


def protected_without_login(emulator_process, tmp_path):
    emulator = emulator_process(extra=["--password", PASSWORD])
    return emulator, emulator.write_conf(tmp_path / "bnfos.conf")  # no login line


def test_password_update_config_takes_the_current_password(emulator_process, tmp_path):
    emulator, conf = protected_without_login(emulator_process, tmp_path)
    result = berofos("-c", str(conf), "password", "--stdin", "--update-config",
                     stdin=f"n3w-secret\n{PASSWORD}\n")
    assert result.returncode == 0, result.stderr
    assert [d.password for d in load_bnfos_conf(str(conf)).devices] == ["n3w-secret"]
    assert berofos("-c", str(conf), "status").returncode == 0
    assert PASSWORD not in result.stdout + result.stderr


def test_password_of_a_protected_device_without_login_says_how(emulator_process, tmp_path):
    emulator, conf = protected_without_login(emulator_process, tmp_path)
    result = berofos("-c", str(conf), "password", "--stdin", "--update-config",
                     stdin="n3w-secret\n")
    assert_one_line_error(result, 2, "password protection is on and no login is given")
    assert f"add 'login = admin:<its password>' to its section in {conf}" in result.stderr
    assert "second line of --stdin" in result.stderr
    assert [r["path"] for r in emulator.control.requests("fos1")] == ["/config.txt"]


def test_password_with_host_names_berofos_login(emulator_process):
    emulator = emulator_process(extra=["--password", PASSWORD])
    address = emulator.info["devices"][0]["address"]
    result = berofos("--host", address, "password", "--stdin", stdin="n3w-secret\n")
    assert_one_line_error(result, 2, "set BEROFOS_LOGIN=admin:<its password>")
    wrong = berofos("--host", address, "password", "--stdin", stdin="n3w-secret\n",
                    env={"BEROFOS_LOGIN": "admin:wrong-pw-5"})
    assert_one_line_error(wrong, 1, "login rejected: correct BEROFOS_LOGIN")
    assert "wrong-pw-5" not in wrong.stderr


def test_a_wrong_current_password_changes_nothing(emulator_process, tmp_path):
    emulator, conf = protected_without_login(emulator_process, tmp_path)
    result = berofos("-c", str(conf), "password", "--stdin", stdin="n3w-secret\nnot-it\n")
    assert_one_line_error(result, 1, "login rejected: that is not its current password; "
                                     "nothing changed")
    assert not any(r["path"].startswith("/?") for r in emulator.control.requests("fos1"))


@pytest.mark.parametrize("login", ["admin", "adminsecret"])
def test_a_login_without_a_colon_is_an_error(two_devices, tmp_path, login):
    emulator, _ = two_devices
    conf = tmp_path / "colon.conf"
    fos1 = emulator.entries()[0]
    conf.write_text(f"[fos1]\nmac = {fos1.mac}\nhost = {fos1.address}\nlogin = {login}\n")
    assert_one_line_error(berofos("-c", str(conf), "status"), 2,
                          "colon.conf:4: login must be USER:PASSWORD")
    assert_one_line_error(berofos("--host", fos1.address, "status",
                                  env={"BEROFOS_LOGIN": login}), 2,
                          "BEROFOS_LOGIN must be USER:PASSWORD")


# -- 4. flash: the image checked, asked first, a stop half-way said ------------------------


@pytest.mark.parametrize("content, text", [
    (b"<html><body>Download bnfos_v153.bin</body></html>\n" * 40, "a text file"),
    (b"PK\x03\x04" + bytes(range(256)) * 8, "a ZIP archive"),
    (bytes(range(256)), "256 bytes: a firmware image has 1024 to"),
])
def test_flash_refuses_what_is_no_firmware(emulator_process, tmp_path, content, text):
    emulator = emulator_process()
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    emulator.control.flash_mode("fos1", True)
    image = tmp_path / "bnfos_v153.bin"
    image.write_bytes(content)
    result = berofos("-c", str(conf), "--udp-port", str(emulator.udp_port), "flash", str(image),
                     "--yes")
    assert_one_line_error(result, 2, f"is no berofos firmware: {text}")
    assert emulator.control.device("fos1")["image"] is None


def test_flash_without_a_terminal_asks_for_yes(emulator_process, tmp_path):
    emulator = emulator_process()
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    emulator.control.flash_mode("fos1", True)
    image = tmp_path / "bnfos_v153.bin"
    image.write_bytes(bytes(range(256)) * 9)
    result = berofos("-c", str(conf), "--udp-port", str(emulator.udp_port), "flash", str(image))
    assert_one_line_error(result, 2, "add --yes")
    assert emulator.control.device("fos1")["image"] is None


class SilentAfterPages:
    """A berofos in flash mode on UDP that stops answering after ``pages`` pages."""

    MAC = bytes.fromhex("00193200991d")

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.silent = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                datagram, sender = self.sock.recvfrom(2048)
            except OSError:
                return
            request = decode_request(datagram)
            reply = None
            if isinstance(request, ScanRequest):
                reply = ScanReply(self.MAC, 0x50, (1, 2), (1, 53), 1, "127.0.0.1", "255.0.0.0",
                                  "0.0.0.0", 3, 7, 0, 80)
            elif isinstance(request, FlashPrepare):
                reply = AnyReply(Command.FLASH_PREPARE, self.MAC)
            elif isinstance(request, FlashPage) and request.page < self.pages:
                reply = AnyReply(Command.FLASH_PAGE, self.MAC + request.page.to_bytes(2, "big"))
            elif isinstance(request, FlashPage):
                self.silent.set()
            if reply is not None:
                self.sock.sendto(reply.encode(), sender)

    def conf(self, path) -> str:
        path.write_text(f"[fos1]\nmac = {format_mac(self.MAC)}\nhost = 127.0.0.1\n")
        return str(path)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "bnfos_v153.bin"
    path.write_bytes(bytes((i * 7 + 3) % 256 for i in range(20 * 512)))
    return str(path)


def test_flash_stopped_by_an_error_says_to_flash_again(tmp_path, image):
    device = SilentAfterPages(3)
    try:
        conf = device.conf(tmp_path / "bnfos.conf")
        result = berofos("-c", conf, "--udp-port", str(device.port), "-t", "0.3", "flash",
                         image, "--yes")
    finally:
        device.close()
    assert_one_line_error(result, 1, "no answer to flash page 3")
    assert (f"stays in flash mode without a complete firmware: flash it again ('berofos -c "
            f"{conf} -f fos1 flash {image}') before any power cycle") in result.stderr


def test_flash_interrupted_says_to_flash_again(tmp_path, image):
    device = SilentAfterPages(3)
    try:
        conf = device.conf(tmp_path / "bnfos.conf")
        process = subprocess.Popen([PYTHON, "-m", "berofos_ocf", "-c", conf, "--udp-port",
                                    str(device.port), "-t", "20", "flash", image, "--yes"],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        assert device.silent.wait(20)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        device.close()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("berofos: flashing interrupted: fos1 (127.0.0.1)")
    assert "before any power cycle" in err


def test_progress_redraws_a_few_times_a_second_with_the_time_left():
    now = [100.0]
    out = io.StringIO()
    bar = Progress(out, "flashing fos1", "pages", live=True, interval=0.25, clock=lambda: now[0])
    for page in range(1, 101):
        now[0] += 0.01  # 100 pages a second
        bar.update(page, 100)
    draws = out.getvalue().split("\r")[1:]
    assert 3 <= len(draws) <= 6  # one second: a few redraws, not a hundred
    assert draws[0].endswith("1/100 pages, 0:01 left")
    assert draws[-1] == "flashing fos1: [" + "#" * 30 + "] 100/100 pages in 0:01\n"


# -- 4. netconf: netmask, gateway, the file to record the address in ------------------------


@pytest.mark.parametrize("options, text", [
    (["-n", "255.0.255.0"], "netmask 255.0.255.0 is not contiguous"),
    (["-i", "10.1.2.3", "-n", "255.255.255.0", "-g", "10.1.3.1"],
     "gateway 10.1.3.1 is outside 10.1.2.3/24"),
    (["-i", "10.1.2.3", "-g", "127.0.0.254"], "gateway 127.0.0.254 is outside 10.1.2.3/24"),
])
def test_netconf_refuses_a_network_that_cannot_work(emulator_process, tmp_path, options, text):
    emulator = emulator_process()
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    emulator.control.set_values("fos1", gateway="127.0.0.254")
    result = berofos("-c", str(conf), "--udp-port", str(emulator.udp_port), "netconf",
                     *options)
    assert_one_line_error(result, 2, text)
    assert emulator.control.device("fos1")["settings"]["netmask"] == "255.255.255.0"


@pytest.mark.parametrize("flash_mode", [False, True])
def test_netconf_names_the_file_to_scan_into_and_follows_bnfos_on_flash_mode(
        emulator_process, tmp_path, flash_mode):
    emulator = emulator_process()
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    emulator.control.flash_mode("fos1", flash_mode)
    result = berofos("-c", str(conf), "--udp-port", str(emulator.udp_port), "netconf",
                     "-g", "127.0.0.254")
    assert result.returncode == 0, result.stderr
    assert emulator.control.device("fos1")["settings"]["gateway"] == "127.0.0.254"
    record = f"'berofos scan --to 127.0.0.1 --write {conf}' to record the new address"
    assert record in result.stdout
    assert ("power-cycle the device to leave flash mode" in result.stdout) is flash_mode


# -- 4. options that were silently ignored -------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def two_hosts():
    """One emulated device on 127.0.0.1 and one on 127.0.0.2, GBL4 on the same port."""
    with Emulator([("127.0.0.1", 0), ("127.0.0.2", 0)], udp_port=free_udp_port()) as running:
        yield running


def scan_macs(out: str) -> list[str]:
    return sorted(r["mac"] for r in json.loads(out) if r["ok"])


def test_scan_asks_every_to_address(two_hosts):
    status, out, _ = run_main("--udp-port", str(two_hosts.udp_port), "scan", "--to", "127.0.0.1",
                              "--to", "127.0.0.2", "--window", "0.3", "--json")
    assert status == 0 and scan_macs(out) == sorted(e.mac for e in entries_for(two_hosts))


def test_scan_with_a_file_asks_its_hosts(two_hosts, tmp_path):
    fos1, fos2 = entries_for(two_hosts)
    conf = write_devices(tmp_path / "bnfos.conf", [fos2])  # the one on 127.0.0.2
    status, out, _ = run_main("-c", conf, "--udp-port", str(two_hosts.udp_port), "scan",
                              "--window", "0.3", "--json")
    assert status == 0 and scan_macs(out) == [fos2.mac]
    assert json.loads(out)[0]["name"] == "fos2"
    fos2.host = "127.0.0.3"  # nothing answers there: a failure of that device
    conf = write_devices(tmp_path / "bnfos.conf", [fos1, fos2])
    status, _, err = run_main("-c", conf, "-f", "fos2", "--udp-port", str(two_hosts.udp_port),
                              "scan", "--window", "0.3")
    assert status == 1 and err == "berofos: fos2 (127.0.0.3:%d): no scan reply within 0.3 s\n" \
        % fos2.port


@pytest.mark.parametrize("args, text", [
    (["--host", "", "status"], "--host: '' is not a dotted-quad"),
    (["set", "mode=1", "mode=0"], "mode given twice"),
    (["-c", "a.conf", "status", "-c", "b.conf"], "--config given twice"),
    (["--udp-port", "50124", "status"], "--udp-port does not apply to 'status'"),
    (["--mac", "00:19:32:00:00:01", "status"], "--mac does not apply to 'status'"),
    (["--mac", "00:19:32:00:00:01", "ping"], "--mac goes with --host"),
    (["scan", "--yes"], "--yes goes with --write"),
    (["scan", "--to", "127.0.0.1", "-f", "fos1"], "either --to addresses or the devices"),
    (["ping", "--to", "127.0.0.1", "--to", "127.0.0.2"], "--to given twice"),
    (["-f", "fos1", "emulator"], "does not apply to 'emulator'"),
])
def test_options_that_were_ignored_are_errors(two_devices, args, text):
    emulator, conf = two_devices
    result = berofos("-c", conf, *args) if args[0] != "-c" else berofos(*args)
    assert_one_line_error(result, 2, text)
    assert all(r["path"] == "/config.txt" for r in emulator.control.requests("fos1"))


def test_set_mode_takes_the_words_of_switch(two_devices):
    emulator, conf = two_devices
    result = berofos("-c", conf, "set", "mode=slave", "modedef=d")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("mode=0 (A--D), modedef=0 (A--D) (confirmed)") == 2


def test_device_lists_take_spaces_and_commas_like_the_agent(two_devices):
    _, conf = two_devices
    for selection in (["-f", "fos1 fos2"], ["-f", "fos2,fos1"], ["-f", " fos1,, fos2 "]):
        result = berofos("-c", conf, *selection, "get", "mode")
        assert result.returncode == 0, result.stderr
        assert sorted(result.stdout.splitlines()) == ["fos1: mode = 1 (A--B)",
                                                      "fos2: mode = 1 (A--B)"]


# -- 5. the conventions of pcs, crmsh and the fence agents ---------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_before_or_after_the_command(two_devices, where):
    _, conf = two_devices
    args = ["--json", "status"] if where == "before" else ["status", "--json"]
    result = berofos("-c", conf, *args)
    assert result.returncode == 0 and len(json.loads(result.stdout)) == 2


RECORD_KEYS = {"name", "address", "mac", "ok", "error"}


@pytest.mark.parametrize("command", [["status"], ["show"], ["get", "mode"], ["set", "wdog=0"],
                                     ["switch", "master"], ["check"], ["ping"], ["kick"],
                                     ["password", "--stdin"]])
def test_one_json_shape_for_every_command_failures_included(two_devices, command):
    emulator, conf = two_devices
    emulator.control.power("fos2", "off")
    udp = ["--udp-port", str(emulator.udp_port)] if command[0] in ("ping", "kick") else []
    result = berofos("-c", conf, *udp, "-t", "0.5", "--json", *command, stdin="n3w-secret\n")
    records = json.loads(result.stdout)
    assert [r["name"] for r in records] == ["fos1", "fos2"], result.stderr
    assert all(RECORD_KEYS <= set(r) for r in records)
    assert records[1]["ok"] is False and records[1]["error"].startswith("fos2 (127.0.0.1:") \
        or command[0] == "password"  # password changes nothing while a device is down
    assert result.returncode == 1


def test_verbose_shows_every_request_on_stderr(two_devices):
    _, conf = two_devices
    result = berofos("-c", conf, "-f", "fos1", "--debug", "get", "mode")
    assert result.returncode == 0 and result.stdout == "mode = 1 (A--B)\n"
    assert result.stderr.startswith("berofos: debug: fos1 (127.0.0.1:")
    assert "GET /config.txt" in result.stderr


def test_password_writes_are_logged_without_the_password(two_devices):
    _, conf = two_devices
    result = berofos("-c", conf, "-v", "password", "--stdin", stdin="n3w-secret\n")
    assert "GET /?<password hidden>" in result.stderr and "n3w-secret" not in result.stderr


def test_colour_only_on_a_terminal_and_never_with_no_color(open_pair):
    _, conf = open_pair
    status, output = at_terminal("-c", conf, "status")
    assert status == 0 and "\x1b[32mok\x1b[0m" in output
    status, output = at_terminal("-c", conf, "status", env={"NO_COLOR": "1"})
    assert status == 0 and "\x1b[" not in output and " ok" in output
    assert "\x1b[" not in berofos("-c", conf, "status").stdout


def test_man_page_lists_every_exit_status_and_problem_kind():
    page = cli_manpage()
    exit_status = page.split(".SH EXIT STATUS")[1].split(".SH ENVIRONMENT")[0]
    for status in ("0", "1", "2", "130"):
        assert f".TP\n{status}\n" in exit_status
    for kind in ProblemKind:
        assert f"\\fB{kind.value.replace('-', chr(92) + '-')}\\fR" in exit_status
    assert "emulator ctl" in page and "fire\\-watchdog" in page


# -- 6. the emulator from the command line -------------------------------------------------


def ctl(emulator, *args: str) -> subprocess.CompletedProcess:
    return berofos("emulator", "ctl", emulator.info["control"], *args)


def test_emulator_ctl_drives_the_devices(open_pair):
    emulator, conf = open_pair
    assert ctl(emulator, "flash-mode", "fos2", "on").returncode == 0
    assert emulator.control.device("fos2")["flash_mode"] is True
    fired = ctl(emulator, "fire-watchdog", "fos1")
    assert fired.returncode == 0 and fired.stdout.splitlines()[1].split()[5:7] == [
        "A--D", "failure"]
    assert ctl(emulator, "fault", "fos1", "drop", "--count", "1").returncode == 0
    assert emulator.control.device("fos1")["faults"][0]["kind"] == "drop"
    assert ctl(emulator, "set", "fos1", "mode=master").returncode == 0
    cycled = ctl(emulator, "power-cycle", "--off", "0.2", "--json")
    assert [d["name"] for d in json.loads(cycled.stdout)] == ["fos1", "fos2"]
    time.sleep(0.6)
    devices = json.loads(ctl(emulator, "devices", "--json").stdout)
    assert [(d["powered"], d["flash_mode"]) for d in devices] == [(True, False)] * 2
    log = ctl(emulator, "relay-log").stdout
    assert "(watchdog)" in log and "(manual)" in log and "(power-off)" in log
    unknown = ctl(emulator, "fire-watchdog", "fos9")
    assert_one_line_error(unknown, 1, "no device 'fos9'")


def test_emulator_help_documents_ctl():
    text = berofos("emulator", "--help").stdout
    for action in ("flash-mode DEVICE on|off", "fire-watchdog DEVICE", "power-cycle",
                   "fault DEVICE KIND", "relay-log"):
        assert action in text


def test_scan_write_names_devices_as_the_emulator_does(scanned, tmp_path):
    conf = tmp_path / "bnfos.conf"
    status, _, _ = scan_write(scanned, conf)
    assert status == 0
    assert [(d.name, d.mac) for d in load_bnfos_conf(str(conf)).devices] == [
        (e.name, e.mac) for e in entries_for(scanned)]
