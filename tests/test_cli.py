"""The ``berofos`` command end to end: a real process against a real emulator process."""

from __future__ import annotations

import http.server
import io
import json
import os
import socket
import stat
import subprocess
import threading
import time

import pytest

from berofos_ocf.bnfosconf import DeviceEntry, load_bnfos_conf, render_bnfos_conf
from berofos_ocf.cli import main
from berofos_ocf.emulator import Emulator, Fault
from berofos_ocf.runstate import InstanceState, RoleMarker, StateFile

from .conftest import PYTHON, ROOT, entries_for

PASSWORD = "pw-Zq81"


def berofos(*args: str, stdin: str | None = None, env: dict | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    environment.update(env or {})
    return subprocess.run([PYTHON, "-m", "berofos_ocf", *args], cwd=ROOT, capture_output=True,
                          text=True, input=stdin, env=environment, timeout=timeout)


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


@pytest.fixture
def hostile_device():
    """An HTTP server that answers config.txt with escape sequences and a CR in its values."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(HOSTILE_CONFIG_TXT)))
            self.end_headers()
            self.wfile.write(HOSTILE_CONFIG_TXT)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


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
