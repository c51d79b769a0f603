"""The emulator as clients see it: HTTP, GBL4, relays, watchdog, power, options, control.

Every test talks to an emulated device over loopback (127.0.0.1) through the
device's own interfaces (HTTP, GBL4 UDP) or drives it through the
:class:`~berofos_ocf.emulator.EmulatedDevice` / :class:`~berofos_ocf.emulator.Emulator`
API and the control interface, exactly as the agent's and the CLI's tests do.
Real clients are used where the protocol notes say what they do: ``curl``
(libcurl is what the C ``bnfos`` uses) and ``urllib`` with challenge-driven
Basic authentication.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest
import requests

from berofos_ocf.bnfosconf import DeviceEntry
from berofos_ocf.client import BerofosClient
from berofos_ocf.configtxt import MAGIC_KEY, parse_config_txt
from berofos_ocf.emulator import (
    DeviceOptions,
    Emulator,
    Fault,
    format_relay_entry,
    option_switches,
)
from berofos_ocf.emulator.control import ControlError, EmulatorControl
from berofos_ocf.errors import DeviceError, DeviceTimeout, DeviceUnreachable
from berofos_ocf.gbl4 import NetconfRequest, parse_mac
from berofos_ocf.keys import RELAY_A_B, RELAY_A_D
from berofos_ocf.udp import Gbl4Client

from .conftest import PASSWORD, EmulatorProcess, entries_for

LOOPBACK = "127.0.0.1"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


# -- helpers -------------------------------------------------------------------------------


def base_url(device) -> str:
    return "http://%s:%d" % device.listen


def get(url: str, auth=None) -> requests.Response:
    """One GET as a device client makes it: no proxy, no redirects, bounded."""
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, auth=auth, timeout=5, allow_redirects=False)


def config(device, auth=None) -> dict[str, str]:
    """``config.txt`` of ``device`` read over HTTP, as a dict of its lines."""
    response = get(base_url(device) + "/config.txt", auth)
    assert response.status_code == 200, response.text
    return dict(line.split("=", 1) for line in response.text.split("\n") if line)


def write(device, query: str, auth=None) -> requests.Response:
    return get(base_url(device) + "/?" + query, auth)


def statuses(device) -> list[int]:
    return [request["status"] for request in device.requests]


def wait_for(condition, seconds: float = 5.0, what: str = "condition"):
    """Poll ``condition`` until it is true; fail after ``seconds`` (a bound, not a speed)."""
    until = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > until:
            pytest.fail(f"{what} not reached within {seconds} s")
        time.sleep(0.05)


def client_for(emulator, *, password=None, timeout=2.0, index=0) -> BerofosClient:
    return BerofosClient(entries_for(emulator, password=password)[index], timeout=timeout)


def gbl4(emulator, timeout: float = 1.0) -> Gbl4Client:
    return Gbl4Client(port=emulator.udp_port, timeout=timeout)


def causes(emulator) -> list[str]:
    return [entry["cause"] for entry in emulator.relay_log_since(0)]


def control_status(address: str, method: str, path: str, body: dict | None = None):
    """Raw call to the control interface: ``(status, decoded JSON)``, errors included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{address}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def process_entry(process, index: int = 0, password: str | None = None) -> DeviceEntry:
    return process.entries(password)[index]


@pytest.fixture
def http_emulator():
    """One device, HTTP only (no GBL4 endpoint to wind down: the test ends sooner)."""
    with Emulator([(LOOPBACK, 0)], udp_port=None) as running:
        yield running


@pytest.fixture
def protected_http_emulator():
    """One password-protected device, HTTP only."""
    with Emulator([(LOOPBACK, 0)], udp_port=None, password=PASSWORD) as running:
        yield running


# -- 1. real clients, unchanged ------------------------------------------------------------

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-s", "--noproxy", "*", "--max-time", "5", *args],
                          capture_output=True, timeout=15)


