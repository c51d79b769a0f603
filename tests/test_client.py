"""The HTTP client against the emulator: every error class made to happen for real."""

from __future__ import annotations

import socket
import time
import traceback

import pytest

from berofos_ocf.bnfosconf import DeviceEntry
from berofos_ocf.client import (
    READ_ATTEMPTS,
    BerofosClient,
    DeviceResult,
    DeviceStatus,
    on_every_device,
    read_status,
)
from berofos_ocf.configtxt import Settings
from berofos_ocf.deadline import Deadline
from berofos_ocf.emulator import DeviceOptions, Emulator, Fault
from berofos_ocf.errors import (
    CredentialsRejected,
    DeviceError,
    DeviceTimeout,
    DeviceUnreachable,
    ProtocolError,
)
from berofos_ocf.keys import RELAY_A_B, RELAY_A_D

from .conftest import PASSWORD, entries_for
from .test_client_hostile import RawServer


def client_for(emulator, *, password=None, timeout=2.0, index=0) -> BerofosClient:
    return BerofosClient(entries_for(emulator, password=password)[index], timeout=timeout)


def test_read_settings(emulator):
    settings = client_for(emulator).read_settings()
    assert settings.relay_mode == RELAY_A_B
    assert settings["port"] == emulator.devices[0].listen[1]


def test_connection_refused_is_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = BerofosClient(DeviceEntry("fos1", host="127.0.0.1", port=port))
    with pytest.raises(DeviceUnreachable, match=r"fos1 \(127.0.0.1:\d+\): connection refused"):
        client.read_settings()


@pytest.mark.parametrize("kind, error, message", [
    ("reset", DeviceUnreachable, "connection reset"),
    ("drop", DeviceUnreachable, "closed the connection without answering"),
    ("status", DeviceError, "HTTP 500"),
    ("garbage", ProtocolError, "not HTTP"),
    ("no-magic", ProtocolError, "bnfos_confmap_magic line is missing"),
])
def test_faults_map_to_one_error_each(emulator, kind, error, message):
    emulator.devices[0].add_fault(Fault(kind))
    with pytest.raises(error, match=message) as caught:
        client_for(emulator).read_settings()
    assert caught.value.device == client_for(emulator).label


def test_service_unavailable(emulator):
    emulator.devices[0].add_fault(Fault("status", status=503))
    with pytest.raises(DeviceError, match="HTTP 503"):
        client_for(emulator).read_settings()


# -- reads are asked again after a transient error, never more than READ_ATTEMPTS times ---

@pytest.mark.parametrize("kind", ["reset", "drop", "status"])
def test_one_glitch_is_absorbed_by_a_retry(emulator, kind):
    emulator.devices[0].add_fault(Fault(kind, scope="read", count=1))
    assert client_for(emulator).read_settings().relay_mode == RELAY_A_B
    assert [r["status"] for r in emulator.devices[0].requests] == [
        0 if kind != "status" else 500, 200]


def test_a_timeout_is_retried(emulator):
    emulator.devices[0].add_fault(Fault("hang", scope="read", count=1))
    assert client_for(emulator, timeout=0.3).read_settings().relay_mode == RELAY_A_B
    assert len(emulator.devices[0].requests) == 2


def test_a_refused_connection_is_retried_then_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pauses = []
    client = BerofosClient(DeviceEntry("fos1", host="127.0.0.1", port=port),
                           sleep=pauses.append)
    with pytest.raises(DeviceUnreachable, match="connection refused"):
        client.read_settings(Deadline(10))
    assert len(pauses) == READ_ATTEMPTS - 1 and all(0 < p < 1 for p in pauses)


def test_a_device_gone_for_good_costs_exactly_read_attempts(emulator):
    emulator.devices[0].add_fault(Fault("reset", scope="read"))
    with pytest.raises(DeviceUnreachable, match="connection reset"):
        client_for(emulator).read_settings()
    assert len(emulator.devices[0].requests) == READ_ATTEMPTS


