"""The GBL4 UDP client (:class:`~berofos_ocf.udp.Gbl4Client`) against the emulator.

Scan (unicast, loopback broadcast, and the real 255.255.255.255 inside a network
namespace made for the test), netconf, ping, kick, flash and reset, each with
its failure modes.  Where a device must misbehave in ways the emulator does not
(duplicate replies, garbage, another hardware magic), a plain UDP socket on
127.0.0.1 made here plays the device or relays between client and emulator.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from berofos_ocf.emulator import Emulator
from berofos_ocf.emulator.device import EmulatedDevice, factory_values
from berofos_ocf.emulator.udpfront import UdpEndpoint
from berofos_ocf.errors import DeviceError, DeviceTimeout
from berofos_ocf.gbl4 import (
    PAGE_SIZE,
    AnyReply,
    Command,
    NetconfRequest,
    Options,
    ScanReply,
    frame,
    parse_mac,
)
from berofos_ocf.udp import Gbl4Client

from .conftest import PASSWORD, PYTHON, ROOT

LOOPBACK = "127.0.0.1"
OTHER_MAC = parse_mac("02:00:00:00:00:99")
WINDOW = 0.2  # loopback answers take microseconds


# -- helpers -------------------------------------------------------------------------------


def client(port: int, timeout: float = WINDOW) -> Gbl4Client:
    return Gbl4Client(port=port, timeout=timeout)


def free_udp_port() -> int:
    """A UDP port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def scan_reply(mac: bytes, *, ip: str = "10.0.0.5", hw_magic: int = 0x0050) -> bytes:
    return ScanReply(mac, hw_magic, (1, 2), (1, 53), 0, ip, "255.255.255.0", "10.0.0.1", 3, 7,
                     0, 80).encode()