@needs_curl
def test_curl_anyauth_reads_config_txt_after_the_challenge(protected_http_emulator):
    device = protected_http_emulator.devices[0]
    result = curl("--fail", "--anyauth", "-u", f"admin:{PASSWORD}", "-A", "libbnfos",
                  base_url(device) + "/config.txt")
    assert result.returncode == 0, result.stderr
    body = result.stdout
    assert body.startswith(f"{MAGIC_KEY}=0.1\n".encode())
    assert b"\r" not in body and body.endswith(b"\n")
    assert parse_config_txt(body)["pwd"] is True
    assert statuses(device) == [401, 200]


@needs_curl
def test_curl_anyauth_write_moves_the_relays(protected_http_emulator):
    device = protected_http_emulator.devices[0]
    result = curl("--fail", "--anyauth", "-u", f"admin:{PASSWORD}", "-A", "libbnfos",
                  base_url(device) + "/?cmd=4&mode=0")
    assert result.returncode == 0, result.stderr
    assert device.relay_mode == RELAY_A_D
    assert [(r["path"], r["status"]) for r in device.requests] == [
        ("/?cmd=4&mode=0", 401), ("/?cmd=4&mode=0", 200)]


def test_urllib_challenge_driven_basic_auth(protected_http_emulator):
    device = protected_http_emulator.devices[0]
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, base_url(device), "admin", PASSWORD)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPBasicAuthHandler(passwords))
    with opener.open(base_url(device) + "/config.txt", timeout=5) as response:
        assert parse_config_txt(response.read()).relay_mode == RELAY_A_B
    with opener.open(base_url(device) + "/?cmd=4&mode=0", timeout=5) as response:
        assert response.status == 200
    assert device.relay_mode == RELAY_A_D
    assert statuses(device)[:2] == [401, 200]  # no credentials until challenged


@pytest.mark.parametrize("path, auth", [
    ("/config.txt", None),
    ("/config.txt", ("admin", "wrong")),
    ("/config.txt", ("root", PASSWORD)),
    ("/?cmd=4&mode=0", None),
    ("/?cmd=4&mode=0", ("admin", "wrong")),
], ids=["read-no-auth", "read-wrong-password", "read-wrong-user", "write-no-auth",
        "write-wrong-password"])
def test_every_401_carries_the_basic_challenge(protected_http_emulator, path, auth):
    device = protected_http_emulator.devices[0]
    response = get(base_url(device) + path, auth)
    assert response.status_code == 401
    assert re.fullmatch(r'Basic realm="[^"]+"', response.headers.get("WWW-Authenticate", ""))
    assert device.relay_mode == RELAY_A_B


def test_no_challenge_fault_sends_a_401_without_www_authenticate(protected_http_emulator):
    device = protected_http_emulator.devices[0]
    device.add_fault(Fault("no-challenge"))
    response = get(base_url(device) + "/config.txt", ("admin", PASSWORD))
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers


# -- 2. whole-group writes (rsclib) --------------------------------------------------------


@pytest.mark.parametrize("initial, query, expected", [
    ({"scenario": 1, "modedef": 0, "power1def": True, "power2def": True},
     "cmd=1&sz=0&rm=1&p0=0&p1=0", {"1_sz": "0", "1_rm": "1", "1_p0": "0", "1_p1": "0"}),
    ({"wdog": True}, "cmd=6&wen=0&wstate=0", {"6_wen": "0", "6_wstate": "0"}),
    ({"power2": True}, "cmd=5&p=0&s=1&p=1&s=0", {"5_p0": "1", "5_p1": "0"}),
], ids=["cmd1-group", "cmd6-with-wstate", "cmd5-both-ports"])
def test_whole_group_writes_are_accepted(initial, query, expected):
    with Emulator([(LOOPBACK, 0)], udp_port=None, initial=initial) as emulator:
        device = emulator.devices[0]
        before = config(device)
        assert any(before[line] != value for line, value in expected.items())
        assert write(device, query).status_code == 200
        after = config(device)
        assert {line: after[line] for line in expected} == expected


# -- 3. legacy group reset -----------------------------------------------------------------

GROUP2 = {"wdogdef": True, "wdogaudio": True, "wdogmail": True, "smtpserv": "mail.example",
          "smtpto": "ops@example"}


