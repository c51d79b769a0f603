"""The ``berofos`` command: set up, inspect and switch berofos devices.

A thin layer over the library: it parses arguments, picks the devices (sections
of ``bnfos.conf`` or ``--host``), calls :mod:`berofos_ocf.client` /
:mod:`berofos_ocf.udp` and prints.  Exit status: 0 success, 1 a device failed,
2 a usage or configuration error.  Every error is one line on stderr, never a
traceback, and never a password.
"""

from __future__ import annotations

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_DEVICE", "EXIT_USAGE"]

import argparse
import contextlib
import getpass
import json
import os
import signal
import sys
import threading
import time

from . import __version__
from .bnfosconf import (
    DEFAULT_PATH,
    BnfosConf,
    DeviceEntry,
    load_bnfos_conf,
    merge_devices,
    parse_host,
    read_bnfos_bytes,
    render_bnfos_conf,
    update_logins,
    write_bnfos_conf,
)
from .client import DEFAULT_TIMEOUT, BerofosClient, DeviceStatus, for_each_device, read_status
from .deadline import Deadline
from .errors import BerofosError, ConfigFileError, DeviceTimeout, FormatError, InvalidValue
from .gbl4 import PHY_CONF_LABELS, NetconfRequest, Options, format_mac, parse_mac
from .keys import (
    KEYS,
    RELAY_LABELS,
    SCENARIO_LABELS,
    WATCHDOG_LABELS,
    lookup,
    parse_decimal,
    parse_ipv4,
    parse_relay_mode,
)
from .runstate import DEFAULT_RUN_DIR, RunDirectory, UnsafeRunDirectory, promoted_instances
from .text import shown
from .udp import BROADCAST, DEFAULT_UDP_PORT, Gbl4Client

EXIT_OK, EXIT_DEVICE, EXIT_USAGE = 0, 1, 2
LOGIN_ENV = "BEROFOS_LOGIN"
STATE_DIR_ENV = "HA_RSCTMP"  # where resource-agents keeps the agent's run files


class UsageError(BerofosError):
    """Wrong arguments: exit status 2."""


class NotHolding(BerofosError):
    """``check --holder`` on a node that does not hold the lines: exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _ConfigPath(argparse.Action):
    """``-c FILE``, remembered as given: ``check --holder`` refuses a device selection."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        namespace.config_given = True


class _Context:
    """What a command needs besides its arguments; injectable for tests."""

    def __init__(self, args, stdout, stderr, stdin, environ) -> None:
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
        self.environ = environ
        self._clients: list[BerofosClient] = []

    _lock = threading.Lock()  # devices are handled in threads: one line at a time

    def print(self, line: str = "") -> None:
        with self._lock:
            self.stdout.write(f"{line}\n")
            self.stdout.flush()

    def warn(self, message: str) -> None:
        with self._lock:
            self.stderr.write(f"berofos: {message}\n")
            self.stderr.flush()

    def ask(self, question: str) -> str:
        """The line the operator types after ``question``."""
        with self._lock:
            self.stdout.write(question)
            self.stdout.flush()
        return self.stdin.readline()

    def devices(self) -> list[DeviceEntry]:
        """The devices chosen by ``--host`` or by ``-c``/``-f``."""
        args = self.args
        if args.host:
            if args.device:
                raise UsageError("use either --host or -f, not both")
            try:
                host, port = parse_host(args.host)
            except InvalidValue as err:
                raise UsageError(f"--host: {err}") from None
            user = password = None
            login = self.environ.get(LOGIN_ENV)
            if login:
                user, _, password = login.partition(":")
            mac = format_mac(_mac(args.mac)) if args.mac else None
            return [DeviceEntry(host, mac=mac, host=host, port=port, user=user,
                                password=password)]
        names = [n for item in args.device or [] for n in item.split(",") if n.strip()]
        return self.config().select(names)

    def config(self) -> BnfosConf:
        try:
            return load_bnfos_conf(self.args.config)
        except ConfigFileError as err:
            if err.kind != "missing":
                raise
            raise ConfigFileError("file not found: write it with 'berofos scan --write "
                                  f"{self.args.config}', or name a device with --host",
                                  path=self.args.config, kind="missing") from None

    def one_device(self) -> DeviceEntry:
        devices = self.devices()
        if len(devices) != 1:
            names = ", ".join(d.name for d in devices)
            raise UsageError(f"this command works on one device; choose one with -f ({names})")
        return devices[0]

    def clients(self, devices: list[DeviceEntry]) -> list[BerofosClient]:
        made = [BerofosClient(d, timeout=self.args.timeout) for d in devices]
        self._clients += made
        return made

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def udp(self) -> Gbl4Client:
        return Gbl4Client(port=self.args.udp_port, timeout=self.args.timeout)


def _mac(text: str) -> bytes:
    try:
        return parse_mac(text)
    except InvalidValue as err:
        raise UsageError(str(err)) from None


def _udp_target(ctx: _Context, device: DeviceEntry) -> str:
    if getattr(ctx.args, "to", None):
        return ctx.args.to
    return device.host if device.host and device.host != "0.0.0.0" else BROADCAST