@pytest.mark.parametrize("kind", ["garbage", "no-magic"])
def test_a_wrong_answer_is_not_retried(emulator, kind):
    emulator.devices[0].add_fault(Fault(kind, scope="read"))
    with pytest.raises(ProtocolError):
        client_for(emulator).read_settings()
    assert len(emulator.devices[0].requests) == 1


def test_rejected_credentials_are_not_read_again(protected_emulator):
    with pytest.raises(CredentialsRejected):
        client_for(protected_emulator, password="wrong").read_settings()
    # one 401 for the challenge round and one for the credentials: a single read
    assert len(protected_emulator.devices[0].requests) <= 2


def test_retries_stop_at_the_deadline(emulator):
    emulator.devices[0].add_fault(Fault("hang", scope="read"))
    started = time.monotonic()
    with pytest.raises(DeviceTimeout):
        client_for(emulator, timeout=30).read_settings(Deadline(0.5))
    assert time.monotonic() - started < 5
    assert len(emulator.devices[0].requests) <= 2


def test_hanging_device_times_out(emulator):
    emulator.devices[0].add_fault(Fault("hang"))
    started = time.monotonic()
    with pytest.raises(DeviceTimeout):
        client_for(emulator, timeout=0.3).read_settings()
    assert time.monotonic() - started < 5  # bounded, not "fast": no timing claim


def test_deadline_bounds_the_request_below_its_timeout(emulator):
    emulator.devices[0].add_fault(Fault("hang"))
    started = time.monotonic()
    with pytest.raises(DeviceTimeout):
        client_for(emulator, timeout=30).read_settings(Deadline(0.3))
    assert time.monotonic() - started < 10


def test_expired_deadline_sends_nothing(emulator):
    with pytest.raises(DeviceTimeout, match="no time left"):
        client_for(emulator).read_settings(Deadline(0))
    assert emulator.devices[0].requests == []


def test_crlf_answer_is_read(emulator):
    emulator.devices[0].add_fault(Fault("crlf"))
    assert client_for(emulator).read_settings().values()["port"] == emulator.devices[0].listen[1]


def test_truncated_answer_has_no_relay_mode(emulator):
    emulator.devices[0].add_fault(Fault("truncate"))
    client = client_for(emulator)
    settings = client.read_settings()
    with pytest.raises(ProtocolError, match="no 4_mode line"):
        client.relay_mode(settings)


def test_checked_style_answer(emulator):
    device = emulator.devices[0]
    device.options.checked_style = True
    device.operator_set({"modedef": 1, "wdogdef": True})
    values = client_for(emulator).read_settings().values()
    assert values["modedef"] == RELAY_A_B and values["wdogdef"] is True
    assert b"2_wen=checked\n" in device.config_txt()


def test_wrong_password(protected_emulator):
    with pytest.raises(CredentialsRejected, match=r"^credentials rejected by fos1 \(127"):
        client_for(protected_emulator, password="wrong").read_settings()


def test_no_login_on_a_protected_device(protected_emulator):
    with pytest.raises(CredentialsRejected, match="no login is configured"):
        client_for(protected_emulator).read_settings()


def test_401_without_challenge(protected_emulator):
    protected_emulator.devices[0].add_fault(Fault("no-challenge"))
    with pytest.raises(CredentialsRejected, match="without a WWW-Authenticate challenge"):
        client_for(protected_emulator, password=PASSWORD).read_settings()


def test_right_password(protected_emulator):
    assert client_for(protected_emulator, password=PASSWORD).read_settings()["pwd"] is True


def test_rejected_credentials_are_never_retried(protected_emulator):
    client = client_for(protected_emulator, password="wrong")
    with pytest.raises(CredentialsRejected):
        client.switch_relays(RELAY_A_D, Deadline(10))
    assert len(protected_emulator.devices[0].requests) == 1


def test_switch_is_confirmed_and_logged_once(emulator):
    result = client_for(emulator).switch_relays(RELAY_A_D, Deadline(5))
    assert (result.old_mode, result.new_mode, result.changed) == (RELAY_A_B, RELAY_A_D, True)
    log = emulator.relay_log_since(0)
    assert [(e["old"], e["new"], e["cause"]) for e in log] == [(RELAY_A_B, RELAY_A_D, "http")]