def test_legacy_group_reset_clears_omitted_checkboxes_only():
    options = DeviceOptions(legacy_group_reset=True)
    with Emulator([(LOOPBACK, 0)], udp_port=None, options=options, initial=GROUP2) as emulator:
        device = emulator.devices[0]
        assert write(device, "cmd=2&wintv=30").status_code == 200
        after = config(device)
        assert after["2_wintv"] == "30"
        assert (after["2_wen"], after["2_as"], after["2_men"]) == ("0", "0", "0")
        assert (after["2_mhost"], after["2_mto"]) == ("mail.example", "ops@example")


def test_without_legacy_group_reset_a_single_key_write_changes_only_that_key():
    with Emulator([(LOOPBACK, 0)], udp_port=None, initial=GROUP2) as emulator:
        device = emulator.devices[0]
        before = config(device)
        assert write(device, "cmd=2&wintv=30").status_code == 200
        after = config(device)
        assert {k: v for k, v in after.items() if before[k] != v} == {"2_wintv": "30"}


# -- 4. bad requests -----------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "cmd=9&x=1",
    "cmd=4&bogus=1",
    "cmd=4&mode=7",
    "cmd=2&wintv=0",
    "cmd=2&wintv=65536",
    "cmd=3&ip=10.0.0.256",
    "cmd=5&p=2&s=1",
    "mode=0",
    "cmd=abc&mode=0",
], ids=["unknown-cmd", "unknown-parameter", "mode-7", "wintv-0", "wintv-too-big",
        "bad-ip", "no-power-port-2", "no-cmd", "non-numeric-cmd"])
def test_bad_request_gets_400_and_changes_nothing(http_emulator, query):
    device = http_emulator.devices[0]
    before = config(device)
    assert write(device, query).status_code == 400
    assert config(device) == before
    assert http_emulator.relay_log_since(0) == []


def test_rejected_power_request_changes_nothing(http_emulator):
    device = http_emulator.devices[0]
    before = config(device)
    assert write(device, "cmd=5&p=0&s=1&p=1&s=7").status_code == 400
    assert config(device) == before


def test_unknown_path_is_404(http_emulator):
    response = get(base_url(http_emulator.devices[0]) + "/nothing-here.cgi")
    assert response.status_code == 404
    assert statuses(http_emulator.devices[0]) == [404]


# -- 5. watchdog ---------------------------------------------------------------------------


def test_watchdog_expiry_drops_the_relays_to_a_d(http_emulator):
    device = http_emulator.devices[0]
    assert write(device, "cmd=2&wintv=1").status_code == 200
    assert write(device, "cmd=6&wen=1").status_code == 200
    assert config(device)["6_wstate"] == "1"  # not fired at once
    wait_for(lambda: config(device)["6_wstate"] == "2", what="watchdog failure")
    after = config(device)
    # issue 9: the firmware prints 6_wen from the state, 2 once fired (protocol notes)
    assert (after["4_mode"], after["6_wen"], after["0_wretv"]) == ("0", "2", "0")
    [entry] = http_emulator.relay_log_since(0)
    assert (entry["old"], entry["new"], entry["cause"]) == (RELAY_A_B, RELAY_A_D, "watchdog")


def test_gbl4_kicks_keep_the_watchdog_from_expiring():
    with Emulator([(LOOPBACK, 0), (LOOPBACK, 0)], udp_port=0) as emulator:
        kicked, neglected = emulator.devices
        client = gbl4(emulator)
        for device in emulator.devices:
            assert write(device, "cmd=2&wintv=2").status_code == 200
            assert write(device, "cmd=6&wen=1").status_code == 200
        until = time.monotonic() + 2.5  # longer than the 2 s interval, kicks 10 times as often
        while time.monotonic() < until:
            client.kick(kicked.mac, LOOPBACK)
            time.sleep(0.2)
        after = config(kicked)
        assert (after["6_wstate"], after["6_wen"], after["4_mode"]) == ("1", "1", "1")
        wait_for(lambda: config(neglected)["6_wstate"] == "2", what="unkicked watchdog failure")
        assert [e["device"] for e in emulator.relay_log_since(0)] == [neglected.name]


def test_running_watchdog_shows_the_time_left(http_emulator):
    device = http_emulator.devices[0]
    assert write(device, "cmd=2&wintv=60").status_code == 200
    assert config(device)["0_wretv"] == "0"  # not running yet
    assert write(device, "cmd=6&wen=1").status_code == 200
    after = config(device)
    assert 0 < int(after["0_wretv"]) <= 60
    assert (after["6_wen"], after["6_wstate"]) == ("1", "1")