@contextlib.contextmanager
def _udp_hint(target: str):
    """A silent device asked by address may be elsewhere: say how to ask everyone."""
    try:
        yield
    except DeviceTimeout as err:
        if target == BROADCAST:
            raise
        raise DeviceTimeout(err.device, f"{err.detail} (not at that address any more, or in "
                                        "flash mode? try --to 255.255.255.255)") from None


def _device_mac(device: DeviceEntry) -> bytes:
    if not device.mac:
        raise UsageError(f"{device.name} has no MAC address: add a mac line or give --mac")
    return _mac(device.mac)


def _report(ctx: _Context, outcomes: list, devices: list[DeviceEntry]) -> int:
    """Print one line per failed device; the exit status of the lot."""
    status = EXIT_OK
    for outcome in outcomes:
        if isinstance(outcome, BerofosError):
            ctx.warn(str(outcome))
            status = EXIT_DEVICE
        elif isinstance(outcome, Exception):
            raise outcome
    return status


# -- status, show, get ----------------------------------------------------------------------

def _status_record(status: DeviceStatus) -> dict:
    record = {"name": status.device.name, "address": status.device.address,
              "mac": status.device.mac, "reachable": status.reachable}
    if not status.reachable:
        record["error"] = str(status.error)
        record["problem"] = getattr(status.error, "detail", str(status.error))
        return record
    values = status.settings.values()
    mode = values.get("mode")
    record.update({
        "relays": RELAY_LABELS.get(mode), "relay_mode": mode,
        "scenario": SCENARIO_LABELS.get(values.get("scenario")),
        "watchdog": {"enabled": values.get("wdog"),
                     "state": WATCHDOG_LABELS.get(values.get("wdogstate")),
                     "interval": values.get("wdogitime"), "remaining": values.get("wdogrtime")},
        "power_on": {"relays": RELAY_LABELS.get(values.get("modedef")),
                     "watchdog": values.get("wdogdef")},
        "password_protection": values.get("pwd"),
    })
    invalid = status.settings.invalid()
    problems = [f"{name}: {_not_understood(raw)}" for name, raw in invalid.items()]
    if mode is None and "mode" not in invalid:
        problems.append("no relay mode in config.txt")
    if status.settings.magic != "0.1":
        problems.append(f"firmware format {shown(status.settings.magic)}, expected 0.1")
    record["problem"] = "; ".join(problems)
    return record


def _cmd_status(ctx: _Context) -> int:
    devices = ctx.devices()
    records = [_status_record(s) for s in _read_statuses(ctx, devices)]
    if ctx.args.json:
        ctx.print(json.dumps(records, indent=2))
    else:
        rows = [("DEVICE", "ADDRESS", "REACHABLE", "RELAYS", "SCENARIO", "WATCHDOG",
                 "POWER-ON RELAYS", "POWER-ON WATCHDOG", "PROBLEM")]
        for r in records:
            if not r["reachable"]:
                rows.append((r["name"], r["address"], "no", "-", "-", "-", "-", "-",
                             r["problem"]))
                continue
            watchdog = r["watchdog"]["state"] or "?"
            if watchdog == "on":
                watchdog += f" ({r['watchdog']['remaining']}s left)"
            rows.append((r["name"], r["address"], "yes", r["relays"] or "?",
                         r["scenario"] or "?", watchdog, r["power_on"]["relays"] or "?",
                         "on" if r["power_on"]["watchdog"] else "off", r["problem"]))
        _table(ctx, rows)
    healthy = all(r["reachable"] and r["relays"] for r in records)
    return EXIT_OK if healthy else EXIT_DEVICE