class _Loop:
    """A thread serving UDP sockets until closed."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self._sockets = sockets
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select(self._sockets, [], [], 0.05)
            for sock in readable:
                try:
                    datagram, sender = sock.recvfrom(2048)
                except OSError:
                    continue
                self.on_datagram(sock, datagram, sender)

    def on_datagram(self, sock, datagram, sender) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for sock in self._sockets:
            sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class FakeDevice(_Loop):
    """A socket on 127.0.0.1 that records requests and answers with crafted datagrams."""

    def __init__(self, replies) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.replies = replies
        self.received: list[bytes] = []
        super().__init__([self.sock])

    def on_datagram(self, sock, datagram, sender) -> None:
        self.received.append(datagram)
        for reply in self.replies(datagram):
            sock.sendto(reply, sender)


class Relay(_Loop):
    """Between client and emulator: records requests, sends each reply ``copies`` times."""

    def __init__(self, upstream_port: int, copies: int = 1) -> None:
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((LOOPBACK, 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((LOOPBACK, 0))
        self.port = self.front.getsockname()[1]
        self.upstream = (LOOPBACK, upstream_port)
        self.copies = copies
        self.requests: list[bytes] = []
        self.replies_sent = 0
        self._client = None
        super().__init__([self.front, self.back])

    def on_datagram(self, sock, datagram, sender) -> None:
        if sock is self.front:
            self._client = sender
            self.requests.append(datagram)
            self.back.sendto(datagram, self.upstream)
        elif self._client is not None:
            for _ in range(self.copies):
                self.front.sendto(datagram, self._client)
                self.replies_sent += 1


@pytest.fixture(scope="module")
def two_devices():
    """Two devices behind one GBL4 endpoint, shared by the tests that change nothing."""
    with Emulator([(LOOPBACK, 0), (LOOPBACK, 0)], udp_port=0) as emulator:
        yield emulator


# -- 1. scan by unicast --------------------------------------------------------------------


def test_unicast_scan_returns_one_reply_per_device(two_devices):
    replies = client(two_devices.udp_port).scan(LOOPBACK, window=WINDOW)
    by_mac = {reply.mac: reply for reply in replies}
    assert len(replies) == 2
    assert set(by_mac) == {device.mac for device in two_devices.devices}
    for device in two_devices.devices:
        reply = by_mac[device.mac]
        assert (reply.ip, reply.http_port) == (LOOPBACK, device.listen[1])
        assert (reply.netmask, reply.gateway) == ("255.255.255.0", "0.0.0.0")
        assert reply.firmware_version == "1.53" and reply.hw_magic == 0x0050
        assert reply.operational and not reply.options & Options.HTTP_AUTH


def test_scan_shows_password_protection(protected_emulator):
    [reply] = client(protected_emulator.udp_port).scan(LOOPBACK, window=WINDOW)
    assert reply.options & Options.HTTP_AUTH
    assert reply.mac == protected_emulator.devices[0].mac


def test_scan_shows_flash_mode(emulator):
    emulator.devices[0].set_flash_mode(True)
    [reply] = client(emulator.udp_port).scan(LOOPBACK, window=WINDOW)
    assert reply.dev_mode != 0 and not reply.operational


def test_scan_keeps_one_reply_per_mac_when_the_device_answers_twice(two_devices):
    with Relay(two_devices.udp_port, copies=2) as relay:
        replies = client(relay.port).scan(LOOPBACK, window=WINDOW)
        assert relay.replies_sent == 4
    assert sorted(r.mac for r in replies) == sorted(d.mac for d in two_devices.devices)


def test_scan_keeps_the_first_reply_of_a_mac_in_arrival_order():
    first, second = parse_mac("00:19:32:00:00:0A"), parse_mac("00:19:32:00:00:0B")
    crafted = [scan_reply(second, ip="10.0.0.2"), scan_reply(first, ip="10.0.0.1"),
               scan_reply(second, ip="10.0.0.99")]
    with FakeDevice(lambda request: crafted) as fake:
        replies = client(fake.port).scan(LOOPBACK, window=WINDOW)
    assert [(r.mac, r.ip) for r in replies] == [(second, "10.0.0.2"), (first, "10.0.0.1")]


class SpoofingDevice(_Loop):
    """Answers a scan sent to 127.0.0.1 from 127.0.0.2 as well: another host on the segment."""

    def __init__(self, genuine: list[bytes], forged: list[bytes]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other.bind(("127.0.0.2", 0))
        self.port = self.sock.getsockname()[1]
        self.genuine, self.forged = genuine, forged
        super().__init__([self.sock, self.other])

    def on_datagram(self, sock, datagram, sender) -> None:
        for reply in self.forged:  # the forger is quicker
            self.other.sendto(reply, sender)
        time.sleep(0.02)
        for reply in self.genuine:
            self.sock.sendto(reply, sender)


def test_scan_ignores_a_reply_from_an_address_it_does_not_give():
    known, other = parse_mac("00:19:32:00:00:0A"), parse_mac("00:19:32:00:00:0B")
    forged = [scan_reply(known, ip="10.6.6.6"), scan_reply(other, ip="10.6.6.7")]
    genuine = [scan_reply(known, ip="10.0.0.1")]
    with SpoofingDevice(genuine, forged) as fake:
        replies = client(fake.port).scan(LOOPBACK, window=WINDOW)
    assert [(r.mac, r.ip) for r in replies] == [(known, "10.0.0.1")]


def test_scan_accepts_another_sender_that_gives_its_own_address():
    mac = parse_mac("00:19:32:00:00:0C")
    with SpoofingDevice([], [scan_reply(mac, ip="127.0.0.2")]) as fake:
        replies = client(fake.port).scan(LOOPBACK, window=WINDOW)
    assert [(r.mac, r.ip) for r in replies] == [(mac, "127.0.0.2")]


# -- 2. scan by broadcast on loopback ------------------------------------------------------


def test_scan_by_loopback_broadcast():
    with Emulator([(LOOPBACK, 0)], udp_port=0, broadcast=("127.255.255.255",)) as emulator:
        replies = client(emulator.udp_port).scan("127.255.255.255", window=WINDOW)
        assert [r.mac for r in replies] == [emulator.devices[0].mac]


def test_loopback_broadcast_reaches_no_emulator_without_a_broadcast_socket(two_devices):
    assert client(two_devices.udp_port).scan("127.255.255.255", window=WINDOW) == []


# -- 3. scan by 255.255.255.255 in a network namespace -------------------------------------

NETNS_SCRIPT = r"""
import json
from berofos_ocf.emulator import Emulator
from berofos_ocf.udp import Gbl4Client