def test_watchdog_restarts_after_a_failure(http_emulator):
    device = http_emulator.devices[0]
    device.operator_set({"wdogitime": 60, "wdog": True})
    device.expire_watchdog()
    assert config(device)["6_wstate"] == "2"
    assert write(device, "cmd=6&wen=1").status_code == 200
    after = config(device)
    assert (after["6_wstate"], after["6_wen"]) == ("1", "1")
    assert int(after["0_wretv"]) > 0
    assert after["4_mode"] == "0"  # the relays wait for a host to set mode again


def test_expire_watchdog_fires_at_once(http_emulator):
    device = http_emulator.devices[0]
    device.operator_set({"wdogitime": 3600, "wdog": True})
    device.expire_watchdog()
    after = config(device)
    assert (after["6_wstate"], after["4_mode"]) == ("2", "0")
    assert causes(http_emulator) == ["watchdog"]


# -- 6. power ------------------------------------------------------------------------------


def test_power_off_cuts_http_and_rests_the_relays_on_a_d(http_emulator):
    device = http_emulator.devices[0]
    device.power_off()
    with pytest.raises(DeviceUnreachable):
        client_for(http_emulator).read_settings()
    assert device.relay_mode == RELAY_A_D
    [entry] = http_emulator.relay_log_since(0)
    assert (entry["old"], entry["new"], entry["cause"]) == (RELAY_A_B, RELAY_A_D, "power-off")


def test_powered_off_device_is_silent_on_udp():
    with Emulator([(LOOPBACK, 0), (LOOPBACK, 0)], udp_port=0) as emulator:
        off, on = emulator.devices
        off.power_off()
        client = gbl4(emulator, timeout=0.2)
        assert [r.mac for r in client.scan(LOOPBACK, window=0.2)] == [on.mac]
        with pytest.raises(DeviceTimeout):
            client.ping(off.mac, LOOPBACK)


BOOT_VALUES = {"modedef": 1, "wdogdef": True, "wdogitime": 60, "power1def": True,
               "power2def": False, "power1": False, "power2": True}


def test_power_on_applies_the_boot_defaults():
    with Emulator([(LOOPBACK, 0)], udp_port=None, initial=BOOT_VALUES) as emulator:
        device = emulator.devices[0]
        device.power_off()
        device.power_on()
        after = config(device)
        assert after["4_mode"] == "1"
        assert (after["6_wstate"], after["6_wen"]) == ("1", "1")
        assert (after["5_p0"], after["5_p1"]) == ("1", "0")
        assert causes(emulator) == ["power-off", "boot"]


def test_power_on_without_boot_defaults_keeps_the_relays_on_a_d():
    options = DeviceOptions(defaults_at_boot=False)
    with Emulator([(LOOPBACK, 0)], udp_port=None, initial=BOOT_VALUES,
                  options=options) as emulator:
        device = emulator.devices[0]
        device.power_off()
        device.power_on()
        after = config(device)
        assert (after["4_mode"], after["6_wstate"]) == ("0", "0")
        assert (after["5_p0"], after["5_p1"]) == ("0", "1")
        assert causes(emulator) == ["power-off"]


def test_power_cycle_comes_back_by_itself(http_emulator):
    device = http_emulator.devices[0]
    device.power_cycle(0.3)
    assert not device.powered
    with pytest.raises(DeviceUnreachable):  # one try: retries would ride out the reboot
        client_for(http_emulator).read_settings(attempts=1)
    wait_for(lambda: device.powered, what="power on")
    assert client_for(http_emulator).read_settings().relay_mode == RELAY_A_B
    assert causes(http_emulator) == ["power-off", "boot"]


# -- 7. relay delay ------------------------------------------------------------------------