def _table(ctx: _Context, rows: list[tuple]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        ctx.print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


def _read_statuses(ctx: _Context, devices: list[DeviceEntry]) -> list[DeviceStatus]:
    """Every device read once, in parallel, within one request timeout (and a second)."""
    return read_status(ctx.clients(devices), Deadline(ctx.args.timeout + 1))


def _read_all(ctx: _Context, devices: list[DeviceEntry]) -> tuple[list[DeviceStatus], int]:
    statuses = _read_statuses(ctx, devices)
    status = _report(ctx, [s.error for s in statuses if s.error], devices)
    return statuses, status


def _cmd_show(ctx: _Context) -> int:
    statuses, status = _read_all(ctx, ctx.devices())
    reachable = [s for s in statuses if s.reachable]
    if ctx.args.json:
        ctx.print(json.dumps({s.device.name: s.settings.values() for s in reachable}, indent=2))
        return status
    for s in reachable:
        ctx.print(f"Configuration of {s.device.label}:")
        values = s.settings.values()
        for key in KEYS:
            if key.name in values:
                ctx.print(f" {key.name:<10}= {shown(key.format_user(values[key.name]))}")
        for name, raw in s.settings.invalid().items():
            ctx.print(f" {name:<10}= {_not_understood(raw)}")
        for wire, raw in s.settings.unknown.items():
            ctx.print(f" {shown(wire):<10}= {shown(raw)} (unknown line)")
        ctx.print("")
    return status


def _cmd_get(ctx: _Context) -> int:
    try:
        keys = [lookup(name) for name in ctx.args.keys]
    except InvalidValue as err:
        raise UsageError(str(err)) from None
    for key in keys:
        if not key.readable:
            raise UsageError(f"{key.name} is write-only")
    statuses, status = _read_all(ctx, ctx.devices())
    reachable = [s for s in statuses if s.reachable]
    if ctx.args.json:
        values = {s.device.name: s.settings.values() for s in reachable}
        ctx.print(json.dumps({name: {k.name: device_values.get(k.name) for k in keys}
                              for name, device_values in values.items()}, indent=2))
        return status
    prefix = len(statuses) > 1
    for s in reachable:
        for key in keys:
            value = _user_value(s.settings, key)
            ctx.print(f"{s.device.name}: {key.name} = {value}" if prefix
                      else f"{key.name} = {value}")
    return status


def _user_value(settings, key) -> str:
    if key.name not in settings:
        return "(missing)"
    try:
        return shown(key.format_user(settings[key.name]))
    except FormatError:
        return _not_understood(settings.raw[key.wire])


def _not_understood(raw: str) -> str:
    """A value the device printed that does not fit its key, made safe to show."""
    return f"'{shown(raw)}' (not understood)"


# -- set, switch, password ------------------------------------------------------------------

def _parse_assignments(items: list[str]) -> dict[str, object]:
    changes = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise UsageError(f"{item!r} is not KEY=VALUE")
        try:
            key = lookup(name)
            changes[key.name] = key.parse_user(text)
        except InvalidValue as err:
            raise UsageError(str(err)) from None
    return changes


def _describe_changes(changes: dict[str, object]) -> str:
    return ", ".join(f"{name}={lookup(name).format_user(value)}" for name, value in changes.items())


def _cmd_set(ctx: _Context) -> int:
    changes = _parse_assignments(ctx.args.assignments)
    if "apwd" in changes:
        raise UsageError("a password on the command line shows in the process list: "
                         "use 'berofos password'")
    devices = ctx.devices()
    if changes.get("pwd") and not all(d.has_login for d in devices):
        raise UsageError("pwd=1 without a login would lock you out: use 'berofos password'")
    deadline = Deadline(ctx.args.wait)
    clients = ctx.clients(devices)
    outcomes = for_each_device(lambda c: c.write(changes, deadline), clients, deadline,
                               label=lambda c: c.label)
    for client, outcome in zip(clients, outcomes):
        if outcome is None:
            ctx.print(f"{client.label}: {_describe_changes(changes)} written; network settings "
                      "are not read back: check with 'berofos scan'")
        elif not isinstance(outcome, Exception):
            ctx.print(f"{client.label}: {_describe_changes(changes)} (confirmed)")
    return _report(ctx, outcomes, devices)


def _cmd_switch(ctx: _Context) -> int:
    try:
        mode = parse_relay_mode(ctx.args.position)
    except InvalidValue as err:
        raise UsageError(str(err)) from None
    devices = ctx.devices()
    deadline = Deadline(ctx.args.wait)
    clients = ctx.clients(devices)
    outcomes = for_each_device(lambda c: c.switch_relays(mode, deadline), clients, deadline,
                               label=lambda c: c.label)
    for outcome in outcomes:
        if not isinstance(outcome, Exception):
            if outcome.changed:
                ctx.print(f"{outcome.device.label}: relays {RELAY_LABELS[outcome.old_mode]} -> "
                          f"{RELAY_LABELS[outcome.new_mode]} (confirmed)")
            else:
                ctx.print(f"{outcome.device.label}: relays already {RELAY_LABELS[mode]}")
    return _report(ctx, outcomes, devices)


def _read_new_password(ctx: _Context) -> str:
    key = lookup("apwd")
    if ctx.args.stdin:
        password = ctx.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("New berofos password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise UsageError("the two passwords differ")
    try:
        return key.parse_user(password)
    except InvalidValue as err:
        raise UsageError(str(err)) from None


def _cmd_password(ctx: _Context) -> int:
    devices = ctx.devices()
    if ctx.args.update_config and ctx.args.host:
        raise UsageError("--update-config needs devices from the configuration file, not --host")
    # Whatever can go wrong with the file goes wrong before any device
    # changes: a device with a new password and a file with the old one lock
    # the cluster out.
    data = _read_for_update(ctx.args.config) if ctx.args.update_config else None
    password = _read_new_password(ctx)
    if data is not None:  # a dry run: the edited file must parse
        update_logins(data, [d.name for d in devices], "admin", password, ctx.args.config)
    deadline = Deadline(ctx.args.wait)
    clients = ctx.clients(devices)
    accepted: list[DeviceEntry] = []  # devices that took the new password

    def protect(client: BerofosClient):
        # The password first, protection second: the other order would lock
        # the device with a password nobody knows.
        client.write({"apwd": password}, deadline, confirm=False)  # apwd never reads back
        accepted.append(client.device)
        return client.write({"pwd": True}, deadline)

    outcomes = for_each_device(protect, clients, deadline, label=lambda c: c.label)
    for client, outcome in zip(clients, outcomes):
        if not isinstance(outcome, Exception):
            ctx.print(f"{client.label}: password protection on (user admin)")
    accepted = [d for d in devices if d in accepted]  # file order, whatever thread came first
    status = EXIT_OK
    if data is not None and accepted:
        status = _update_logins(ctx, data, accepted, password)
    elif accepted:
        ctx.print(f"add 'login = admin:<the password>' to the sections of "
                  f"{', '.join(d.name for d in accepted)} in {ctx.args.config} "
                  "(or use --update-config)")
    return max(_report(ctx, outcomes, devices), status)


def _check_writable(path: str) -> None:
    """Refuse a file (the target of a link) that could not be replaced."""
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: not writable (directory {directory})")
    if os.path.exists(target) and not os.access(target, os.W_OK):
        raise UsageError(f"{path}: not writable")


def _read_for_update(path: str) -> bytes:
    """The bytes of a device file that can be replaced; read as the loader reads it."""
    _check_writable(path)
    return read_bnfos_bytes(path)[0]


def _update_logins(ctx: _Context, data: bytes, devices: list[DeviceEntry],
                   password: str) -> int:
    path = ctx.args.config
    names = ", ".join(d.name for d in devices)
    try:
        write_bnfos_conf(path, update_logins(data, [d.name for d in devices], "admin",
                                             password, path))
    except OSError as err:  # the disk filled up since the checks
        ctx.warn(f"error: {path} not updated ({(err.strerror or str(err)).lower()}): {names} "
                 "now take the new password: add 'login = admin:<the password>' to their "
                 "sections by hand")
        return EXIT_USAGE
    ctx.print(f"{path}: login of {names} updated")
    return EXIT_OK


# -- check: the heuristic of corosync-qdevice ------------------------------------------------

def _cmd_check(ctx: _Context) -> int:
    """Silent exit 0 when every device answers (and, with --holder, connects this node)."""
    if ctx.args.holder:
        expected = _held_devices(ctx)
    else:
        if ctx.args.state_dir:
            raise UsageError("--state-dir goes with --holder")
        expected = [(device, None) for device in ctx.devices()]
    devices = [device for device, _ in expected]
    clients = ctx.clients(devices)
    statuses = read_status(clients, Deadline(ctx.args.wait))
    problems = [_check_problem(client, status, own_mode)
                for client, status, (_, own_mode) in zip(clients, statuses, expected)]
    return _report(ctx, [p for p in problems if p is not None], devices)


def _held_devices(ctx: _Context) -> list[tuple[DeviceEntry, int]]:
    """(device, relay mode that connects this node) of every instance promoted here."""
    args = ctx.args
    given = [option for option, value in (("-c", getattr(args, "config_given", False)),
                                          ("-f", args.device), ("--host", args.host)) if value]
    if given:
        raise UsageError(f"check --holder takes its devices from the agent's state on this "
                         f"node: drop {', '.join(given)}")
    state_dir = args.state_dir or ctx.environ.get(STATE_DIR_ENV) or DEFAULT_RUN_DIR
    instances = _promoted_here(state_dir)
    if not instances:
        raise NotHolding("this node holds no lines: no berofos resource is promoted here")
    held = []
    for instance, state in instances:
        if state.own_mode not in RELAY_LABELS or not state.config or not state.devices:
            raise NotHolding(f"instance {instance} is promoted here but its state file in "
                             f"{state_dir} says nothing usable (no config, devices or mode)")
        devices = load_bnfos_conf(state.config).select(state.devices)
        held += [(device, state.own_mode) for device in devices]
    return held


def _promoted_here(state_dir: str) -> list:
    try:
        RunDirectory(state_dir).check()  # a directory others may write to proves nothing
    except FileNotFoundError:
        return []
    except UnsafeRunDirectory as err:
        raise ConfigFileError(str(err), kind="permission") from None
    return promoted_instances(state_dir)


def _check_problem(client: BerofosClient, status: DeviceStatus,
                   own_mode: int | None) -> BerofosError | None:
    """Why this device fails the check, or None."""
    if status.error is not None:
        return status.error
    try:
        mode = client.relay_mode(status.settings)
    except BerofosError as err:
        return err
    if own_mode is not None and mode != own_mode:
        return NotHolding(f"{client.label}: relays at {RELAY_LABELS[mode]}, this node is on "
                          f"{RELAY_LABELS[own_mode]}")
    return None


# -- GBL4 commands --------------------------------------------------------------------------

def _cmd_scan(ctx: _Context) -> int:
    known = _scan_file_devices(ctx.args.write) if ctx.args.write else None
    target = ctx.args.to or (parse_host(ctx.args.host)[0] if ctx.args.host else BROADCAST)
    replies = ctx.udp().scan(target, ctx.args.window)
    if ctx.args.json:
        ctx.print(json.dumps([{
            "mac": format_mac(r.mac), "ip": r.ip, "netmask": r.netmask, "gateway": r.gateway,
            "http_port": r.http_port, "firmware": r.firmware_version,
            "bootloader": r.bootloader_version, "flash_mode": not r.operational,
            "dhcp": r.dhcp, "password_protection": bool(r.options & Options.HTTP_AUTH),
        } for r in replies], indent=2))
    else:
        rows = [("MAC", "ADDRESS", "NETMASK", "GATEWAY", "HTTP", "FIRMWARE", "MODE", "DHCP")]
        rows += [(format_mac(r.mac), r.ip, r.netmask, r.gateway, r.http_port,
                  r.firmware_version, "operational" if r.operational else "flash",
                  "on" if r.dhcp else "off") for r in replies]
        _table(ctx, rows)
        ctx.print(f"{len(replies)} device{'s' if len(replies) != 1 else ''} found.")
    if known is not None:
        return _write_scan(ctx, known, replies)
    return EXIT_OK


def _scan_file_devices(path: str) -> list[DeviceEntry]:
    """The devices already in the file of --write; checked before the scan, like the file."""
    _check_writable(path)
    if not os.path.exists(path):
        return []
    return load_bnfos_conf(path).devices


def _write_scan(ctx: _Context, known: list[DeviceEntry], replies: list) -> int:
    path = ctx.args.write
    if not replies:
        ctx.warn(f"no device answered: {path} left as it was")
        return EXIT_DEVICE
    found = [DeviceEntry("", mac=format_mac(r.mac), host=r.ip, port=r.http_port)
             for r in replies]
    refused: list[str] = []

    def accept_move(device: DeviceEntry, seen: DeviceEntry) -> bool:
        # A scan reply is easy to forge: moving a device (and its login)
        # elsewhere is the operator's decision.
        change = f"{device.name} ({device.mac}): address {device.address} -> {seen.address}"
        if _confirmed(ctx, change):
            return True
        refused.append(f"{change} refused, {device.address} kept (add --yes to accept)")
        return False

    devices = merge_devices(known, found, accept_move=accept_move)
    write_bnfos_conf(path, render_bnfos_conf(devices).encode())
    ctx.print(f"{path}: {len(devices)} device(s) written "
              "(names and logins of known devices kept)")
    for message in refused:
        ctx.warn(message)
    return EXIT_DEVICE if refused else EXIT_OK


def _confirmed(ctx: _Context, change: str) -> bool:
    """--yes, or the answer of the operator at a terminal; never without one."""
    if ctx.args.yes:
        ctx.print(change)
        return True
    if not (hasattr(ctx.stdin, "isatty") and ctx.stdin.isatty()):
        return False
    return ctx.ask(f"{change}: accept? [y/N] ").strip().lower() in ("y", "yes")


def _cmd_netconf(ctx: _Context) -> int:
    args = ctx.args
    device = ctx.one_device()
    mac = _device_mac(device)
    target = _udp_target(ctx, device)
    udp = ctx.udp()
    # What is not given stays as the device reports it, and so do the option
    # bits netconf also carries (password protection, IP ACL).
    with _udp_hint(target):
        current = udp.identify(mac, target)
    dhcp = current.dhcp if args.dhcp is None else args.dhcp
    options = (current.options & ~Options.DHCP) | (Options.DHCP if dhcp else 0)
    phy = _PHY[args.phy] if args.phy else (current.phy_conf if current.phy_conf in (1, 2, 3)
                                            else _PHY["auto"])
    request = NetconfRequest(mac, args.ip or current.ip, args.netmask or current.netmask,
                             args.gateway or current.gateway, phy, int(options),
                             args.http_port or current.http_port)
    with _udp_hint(target):
        udp.netconf(request, target)
    ctx.print(f"{device.name} ({format_mac(mac)}): address {request.ip} netmask "
              f"{request.netmask} gateway {request.gateway}, DHCP "
              f"{'on' if dhcp else 'off'}, HTTP port {request.http_port}, "
              f"link {PHY_CONF_LABELS[request.phy_conf]}")
    ctx.print("reboot the device in operational mode, then 'berofos scan --write FILE' "
              "to record the new address")
    return EXIT_OK


def _cmd_flash(ctx: _Context) -> int:
    device = ctx.one_device()
    mac = _device_mac(device)
    try:
        with open(ctx.args.image, "rb") as handle:
            image = handle.read()
    except OSError as err:
        raise UsageError(f"{ctx.args.image}: {err.strerror}") from None
    if not image:
        raise UsageError(f"{ctx.args.image} is empty")
    show = ctx.stderr.isatty() if hasattr(ctx.stderr, "isatty") else False

    def progress(done: int, total: int) -> None:
        if show or done == total:
            filled = done * 30 // total
            end = "\n" if done == total else ""
            ctx.stderr.write(f"\rflashing {device.name}: [{'#' * filled}{'.' * (30 - filled)}] "
                             f"{done}/{total} pages{end}")
            ctx.stderr.flush()

    target = _udp_target(ctx, device)
    with _udp_hint(target):
        pages = ctx.udp().flash(mac, target, image, progress)
    ctx.print(f"{device.name}: {pages} pages flashed; power-cycle the device to start "
              "the new firmware")
    return EXIT_OK


def _each_udp(ctx: _Context, action) -> int:
    devices = ctx.devices()
    udp = ctx.udp()
    targets = [(d, _device_mac(d), _udp_target(ctx, d)) for d in devices]
    outcomes = for_each_device(lambda t: action(udp, *t), targets, Deadline(None),
                               label=lambda t: t[0].label)
    return _report(ctx, outcomes, devices)


def _cmd_ping(ctx: _Context) -> int:
    def ping(udp: Gbl4Client, device: DeviceEntry, mac: bytes, target: str) -> None:
        for _ in range(ctx.args.count):
            with _udp_hint(target):
                rtt = udp.ping(mac, target)
            ctx.print(f"{device.label}: answer in {rtt * 1000:.1f} ms")
    return _each_udp(ctx, ping)


def _cmd_kick(ctx: _Context) -> int:
    def kick(udp: Gbl4Client, device: DeviceEntry, mac: bytes, target: str) -> None:
        for number in range(ctx.args.count):
            if number:
                time.sleep(ctx.args.interval)
            with _udp_hint(target):
                udp.kick(mac, target)
            ctx.print(f"{device.label}: watchdog kicked")
    return _each_udp(ctx, kick)


def _cmd_reset(ctx: _Context) -> int:
    if not ctx.args.yes:
        raise UsageError("reset erases the device's settings and firmware; "
                         "add --yes if that is what you want")
    device = ctx.one_device()
    target = _udp_target(ctx, device)
    with _udp_hint(target):
        ctx.udp().reset(_device_mac(device), target)
    ctx.print(f"{device.name}: erased; flash a firmware before rebooting it")
    return EXIT_OK


def _cmd_keys(ctx: _Context) -> int:
    rows = [("KEY", "ACCESS", "TYPE", "CONFIG.TXT", "WRITE", "MEANING")]
    for key in KEYS:
        access = "rw" if key.readable and key.writable else ("r" if key.readable else "w")
        query = ""
        if key.writable:
            fixed = "".join(f"&{n}={v}" for n, v in key.fixed)
            query = f"?cmd={key.cmd}{fixed}&{key.param}=V"
        rows.append((key.name, access, key.kind, key.wire or "-", query or "-", key.description))
    _table(ctx, rows)
    return EXIT_OK


def _cmd_emulator(ctx: _Context) -> int:
    from .emulator import DeviceOptions, Emulator

    args = ctx.args
    listen = [_listen_address(text) for text in args.listen or ["127.0.0.1:8080"]]
    initial = _parse_assignments(args.set or [])
    password = initial.pop("apwd", None) or args.password
    options = DeviceOptions(checked_style=args.checked_style,
                            legacy_group_reset=args.legacy_group_reset,
                            auth_reads=not args.open_reads, relay_delay=args.relay_delay,
                            defaults_at_boot=not args.no_boot_defaults,
                            unknown_lines=args.unknown_lines)
    emulator = Emulator(listen, udp_port=None if args.udp_port_off else args.udp_port,
                        broadcast=tuple(args.udp_broadcast or ()), password=password,
                        base_mac=_mac(args.mac), options=options, initial=initial,
                        control=_listen_address(args.control) if args.control else None,
                        relay_log_path=args.relay_log, out=ctx.stdout)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    emulator.start()
    for device in emulator.devices:
        ctx.print(f"{device.name}: http://%s:%d mac {format_mac(device.mac)}" % device.listen)
    if emulator.udp_port is not None:
        ctx.print(f"GBL4 on UDP port {emulator.udp_port}")
    if emulator.control_address:
        ctx.print(f"control interface: http://{emulator.control_address}")
    if args.ready_file:
        emulator.write_ready_file(args.ready_file)
    try:
        while not stopped.wait(0.5):
            pass
    finally:
        emulator.stop()
    return EXIT_OK


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    number = parse_decimal(port)
    if not sep or number is None or number > 65535:
        raise UsageError(f"{text!r} is not HOST:PORT")
    try:
        parse_ipv4(host)
    except InvalidValue as err:
        raise UsageError(str(err)) from None
    return host, number


# -- parser ---------------------------------------------------------------------------------

def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _count(text: str) -> int:
    number = parse_decimal(text)
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count of 1 or more")
    return number


def _ipv4_arg(text: str) -> str:
    try:
        return parse_ipv4(text)
    except InvalidValue as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _port_arg(text: str) -> int:
    number = parse_decimal(text)
    if number is None or not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return number


def _port_or_zero(text: str) -> int:
    number = parse_decimal(text)
    if number is None or number > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 0 to 65535")
    return number


def _yes_no(text: str) -> bool:
    key = lookup("dhcp")
    try:
        return bool(key.parse_user(text))
    except InvalidValue:
        raise argparse.ArgumentTypeError(f"{text!r} is not yes or no") from None


_PHY = {"auto": 3, "10": 1, "100": 2}


def _add_selection(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options that pick devices; accepted before and after the command name."""
    def default(value):
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("device selection")
    group.add_argument("-c", "--config", action=_ConfigPath, default=default(DEFAULT_PATH),
                       metavar="FILE",
                       help=f"device file in bnfos format (default {DEFAULT_PATH})")
    group.add_argument("-f", "--device", action="append", default=default(None), metavar="NAME",
                       help="device section to use; repeat or separate with commas "
                            "(default: every section)")
    group.add_argument("--host", default=default(None), metavar="IP[:PORT]",
                       help="talk to this device instead of the file's")
    group.add_argument("--mac", default=default(None), metavar="MAC",
                       help="MAC address of the --host device (for UDP commands)")
    group.add_argument("-t", "--timeout", type=_positive, default=default(DEFAULT_TIMEOUT),
                       metavar="SECONDS",
                       help=f"timeout of each request (default {DEFAULT_TIMEOUT:g})")
    group.add_argument("--udp-port", type=_port_arg, default=default(DEFAULT_UDP_PORT),
                       metavar="PORT", help=f"the devices' GBL4 port (default {DEFAULT_UDP_PORT})")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, also the source of the man page."""
    parser = _Parser(
        prog="berofos",
        description="Set up, inspect and switch beroNet berofos failover switches.",
        epilog=f"Devices come from the sections of {DEFAULT_PATH} (all of them, in file order, "
               f"unless -f picks some) or from --host; with --host the login, if any, is "
               f"taken from the {LOGIN_ENV} environment variable (USER:PASSWORD), so that it "
               f"never shows in the process list.  Exit status: 0 success, 1 a device failed, "
               f"2 usage or configuration error.")
    parser.add_argument("--version", action="version", version=f"berofos {__version__}")
    _add_selection(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    _add_device_commands(commands)
    _add_udp_commands(commands)
    _add_emulator_command(commands)
    return parser


def _add_device_commands(commands) -> None:
    """Commands over HTTP: read, write, switch, password; and the key table."""
    sub = commands.add_parser("status", help="reachability, relays, scenario, watchdog and "
                              "power-on defaults of every device")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_status)

    sub = commands.add_parser("show", help="every value of every device")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_show)

    sub = commands.add_parser("get", help="some values (see 'berofos keys')")
    sub.add_argument("keys", nargs="+", metavar="KEY")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_get)

    sub = commands.add_parser("set", help="write values and read them back "
                              "(e.g. wdog=0 wdogdef=0 scenario=0 mode=1 modedef=1)")
    sub.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    sub.add_argument("--wait", type=_positive, default=10.0, metavar="SECONDS",
                     help="give up after this long (default 10)")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_set)

    sub = commands.add_parser("switch", help="move the relays and confirm: master/b (A--B) "
                              "or slave/d (A--D)")
    sub.add_argument("position", metavar="master|slave|b|d|A--B|A--D")
    sub.add_argument("--wait", type=_positive, default=10.0, metavar="SECONDS",
                     help="retry until confirmed for this long (default 10)")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_switch)

    sub = commands.add_parser("password", help="set the admin password and turn protection on")
    sub.add_argument("--stdin", action="store_true", help="read the password from the first "
                     "line of standard input instead of the terminal")
    sub.add_argument("--update-config", action="store_true",
                     help="write the login line of each device into the -c file (checked "
                          "before any device changes; a link's target is written, keeping "
                          "owner, group and mode, at most 0640)")
    sub.add_argument("--wait", type=_positive, default=10.0, metavar="SECONDS",
                     help="give up after this long (default 10)")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_password)

    sub = commands.add_parser("check", help="exit 0, silently, when every device answers with "
                              "the credentials of the file; one line per failing device "
                              "otherwise (a corosync-qdevice heuristic)")
    sub.add_argument("--holder", action="store_true",
                     help="pass only where the lines are held: a berofos resource is "
                          "promoted on this node and the relays of its devices connect it "
                          "(devices from the agent's state, not -c/-f/--host)")
    sub.add_argument("--state-dir", metavar="DIR",
                     help=f"the agent's run directory (default ${STATE_DIR_ENV}, or "
                          f"{DEFAULT_RUN_DIR})")
    sub.add_argument("--wait", type=_positive, default=4.0, metavar="SECONDS",
                     help="give up on the devices after this long in all (default 4)")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_check)

    sub = commands.add_parser("keys", help="list the keys of get/set")
    sub.set_defaults(handler=_cmd_keys)