with Emulator([("10.123.0.1", 0)], udp_port=0, broadcast=("255.255.255.255",)) as emulator:
    replies = Gbl4Client(port=emulator.udp_port).scan(window=0.5)
    print(json.dumps({
        "devices": [{"mac": d.mac.hex(), "port": d.listen[1]} for d in emulator.devices],
        "replies": [{"mac": r.mac.hex(), "ip": r.ip, "http_port": r.http_port}
                    for r in replies],
    }))
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


@pytest.fixture
def netns():
    """A network namespace with a veth pair, 10.123.0.1/24 and a default route."""
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    if shutil.which("ip") is None:
        pytest.skip("the ip command (iproute2) is not installed")
    name = f"bfos-udp-{uuid.uuid4().hex[:8]}"
    created = _ip("netns", "add", name, check=False)
    if created.returncode != 0:
        pytest.skip(f"ip netns add is not permitted here: {created.stderr.strip()}")
    # `ip netns exec` puts /etc/netns/NAME/hosts over /etc/hosts.  Without a name
    # for 10.123.0.1, http.server's bind (socket.getfqdn) would wait for a DNS
    # server that this namespace cannot reach.
    etc_netns = Path("/etc/netns")
    made_etc_netns = not etc_netns.exists()
    etc = etc_netns / name
    try:
        try:
            etc.mkdir(parents=True)
            (etc / "hosts").write_text("127.0.0.1 localhost\n10.123.0.1 fos-under-test.invalid\n")
        except OSError:
            pass  # slower start (a DNS timeout), same result
        entered = _ip("netns", "exec", name, "true", check=False)
        if entered.returncode != 0:
            pytest.skip(f"ip netns exec is not permitted here: {entered.stderr.strip()}")
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", "bfos0", "type", "veth", "peer", "name", "bfos1")
        _ip("-n", name, "addr", "add", "10.123.0.1/24", "dev", "bfos0")
        _ip("-n", name, "link", "set", "bfos0", "up")
        _ip("-n", name, "link", "set", "bfos1", "up")
        _ip("-n", name, "route", "add", "default", "dev", "bfos0")
        yield name
    finally:
        _ip("netns", "del", name, check=False)
        shutil.rmtree(etc, ignore_errors=True)
        if made_etc_netns:
            try:
                etc_netns.rmdir()
            except OSError:
                pass