def test_relay_delay_acknowledges_before_the_relays_move():
    options = DeviceOptions(relay_delay=1.5)  # ample: the read below comes within it
    with Emulator([(LOOPBACK, 0)], udp_port=None, options=options) as emulator:
        device = emulator.devices[0]
        assert write(device, "cmd=4&mode=0").status_code == 200
        assert config(device)["4_mode"] == "1"  # acknowledged, not moved yet
        wait_for(lambda: config(device)["4_mode"] == "0", what="relays moved")
        assert causes(emulator) == ["http"]


# -- 8. config.txt options -----------------------------------------------------------------


def test_checked_style_prints_checkboxes_as_checked_or_empty():
    options = DeviceOptions(checked_style=True)
    with Emulator([(LOOPBACK, 0)], udp_port=None, options=options,
                  initial={"wdogdef": True}) as emulator:
        lines = config(emulator.devices[0])
        # issue 9: 6_wen is printed from the watchdog's state, a number in every style
        assert (lines["2_wen"], lines["3_dhcp"], lines["6_wen"]) == ("checked", "", "0")
        assert (lines["4_mode"], lines["1_rm"]) == ("1", "1")  # switches stay numbers


def test_default_style_prints_checkboxes_as_1_or_0():
    with Emulator([(LOOPBACK, 0)], udp_port=None, initial={"wdogdef": True}) as emulator:
        lines = config(emulator.devices[0])
        assert (lines["2_wen"], lines["3_dhcp"], lines["6_wen"]) == ("1", "0", "0")


def test_unknown_lines_option_adds_firmware_1_5_7_lines():
    with Emulator([(LOOPBACK, 0)], udp_port=None,
                  options=DeviceOptions(unknown_lines=True)) as emulator:
        body = get(base_url(emulator.devices[0]) + "/config.txt").text
        assert body.endswith("1_szd00=0\n1_szd01=0\n2_mail=\n")
        assert body.startswith(f"{MAGIC_KEY}=0.1\n")
        assert parse_config_txt(body).relay_mode == RELAY_A_B


def test_without_unknown_lines_option_only_known_lines(http_emulator):
    body = get(base_url(http_emulator.devices[0]) + "/config.txt").text
    assert parse_config_txt(body).unknown == {}


# -- 9. the relay log ----------------------------------------------------------------------


def test_relay_log_has_one_entry_per_actual_change(http_emulator):
    device = http_emulator.devices[0]
    started = time.time()
    for query in ("cmd=4&mode=1", "cmd=4&mode=0", "cmd=4&mode=0", "cmd=4&mode=1"):
        assert write(device, query).status_code == 200
    ended = time.time()
    log = http_emulator.relay_log_since(0)
    assert [(e["old"], e["new"]) for e in log] == [(RELAY_A_B, RELAY_A_D),
                                                   (RELAY_A_D, RELAY_A_B)]
    for entry in log:
        assert set(entry) == {"time", "device", "address", "old", "new", "cause"}
        assert started <= entry["time"] <= ended
        assert (entry["device"], entry["address"], entry["cause"]) == (
            "fos1", "%s:%d" % device.listen, "http")
    assert http_emulator.relay_log_since(1) == log[1:]


def test_format_relay_entry():
    entry = {"time": 1700000000.25, "device": "fos2", "address": "10.0.0.5:80",
             "old": RELAY_A_B, "new": RELAY_A_D, "cause": "watchdog"}
    assert format_relay_entry(entry) == (
        "2023-11-14T22:13:20.250Z fos2 10.0.0.5:80 relays A--B -> A--D (watchdog)")


def test_relay_log_file_lines_are_timestamped(emulator_process):
    process = emulator_process()
    entry = process_entry(process)
    base = f"http://{entry.host}:{entry.port}"
    assert get(base + "/?cmd=4&mode=0").status_code == 200
    assert get(base + "/?cmd=4&mode=0").status_code == 200  # no change, no line
    process.control.set_values("fos1", mode=1)
    lines = process.relay_log_file.read_text().splitlines()
    address = re.escape(f"{entry.host}:{entry.port}")
    assert len(lines) == 2
    assert re.fullmatch(rf"{STAMP} fos1 {address} relays A--B -> A--D \(http\)", lines[0])
    assert re.fullmatch(rf"{STAMP} fos1 {address} relays A--D -> A--B \(manual\)", lines[1])
    for line in lines:  # UTC, as the Z says, and of this run
        stamp = datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert abs(stamp.replace(tzinfo=timezone.utc).timestamp() - time.time()) < 600