def _add_udp_commands(commands) -> None:
    """Commands over GBL4: scan, netconf, flash, ping, kick, reset."""
    sub = commands.add_parser("scan", help="find devices with a GBL4 broadcast "
                              "(or ask --host / --to)")
    sub.add_argument("--to", type=_ipv4_arg, metavar="IP",
                     help=f"address to ask (default {BROADCAST}, or --host)")
    sub.add_argument("--window", type=_positive, default=3.0, metavar="SECONDS",
                     help="how long to collect answers (default 3)")
    sub.add_argument("--write", metavar="FILE", help="write the devices found to FILE in bnfos "
                     "format: its sections keep their order, names and logins (a device is "
                     "known by its MAC, or by its host in a section without mac), new devices "
                     "come last; a new file gets mode 0600, an existing one (or a link's "
                     "target) keeps owner, group and mode, at most 0640 with a password; "
                     "like bnfos --scan -x, comments are not kept; nothing is written when "
                     "no device answers")
    sub.add_argument("--yes", action="store_true", help="accept a known device's change of "
                     "address without asking (without a terminal and without --yes the old "
                     "address is kept)")
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_scan)

    sub = commands.add_parser("netconf", help="set a device's network configuration over UDP "
                              "(values not given stay as the device reports them)")
    sub.add_argument("-i", "--ip", type=_ipv4_arg, help="IPv4 address")
    sub.add_argument("-n", "--netmask", type=_ipv4_arg, help="netmask")
    sub.add_argument("-g", "--gateway", type=_ipv4_arg, help="gateway")
    sub.add_argument("-d", "--dhcp", type=_yes_no, metavar="yes|no", help="DHCP on or off")
    sub.add_argument("-p", "--http-port", type=_port_arg, metavar="PORT", help="HTTP port")
    sub.add_argument("--phy", choices=sorted(_PHY), help="Ethernet link: auto, 10 or 100")
    sub.add_argument("--to", type=_ipv4_arg, metavar="IP", help="send here instead of the "
                     "device's host (e.g. 255.255.255.255)")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_netconf)

    sub = commands.add_parser("flash", help="write a firmware image (device in flash mode)")
    sub.add_argument("image", metavar="FILE")
    sub.add_argument("--to", type=_ipv4_arg, metavar="IP", help="send here instead of the "
                     "device's host")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_flash)

    sub = commands.add_parser("ping", help="GBL4 ping")
    sub.add_argument("--count", type=_count, default=1, metavar="N")
    sub.add_argument("--to", type=_ipv4_arg, metavar="IP")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_ping)

    sub = commands.add_parser("kick", help="kick the hardware watchdog")
    sub.add_argument("--count", type=_count, default=1, metavar="N", help="kicks (default 1)")
    sub.add_argument("--interval", type=_positive, default=5.0, metavar="SECONDS",
                     help="pause between kicks (default 5)")
    sub.add_argument("--to", type=_ipv4_arg, metavar="IP")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_kick)

    sub = commands.add_parser("reset", help="erase settings and firmware (flash mode only)")
    sub.add_argument("--yes", action="store_true", help="really do it")
    sub.add_argument("--to", type=_ipv4_arg, metavar="IP")
    _add_selection(sub, suppress=True)
    sub.set_defaults(handler=_cmd_reset)