def test_switch_to_the_current_position_sends_no_write(emulator):
    result = client_for(emulator).switch_relays(RELAY_A_B, Deadline(5))
    assert not result.changed
    assert [r["path"] for r in emulator.devices[0].requests] == ["/config.txt"]


def test_switch_waits_for_relays_acknowledged_before_moving(emulator):
    emulator.devices[0].options.relay_delay = 1.0
    result = client_for(emulator).switch_relays(RELAY_A_D, Deadline(10))
    assert result.changed and emulator.devices[0].relay_mode == RELAY_A_D
    reads = [r for r in emulator.devices[0].requests if r["path"] == "/config.txt"]
    assert len(reads) >= 3  # read, then polled until the relays had moved


def test_switch_retries_transient_faults(emulator):
    emulator.devices[0].add_fault(Fault("reset", count=2))
    result = client_for(emulator).switch_relays(RELAY_A_D, Deadline(10))
    assert result.changed and emulator.devices[0].relay_mode == RELAY_A_D


def test_switch_that_never_confirms_fails_within_its_deadline(emulator):
    emulator.devices[0].add_fault(Fault("ignore-writes"))
    started = time.monotonic()
    with pytest.raises(DeviceError, match="did not reach A--D"):
        client_for(emulator).switch_relays(RELAY_A_D, Deadline(2.5))
    assert time.monotonic() - started < 10
    assert emulator.relay_log_since(0) == []


def test_switch_of_an_unreachable_device_reports_the_last_error(emulator):
    emulator.devices[0].power_off()
    with pytest.raises(DeviceUnreachable, match="connection reset|closed the connection"):
        client_for(emulator).switch_relays(RELAY_A_D, Deadline(1.5))


def test_write_reads_back(emulator):
    after = client_for(emulator).write({"wdogitime": 30, "wdogdef": True})
    assert after["wdogitime"] == 30 and after["wdogdef"] is True


def test_write_that_does_not_stick_is_an_error(emulator):
    emulator.devices[0].add_fault(Fault("ignore-writes"))
    with pytest.raises(DeviceError, match="wrote wdogitime=30 but it reads 60"):
        client_for(emulator).write({"wdogitime": 30})


def test_write_is_safe_on_legacy_group_reset_firmware():
    options = DeviceOptions(legacy_group_reset=True)
    with Emulator([("127.0.0.1", 0)], udp_port=None, options=options,
                  initial={"modedef": 1, "wdogdef": True, "wdogaudio": True}) as emulator:
        client = client_for(emulator)
        client.write({"wdogitime": 30})
        client.write({"scenario": 1})
        values = client.read_settings().values()
        assert values["wdogdef"] is True and values["wdogaudio"] is True
        assert values["modedef"] == RELAY_A_B and values["wdogitime"] == 30


def test_password_never_leaks_through_errors(emulator):
    emulator.devices[0].add_fault(Fault("reset", scope="write"))
    secret = "top" + "secret"  # not spelled out: the traceback quotes this file's lines
    with pytest.raises(DeviceUnreachable) as caught:
        client_for(emulator).write({"apwd": secret})
    assert secret not in "".join(traceback.format_exception(caught.value))
    assert "apwd=<hidden>" in emulator.devices[0].requests[-1]["path"]


def test_password_never_leaks_through_a_refused_connection():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = BerofosClient(DeviceEntry("fos1", host="127.0.0.1", port=port))
    secret = "top" + "secret"
    with pytest.raises(DeviceUnreachable) as caught:
        client.write({"apwd": secret}, current=Settings({}), confirm=False)
    error = caught.value
    assert error.__cause__ is None and error.__context__ is None
    assert secret not in "".join(traceback.format_exception(error))


def test_new_password_is_used_for_the_read_back(emulator):
    client = client_for(emulator)
    client.write({"apwd": "fresh"})
    after = client.write({"pwd": True})
    assert after["pwd"] is True
    with pytest.raises(CredentialsRejected):
        client_for(emulator).read_settings()