# -- 10. control interface, end to end -----------------------------------------------------


@pytest.fixture(scope="module")
def idle_process(tmp_path_factory):
    """One emulator process (two devices) shared by the tests that change no setting."""
    process = EmulatorProcess(tmp_path_factory.mktemp("idle-emulator"), devices=2)
    yield process
    process.stop()


def test_control_lists_devices_by_name_and_by_address(idle_process):
    process = idle_process
    devices = process.control.devices()
    assert [d["name"] for d in devices] == ["fos1", "fos2"]
    assert [d["address"] for d in devices] == [d["address"] for d in process.info["devices"]]
    assert devices[1]["relay_mode"] == RELAY_A_B and devices[1]["powered"] is True
    address = devices[1]["address"]
    status, by_address = control_status(process.info["control"], "GET", f"/devices/{address}")
    assert status == 200 and by_address["name"] == "fos2"
    assert process.control.device("fos2")["address"] == address


def test_control_client_addresses_a_device_by_host_port():
    with Emulator([(LOOPBACK, 0)], udp_port=None, control=(LOOPBACK, 0)) as emulator:
        address = "%s:%d" % emulator.devices[0].listen
        control = EmulatorControl(emulator.control_address)
        assert control.device(address)["name"] == "fos1"


def test_control_fault_injection_and_clearing(emulator_process):
    process = emulator_process()
    client = BerofosClient(process_entry(process), timeout=2)
    described = process.control.fault("fos1", "status", status=503)
    assert [f["kind"] for f in described["faults"]] == ["status"]
    with pytest.raises(DeviceError, match="HTTP 503"):
        client.read_settings()
    assert process.control.clear_faults("fos1")["faults"] == []
    assert client.read_settings().relay_mode == RELAY_A_B


def test_control_sets_values_by_hand(emulator_process):
    process = emulator_process()
    described = process.control.set_values("fos1", mode=0, wdogitime="30")
    assert described["relay_mode"] == RELAY_A_D
    assert described["settings"]["wdogitime"] == 30
    [entry] = process.control.relay_log()
    assert (entry["old"], entry["new"], entry["cause"]) == (RELAY_A_B, RELAY_A_D, "manual")
    with pytest.raises(ControlError, match="cannot set 'wdogstate'"):
        process.control.set_values("fos1", wdogstate=2)


def test_control_refused_set_changes_nothing():
    with Emulator([(LOOPBACK, 0)], udp_port=None, control=(LOOPBACK, 0)) as emulator:
        control = EmulatorControl(emulator.control_address)
        with pytest.raises(ControlError, match="cannot set 'wdogstate'"):
            control.set_values("fos1", mode=0, wdogstate=2)
        assert emulator.devices[0].relay_mode == RELAY_A_B
        assert emulator.relay_log_since(0) == []


def test_control_refused_options_change_nothing():
    with Emulator([(LOOPBACK, 0)], udp_port=None, control=(LOOPBACK, 0)) as emulator:
        status, answer = control_status(emulator.control_address, "POST",
                                        "/devices/fos1/options",
                                        {"checked_style": True, "no_such_option": True})
        assert status == 400 and "no_such_option" in answer["error"]
        assert emulator.devices[0].options.checked_style is False


def test_control_refuses_an_option_value_of_the_wrong_type():
    with Emulator([(LOOPBACK, 0)], udp_port=None, control=(LOOPBACK, 0)) as emulator:
        status, _answer = control_status(emulator.control_address, "POST",
                                         "/devices/fos1/options", {"relay_delay": "soon"})
        assert status == 400
        assert write(emulator.devices[0], "cmd=4&mode=0").status_code == 200


def test_control_expires_the_watchdog():
    with Emulator([(LOOPBACK, 0)], udp_port=None, control=(LOOPBACK, 0)) as emulator:
        control = EmulatorControl(emulator.control_address)
        control.set_values("fos1", wdog=True)
        described = control.expire_watchdog("fos1")
        assert (described["watchdog_state"], described["relay_mode"]) == (2, RELAY_A_D)
        assert [e["cause"] for e in control.relay_log()] == ["watchdog"]