def _add_emulator_command(commands) -> None:
    """``berofos emulator``: its options are the switches of the device model."""
    sub = commands.add_parser("emulator", help="run emulated devices (HTTP, GBL4, control)")
    sub.add_argument("--listen", action="append", metavar="HOST:PORT",
                     help="one device per address (repeat; default 127.0.0.1:8080)")
    sub.add_argument("--udp-port", type=_port_or_zero, default=DEFAULT_UDP_PORT, metavar="PORT",
                     help=f"GBL4 port of every listen host (default {DEFAULT_UDP_PORT}, "
                          "0 picks one)")
    sub.add_argument("--no-udp", dest="udp_port_off", action="store_true",
                     help="no GBL4 endpoint")
    sub.add_argument("--udp-broadcast", action="append", metavar="ADDR",
                     help="also receive GBL4 broadcasts sent to ADDR (repeat)")
    sub.add_argument("--password", metavar="PW", help="password protection on, user admin")
    sub.add_argument("--mac", default="00:19:32:00:00:01",
                     help="MAC of the first device; the next ones count up")
    sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="initial value on every device (repeat)")
    sub.add_argument("--control", metavar="HOST:PORT", help="serve the control interface")
    sub.add_argument("--relay-log", metavar="FILE", help="append relay changes to FILE")
    sub.add_argument("--ready-file", metavar="FILE",
                     help="write the addresses in use as JSON once serving")
    sub.add_argument("--checked-style", action="store_true",
                     help="booleans print as 'checked'/'' instead of 1/0")
    sub.add_argument("--legacy-group-reset", action="store_true",
                     help="firmware 1.3 bug: a write resets the group's omitted checkboxes")
    sub.add_argument("--open-reads", action="store_true",
                     help="config.txt readable without the password")
    sub.add_argument("--relay-delay", type=float, default=0.0, metavar="SECONDS",
                     help="acknowledge a mode change before the relays move")
    sub.add_argument("--no-boot-defaults", action="store_true",
                     help="ignore modedef/wdogdef/powerNdef at power-on")
    sub.add_argument("--unknown-lines", action="store_true",
                     help="print firmware 1.5.7's unknown config.txt lines")
    sub.set_defaults(handler=_cmd_emulator)


def main(argv: list[str] | None = None, *, stdout=None, stderr=None, stdin=None,
         environ=None) -> int:
    """Run the command line; return the exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        ctx = _Context(args, stdout, stderr, stdin or sys.stdin,
                       os.environ if environ is None else environ)
        try:
            return args.handler(ctx)
        finally:
            ctx.close()
    except UsageError as err:
        print(f"berofos: error: {err}", file=stderr)
        return EXIT_USAGE
    except ConfigFileError as err:
        print(f"berofos: error: {err}", file=stderr)
        return EXIT_USAGE
    except BerofosError as err:
        print(f"berofos: {err}", file=stderr)
        return EXIT_DEVICE
    except KeyboardInterrupt:
        print("berofos: interrupted", file=stderr)
        return 130
    except BrokenPipeError:
        # Output piped into head(1) and the like: stop quietly, and keep the
        # interpreter from complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as err:  # local files and sockets; device errors are BerofosError
        where = f"{err.filename}: " if err.filename else ""
        print(f"berofos: error: {where}{(err.strerror or str(err)).lower()}", file=stderr)
        return EXIT_USAGE