@pytest.mark.netns
def test_scan_by_default_broadcast_in_a_network_namespace(netns):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(["ip", "netns", "exec", netns, PYTHON, "-c", NETNS_SCRIPT],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    [device] = found["devices"]
    assert found["replies"] == [{"mac": device["mac"], "ip": "10.123.0.1",
                                 "http_port": device["port"]}]


# -- 4. nobody answering, foreign datagrams ------------------------------------------------


def test_scan_without_answer_returns_nothing_after_the_window():
    with FakeDevice(lambda request: []) as silent:
        started = time.monotonic()
        assert client(silent.port).scan(LOOPBACK, window=WINDOW) == []
        assert time.monotonic() - started < 5  # bounded by the window, not stuck
        assert len(silent.received) == 1


def test_scan_skips_garbage_and_foreign_datagrams():
    mac = parse_mac("00:19:32:00:00:0C")
    good = scan_reply(mac)
    bad_check = good[:-1] + bytes([good[-1] ^ 0xFF])
    junk = [b"", b"GBL", b"hello, not a berofos", b"GBL\x05\x01" + good[5:], bad_check,
            good[:20], AnyReply(Command.PING, mac).encode(), frame(Command.SCAN, b"\x00" * 5)]
    with FakeDevice(lambda request: junk + [good]) as fake:
        replies = client(fake.port).scan(LOOPBACK, window=WINDOW)
    assert [r.mac for r in replies] == [mac]


def test_scan_skips_replies_with_another_hardware_magic():
    foreign, known = parse_mac("00:19:32:00:00:0D"), parse_mac("00:19:32:00:00:0E")
    crafted = [scan_reply(foreign, hw_magic=0x1234), scan_reply(known, hw_magic=0x00BB)]
    with FakeDevice(lambda request: crafted) as fake:
        replies = client(fake.port).scan(LOOPBACK, window=WINDOW)
    assert [(r.mac, r.hw_magic) for r in replies] == [(known, 0x00BB)]


# -- 5. netconf ----------------------------------------------------------------------------


def test_netconf_changes_the_network_settings(emulator):
    device = emulator.devices[0]
    request = NetconfRequest(device.mac, "10.1.2.3", "255.255.0.0", "10.1.0.1", 3,
                             Options.DHCP, 8080)
    client(emulator.udp_port).netconf(request, LOOPBACK)
    settings = device.settings()
    assert (settings["address"], settings["netmask"], settings["gateway"]) == (
        "10.1.2.3", "255.255.0.0", "10.1.0.1")
    assert (settings["dhcp"], settings["port"]) == (True, 8080)
    [reply] = client(emulator.udp_port).scan(LOOPBACK, window=WINDOW)
    assert (reply.ip, reply.http_port, reply.dhcp) == ("10.1.2.3", 8080, True)


def test_netconf_error_code_raises_device_error(emulator):
    device = emulator.devices[0]
    before = dict(device.values)
    request = NetconfRequest(device.mac, "10.1.2.3", "255.255.0.0", "10.1.0.1", 3, 0, 0)
    with pytest.raises(DeviceError, match="error code 1"):
        client(emulator.udp_port).netconf(request, LOOPBACK)
    assert device.values == before


def test_netconf_to_another_mac_times_out(two_devices):
    before = [dict(device.values) for device in two_devices.devices]
    request = NetconfRequest(OTHER_MAC, "10.1.2.3", "255.255.0.0", "10.1.0.1", 3, 0, 8080)
    with pytest.raises(DeviceTimeout):
        client(two_devices.udp_port).netconf(request, LOOPBACK)
    assert [device.values for device in two_devices.devices] == before


# -- 6. ping and kick ----------------------------------------------------------------------


def test_ping_returns_a_round_trip(two_devices):
    mac = two_devices.devices[0].mac
    round_trip = client(two_devices.udp_port, timeout=2).ping(mac, LOOPBACK)
    assert 0 <= round_trip < 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked_device():
    """A device on a clock the test moves, behind the emulator's own GBL4 endpoint."""
    clock = FakeClock()
    mac = parse_mac("00:19:32:00:00:42")
    device = EmulatedDevice("fos1", mac, LOOPBACK, 80, clock=clock,
                            initial={"wdogitime": 60})
    endpoint = UdpEndpoint(LOOPBACK, 0, [device])
    endpoint.start()
    try:
        yield device, clock, endpoint.address[1]
    finally:
        endpoint.stop()


def test_kick_restarts_the_watchdog_interval(clocked_device):
    device, clock, port = clocked_device
    device.operator_set({"wdog": True})
    clock.now += 50
    assert device.settings()["wdogrtime"] == 10
    client(port, timeout=2).kick(device.mac, LOOPBACK)
    assert device.settings()["wdogrtime"] == 60
    clock.now += 59
    device.tick()
    assert device.watchdog_state == 1  # 109 s after start, 59 s after the kick


def test_kick_does_not_start_a_stopped_watchdog(clocked_device):
    device, _clock, port = clocked_device
    client(port, timeout=2).kick(device.mac, LOOPBACK)
    assert device.watchdog_state == 0 and device.settings()["wdogrtime"] == 0


@pytest.mark.parametrize("what", ["ping", "kick"])
def test_unknown_mac_times_out_within_the_client_timeout(two_devices, what):
    started = time.monotonic()
    with pytest.raises(DeviceTimeout, match="no answer"):
        getattr(client(two_devices.udp_port, timeout=0.3), what)(OTHER_MAC, LOOPBACK)
    assert time.monotonic() - started < 3  # bounded by the 0.3 s timeout


def test_timeout_message_names_the_timeout(two_devices):
    with pytest.raises(DeviceTimeout) as caught:
        client(two_devices.udp_port, timeout=0.3).ping(OTHER_MAC, LOOPBACK)
    assert "0.3 s" in str(caught.value)


# -- 7. flash ------------------------------------------------------------------------------

IMAGE = bytes((i * 7 + 3) % 256 for i in range(1500))


def test_flash_is_refused_outside_flash_mode_before_any_page(two_devices):
    device = two_devices.devices[0]
    with Relay(two_devices.udp_port) as relay:
        with pytest.raises(DeviceError, match="not in flash mode"):
            client(relay.port).flash(device.mac, LOOPBACK, IMAGE)
        assert [request[4] for request in relay.requests] == [Command.SCAN]
    assert device.image_info() is None


def test_flash_writes_the_image_in_flash_mode(emulator):
    device = emulator.devices[0]
    device.set_flash_mode(True)
    progress = []
    pages = client(emulator.udp_port).flash(
        device.mac, LOOPBACK, IMAGE, progress=lambda done, total: progress.append((done, total)))
    assert pages == 3
    assert progress == [(1, 3), (2, 3), (3, 3)]
    padded = IMAGE.ljust(3 * PAGE_SIZE, b"\x00")
    assert device.image_info() == {"pages": 3, "sha256": hashlib.sha256(padded).hexdigest()}


# -- 8. reset ------------------------------------------------------------------------------


def test_reset_outside_flash_mode_is_refused_with_an_error_code(protected_emulator):
    device = protected_emulator.devices[0]
    device.operator_set({"hostname": "fos-left"})
    with pytest.raises(DeviceError, match="reset refused with error code 1"):
        client(protected_emulator.udp_port).reset(device.mac, LOOPBACK)
    assert device.values["hostname"] == "fos-left"
    assert device.check_password("admin", PASSWORD)
    assert device.firmware == (1, 53)


def test_reset_in_flash_mode_erases_the_device(protected_emulator):
    device = protected_emulator.devices[0]
    device.operator_set({"hostname": "fos-left", "modedef": 0, "wdogitime": 5})
    device.set_flash_mode(True)
    client(protected_emulator.udp_port).reset(device.mac, LOOPBACK)
    address, port = device.listen
    assert device.values == factory_values(address, port)
    assert device.password == "" and not device.check_password("admin", PASSWORD)
    [reply] = client(protected_emulator.udp_port).scan(LOOPBACK, window=WINDOW)
    assert reply.firmware_version == "0.0"
    assert not reply.options & Options.HTTP_AUTH


def test_reset_leaves_no_watchdog_running(emulator):
    device = emulator.devices[0]
    device.operator_set({"wdogitime": 600, "wdog": True})
    device.set_flash_mode(True)
    client(emulator.udp_port).reset(device.mac, LOOPBACK)
    fresh = EmulatedDevice("fresh", device.mac, *device.listen)
    assert device.settings().values() == fresh.settings().values()


# -- 9. ICMP port unreachable --------------------------------------------------------------


def test_closed_port_is_a_timeout_not_a_crash():
    port = free_udp_port()
    started = time.monotonic()
    with pytest.raises(DeviceTimeout):
        client(port).ping(OTHER_MAC, LOOPBACK)
    assert client(port).scan(LOOPBACK, window=WINDOW) == []
    assert time.monotonic() - started < 5


# -- issue 9: one scan asks several addresses ---------------------------------------------


def test_one_scan_asks_several_addresses():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Emulator([(LOOPBACK, 0), ("127.0.0.2", 0)], udp_port=port) as emulator:
        replies = client(port).scan([LOOPBACK, "127.0.0.2"], window=0.3)
        assert sorted(r.mac for r in replies) == sorted(d.mac for d in emulator.devices)
        assert [r.ip for r in client(port).scan("127.0.0.2", window=0.3)] == ["127.0.0.2"]