def test_control_power_cycle(emulator_process):
    process = emulator_process()
    client = BerofosClient(process_entry(process), timeout=2)
    assert process.control.power("fos1", "cycle", seconds=0.3)["powered"] is False
    wait_for(lambda: process.control.device("fos1")["powered"], what="power on")
    assert client.read_settings().relay_mode == RELAY_A_B
    assert [e["cause"] for e in process.control.relay_log()] == ["power-off", "boot"]


def test_control_flash_mode(emulator_process):
    process = emulator_process()
    entry = process_entry(process)
    client = BerofosClient(entry, timeout=2)
    assert process.control.flash_mode("fos1", True)["flash_mode"] is True
    with pytest.raises(DeviceUnreachable):
        client.read_settings()
    [reply] = Gbl4Client(port=process.udp_port, timeout=0.2).scan(LOOPBACK, window=0.2)
    assert reply.mac == parse_mac(entry.mac) and not reply.operational
    process.control.flash_mode("fos1", False)
    assert client.read_settings().relay_mode == RELAY_A_B


def test_control_switches_options(emulator_process):
    process = emulator_process()
    entry = process_entry(process)
    described = process.control.options("fos1", checked_style=True, unknown_lines=True)
    assert described["options"]["checked_style"] is True
    body = get(f"http://{entry.host}:{entry.port}/config.txt").text
    assert "\n3_dhcp=\n" in body and body.endswith("2_mail=\n")


def test_control_serves_the_request_log(idle_process):
    entry = process_entry(idle_process, 1)  # fos2: no other test sends it requests
    base = f"http://{entry.host}:{entry.port}"
    get(base + "/config.txt")
    get(base + "/?cmd=4&mode=7")  # refused: the device stays as it was
    logged = idle_process.control.requests("fos2")
    assert [(r["path"], r["status"]) for r in logged] == [("/config.txt", 200),
                                                          ("/?cmd=4&mode=7", 400)]
    assert all(r["received"] <= r["time"] for r in logged)
    assert idle_process.control.device("fos2")["requests"] == 2


@pytest.mark.parametrize("method, path, body, status", [
    ("GET", "/devices/fos9", None, 404),
    ("GET", "/devices/127.0.0.1:1", None, 404),
    ("POST", "/devices/fos1/fault", {"kind": "meteor"}, 400),
    ("POST", "/devices/fos1/fault", {"kind": "status", "scope": "sometimes"}, 400),
    ("POST", "/devices/fos1/fault", {"kind": "status", "colour": "red"}, 400),
    ("POST", "/devices/fos1/options", {"no_such_option": True}, 400),
    ("POST", "/devices/fos1/power", {"action": "explode"}, 400),
    ("POST", "/devices/fos1/teleport", {}, 404),
], ids=["unknown-name", "unknown-address", "unknown-fault-kind", "unknown-fault-scope",
        "unknown-fault-field", "unknown-option", "unknown-power-action", "unknown-action"])
def test_control_refuses_bad_requests(idle_process, method, path, body, status):
    got, answer = control_status(idle_process.info["control"], method, path, body)
    assert got == status
    assert answer["error"]
    described = idle_process.control.device("fos1")
    assert (described["faults"], described["powered"]) == ([], True)
    assert "no_such_option" not in described["options"]


# -- 11. passwords -------------------------------------------------------------------------


def test_request_log_hides_the_password(protected_http_emulator):
    device = protected_http_emulator.devices[0]
    new = "n3w-" + "secret"
    assert write(device, f"cmd=3&apwd={new}&pwd=1", ("admin", PASSWORD)).status_code == 200
    assert device.requests[-1]["path"] == "/?cmd=3&apwd=<hidden>&pwd=1"
    assert new not in json.dumps(device.requests)


def test_request_log_hides_every_password_value(protected_http_emulator):
    device = protected_http_emulator.devices[0]
    first, second = "first-" + "pw", "second-" + "pw"
    assert write(device, f"cmd=3&apwd={first}&apwd={second}",
                 ("admin", PASSWORD)).status_code == 200
    assert second not in json.dumps(device.requests)