def test_devices_are_read_concurrently():
    with Emulator([("127.0.0.1", 0)] * 8, udp_port=None) as emulator:
        for device in emulator.devices:
            device.add_fault(Fault("latency", seconds=1.5))  # longer than 8 thread starts
        clients = [BerofosClient(e) for e in entries_for(emulator)]
        statuses = read_status(clients, Deadline(20))
        assert all(s.reachable for s in statuses)
        requests = [d.requests[0] for d in emulator.devices]
        # every request had arrived before the first one was answered
        assert max(r["received"] for r in requests) < min(r["time"] for r in requests)


def test_on_every_device_gives_up_at_the_deadline():
    entries = [DeviceEntry(f"item{seconds}", host="127.0.0.1") for seconds in (0, 30)]
    results = on_every_device(lambda entry: time.sleep(int(entry.name[4:])) or entry.name,
                              entries, Deadline(0.5), device=lambda entry: entry)
    assert results[0].ok and results[0].value == "item0"
    assert isinstance(results[1].error, DeviceTimeout) and results[1].error.device.startswith(
        "item30")


def test_proxy_variables_are_ignored(emulator, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    assert client_for(emulator).read_settings().relay_mode == RELAY_A_B


def test_oversized_answer_is_a_protocol_error():
    body = b"bnfos_confmap_magic=0.1\n" + b"x" * 70_000
    with RawServer(lambda conn: conn.sendall(
            b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)) as server:
        client = BerofosClient(DeviceEntry("fos1", host="127.0.0.1", port=server.port))
        with pytest.raises(ProtocolError, match="larger than 65536 bytes"):
            client.read_settings()


def test_trickling_answer_ends_at_the_deadline():
    def trickle(conn):
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"x" * 5000)
            time.sleep(0.2)

    with RawServer(trickle) as server:
        client = BerofosClient(DeviceEntry("fos1", host="127.0.0.1", port=server.port))
        started = time.monotonic()
        with pytest.raises(DeviceTimeout, match="still arriving"):
            client.read_settings(Deadline(1.0))
        assert time.monotonic() - started < 10  # bounded by the deadline, not by 100 x 0.2 s


# -- issue 9: one typed group operation; retries by the error's own transient flag --------


def test_on_every_device_gives_a_typed_result_per_device_in_order():
    devices = [DeviceEntry(f"fos{i}", host="10.0.0.1") for i in range(3)]

    def action(device):
        if device.name == "fos1":
            raise DeviceUnreachable(device.label, "connection refused")
        if device.name == "fos2":
            time.sleep(30)
        return device.name.upper()

    results = on_every_device(action, devices, Deadline(0.5), device=lambda d: d)
    assert [type(r) for r in results] == [DeviceResult] * 3
    assert (results[0].ok, results[0].value, results[0].error) == (True, "FOS0", None)
    assert not results[1].ok and str(results[1].error) == "fos1 (10.0.0.1): connection refused"
    assert isinstance(results[2].error, DeviceTimeout) and results[2].device is devices[2]


def test_on_every_device_raises_a_bug_instead_of_reporting_it():
    with pytest.raises(ZeroDivisionError):
        on_every_device(lambda item: 1 / item, [1, 0], Deadline(5),
                        device=lambda item: DeviceEntry(str(item), host="10.0.0.1"))


def test_read_status_is_the_group_operation_of_reads(emulator):
    (status,) = read_status([client_for(emulator)], Deadline(5))
    assert isinstance(status, DeviceStatus) and isinstance(status, DeviceResult)
    assert status.ok and status.reachable and status.settings is status.value


@pytest.mark.parametrize("fault, details, retried", [
    ("garbage", {}, False),          # a complete answer that is not HTTP: not transient
    ("no-magic", {}, False),         # not a berofos: not transient
    ("status", {"status": 503}, True),  # a 5xx: transient, asked again until the deadline
])
def test_switch_retries_only_what_the_error_calls_transient(emulator, fault, details,
                                                             retried):
    emulator.devices[0].add_fault(Fault(fault, **details))
    with pytest.raises((ProtocolError, DeviceError)):
        client_for(emulator).switch_relays(RELAY_A_D, Deadline(1.5))
    asked = len(emulator.devices[0].requests)
    assert asked > READ_ATTEMPTS if retried else asked == 1