def test_setting_apwd_over_http_changes_the_password(protected_http_emulator):
    device = protected_http_emulator.devices[0]
    new = "fresh-" + "pw"
    assert write(device, f"cmd=3&apwd={new}", ("admin", PASSWORD)).status_code == 200
    assert get(base_url(device) + "/config.txt", ("admin", PASSWORD)).status_code == 401
    assert get(base_url(device) + "/config.txt", ("admin", new)).status_code == 200


def test_describe_never_contains_the_password():
    secret = "zq" + "-hidden-" + "pw"
    with Emulator([(LOOPBACK, 0)], udp_port=None, password=secret,
                  control=(LOOPBACK, 0)) as emulator:
        device = emulator.devices[0]
        write(device, f"cmd=3&apwd={secret}", ("admin", secret))
        described = device.describe()
        assert described["password_set"] is True
        shown = json.dumps([described, emulator.describe(),
                            EmulatorControl(emulator.control_address).devices()])
        assert secret not in shown


# -- 12. several devices in one process ----------------------------------------------------


def test_devices_on_one_host_share_one_udp_endpoint():
    with Emulator([(LOOPBACK, 0), (LOOPBACK, 0)], udp_port=0) as emulator:
        first, second = emulator.devices
        assert first.listen[1] != second.listen[1]
        replies = gbl4(emulator, timeout=0.2).scan(LOOPBACK, window=0.2)
        assert sorted((r.mac, r.http_port) for r in replies) == sorted(
            [(first.mac, first.listen[1]), (second.mac, second.listen[1])])


def test_each_device_answers_for_its_own_mac():
    with Emulator([(LOOPBACK, 0), (LOOPBACK, 0)], udp_port=0) as emulator:
        first, second = emulator.devices
        request = NetconfRequest(second.mac, "10.9.9.9", "255.255.0.0", "10.9.0.1", 3, 0, 8080)
        gbl4(emulator).netconf(request, LOOPBACK)
        assert (second.values["address"], second.values["port"]) == ("10.9.9.9", 8080)
        assert (first.values["address"], first.values["port"]) == (LOOPBACK, first.listen[1])
        assert config(first)["3_ip"] == LOOPBACK and config(second)["3_ip"] == "10.9.9.9"


def test_request_log_hides_percent_encoded_password_names(emulator):
    device = emulator.devices[0]
    assert write(device, "cmd=3&%61pwd=hidden1&apwd=hidden2").status_code == 200
    logged = device.requests[-1]["path"]
    assert "hidden1" not in logged and "hidden2" not in logged
    assert device.password == "hidden2"


def test_huge_number_in_a_request_is_a_bad_request(http_emulator):
    device = http_emulator.devices[0]
    assert write(device, "cmd=2&wintv=" + "9" * 5000).status_code == 400
    assert write(device, "cmd=" + "1" * 5000 + "&sz=0").status_code == 400


# -- issue 9 --------------------------------------------------------------------------------


def test_a_power_cycle_leaves_flash_mode():
    with Emulator([(LOOPBACK, 0)], udp_port=None) as emulator:
        device = emulator.devices[0]
        device.set_flash_mode(True)
        device.power_off()
        device.power_on()
        assert not device.flash_mode and device.describe()["flash_mode"] is False


def test_the_emulator_switches_come_from_device_options():
    switches = {s.flag: (s.name, s.default) for s in option_switches()}
    assert switches["--open-reads"] == ("auth_reads", True)
    assert switches["--relay-delay"] == ("relay_delay", 0.0)
    assert set(vars(DeviceOptions())) == {name for name, _ in switches.values()}


def test_emulator_process_takes_every_switch(emulator_process):
    process = emulator_process(extra=[s.flag for s in option_switches()
                                      if isinstance(s.default, bool)]
                               + ["--relay-delay", "0.1"])
    options = process.control.device("fos1")["options"]
    assert options == {"checked_style": True, "legacy_group_reset": True, "auth_reads": False,
                       "relay_delay": 0.1, "defaults_at_boot": False, "unknown_lines": True}


def test_control_client_says_why_it_cannot_reach_the_emulator():
    with pytest.raises(ControlError, match="unreachable: connection refused$"):
        EmulatorControl("127.0.0.1:1", timeout=2).devices()
