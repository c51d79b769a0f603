"""``berofos password``: set the admin password, turn protection on, record the login.

Nothing changes on a device before everything that can be checked has been:
the device file (with ``--update-config``), that every device answers, and the
current password of a protected device whose file gives no login (asked at
the terminal, or read from the second line of ``--stdin``).  A device with a
new password and a file with the old one lock the cluster out.
"""

from __future__ import annotations

__all__ = ["register", "check_writable"]

import copy
import os

from ..bnfosconf import DeviceEntry, read_bnfos_bytes, update_logins, write_bnfos_conf
from ..client import DEFAULT_WAIT, BerofosClient, on_every_device, read_status
from ..deadline import Deadline
from ..errors import BerofosError, CredentialsRejected, InvalidValue
from ..keys import lookup
from .context import EXIT_OK, EXIT_USAGE, LOGIN_ENV, UsageError, add_command, positive
from .output import device_record

_USER = "admin"


def register(commands) -> None:
    sub = add_command(commands, "password", _cmd_password,
                      help="set the admin password and turn protection on")
    sub.add_argument("--stdin", action="store_true", help="read the new password from the "
                     "first line of standard input instead of the terminal (and the current "
                     "one, for a protected device the file gives no login for, from the "
                     "second)")
    sub.add_argument("--update-config", action="store_true",
                     help="write the login line of each device into the -c file (checked "
                          "before any device changes; a link's target is written, keeping "
                          "owner, group and mode, at most 0640)")
    sub.add_argument("--wait", type=positive, default=DEFAULT_WAIT, metavar="SECONDS",
                     help=f"give up after this long (default {DEFAULT_WAIT:g})")


def check_writable(path: str) -> None:
    """Refuse a file (the target of a link) that could not be replaced."""
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: not writable (directory {directory})")
    if os.path.exists(target) and not os.access(target, os.W_OK):
        raise UsageError(f"{path}: not writable")


class _Secrets:
    """Passwords from the operator: typed at the terminal, or lines of ``--stdin``."""

    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self._stdin_lines: list[str] = []

    def _stdin_line(self, number: int) -> str | None:
        while len(self._stdin_lines) < number:
            line = self._ctx.stdin.readline()
            if not line:
                return None
            self._stdin_lines.append(line.rstrip("\n"))
        return self._stdin_lines[number - 1]

    def new(self) -> str:
        if self._ctx.args.stdin:
            password = self._stdin_line(1) or ""
        else:
            password = self._ctx.getpass("New berofos password: ")
            if self._ctx.getpass("Repeat it: ") != password:
                raise UsageError("the two passwords differ")
        try:
            return lookup("apwd").parse_user(password)
        except InvalidValue as err:
            raise UsageError(str(err)) from None

    def current(self, locked: list[DeviceEntry]) -> str:
        """The password protecting ``locked``, whose logins nobody gave."""
        names = ", ".join(d.label for d in locked)
        if self._ctx.args.stdin:
            self._stdin_line(1)  # the new password comes first
            password = self._stdin_line(2)
            if password:
                return password
            raise UsageError(self._no_login(locked, "no second line on standard input"))
        try:
            return self._ctx.getpass(f"Current password of {names}: ")
        except UsageError as err:
            raise UsageError(self._no_login(locked, str(err))) from None

    def _no_login(self, locked: list[DeviceEntry], why: str) -> str:
        names = ", ".join(d.label for d in locked)
        if "host" in self._ctx.given:
            remedy = f"or set {LOGIN_ENV}=admin:<its password>"
        else:
            remedy = (f"or add 'login = admin:<its password>' to its section in "
                      f"{self._ctx.args.config}")
        return (f"{names}: password protection is on and no login is given for it: give the "
                f"current password at the prompt or on the second line of --stdin, {remedy} "
                f"({why})")


def _cmd_password(ctx) -> int:
    devices = ctx.devices()
    path = ctx.args.config
    if ctx.args.update_config and "host" in ctx.given:
        raise UsageError("--update-config needs devices from the configuration file, not --host")
    # Whatever can go wrong with the file goes wrong before any device changes.
    data = None
    if ctx.args.update_config:
        check_writable(path)
        data = read_bnfos_bytes(path)[0]
    deadline = Deadline(ctx.args.wait)
    secrets = _Secrets(ctx)
    usable = _with_working_logins(ctx, devices, secrets, deadline)
    if isinstance(usable, dict):
        return _nothing_changed(ctx, devices, usable)
    devices = usable
    password = secrets.new()
    if data is not None:  # a dry run: the edited file must parse
        update_logins(data, [d.name for d in devices], _USER, password, path)
    records = _protect(ctx, devices, password, deadline)
    accepted = [r["name"] for r in records if r["protected"]]
    status = EXIT_OK
    if data is not None and accepted:
        status = _update_logins(ctx, data, accepted, password)
    elif accepted:
        _say_where_the_login_goes(ctx, accepted)
    return max(ctx.finish(records), status)


def _with_working_logins(ctx, devices: list[DeviceEntry], secrets: _Secrets,
                         deadline: Deadline) -> list[DeviceEntry] | dict[str, str]:
    """The devices, each with a login it accepts (the current password asked where none
    is given); or, when one cannot be used, why, by device name: nothing changed."""
    statuses = read_status(ctx.clients(devices), deadline)
    locked = [s.device for s in statuses
              if isinstance(s.error, CredentialsRejected) and not s.device.has_login]
    refusals = _refusals(ctx, [s for s in statuses if s.error and s.device not in locked],
                         given_now=False)
    if refusals or not locked:
        return refusals or devices
    current = secrets.current(locked)
    unlocked = {d.name: _with_login(d, current) for d in locked}
    statuses = read_status(ctx.clients(list(unlocked.values())), deadline)
    refusals = _refusals(ctx, [s for s in statuses if s.error], given_now=True)
    return refusals or [unlocked.get(d.name, d) for d in devices]


def _refusals(ctx, failed: list, *, given_now: bool) -> dict[str, str]:
    return {s.device.name: _refusal(ctx, s.device, s.error, given_now) for s in failed}


def _nothing_changed(ctx, devices: list[DeviceEntry], refusals: dict[str, str]) -> int:
    """A record per device when one cannot take the password: none was changed."""
    names = ", ".join(refusals)
    records = [device_record(d, BerofosError(
        f"{refusals[d.name]}; nothing changed" if d.name in refusals else
        f"{d.label}: nothing changed ({names} cannot take a new password)"), protected=False)
        for d in devices]
    return ctx.finish(records)


def _with_login(device: DeviceEntry, password: str) -> DeviceEntry:
    entry = copy.copy(device)
    entry.user, entry.password = _USER, password
    return entry


def _refusal(ctx, device: DeviceEntry, error: Exception, given_now: bool) -> str:
    """Why a device cannot take a new password, and what to do about it."""
    if not isinstance(error, CredentialsRejected):
        return str(error)
    if given_now:
        return f"{device.label}: login rejected: that is not its current password"
    if "host" in ctx.given:
        return f"{device.label}: login rejected: correct {LOGIN_ENV}=admin:<its password>"
    return (f"{device.label}: login rejected: correct the login of [{device.name}] in "
            f"{ctx.args.config} (login = admin:<its password>)")


def _protect(ctx, devices: list[DeviceEntry], password: str, deadline: Deadline) -> list[dict]:
    def protect(client: BerofosClient):
        # The password first, protection second: the other order would lock
        # the device with a password nobody knows.
        client.write({"apwd": password}, deadline, confirm=False)  # apwd never reads back
        return client.write({"pwd": True}, deadline)

    records = []
    for result in on_every_device(protect, ctx.clients(devices), deadline):
        if result.ok:
            ctx.say(f"{result.device.label}: password protection on (user {_USER})")
        records.append(device_record(result.device, result.error, protected=result.ok))
    return records


def _say_where_the_login_goes(ctx, names: list[str]) -> None:
    if "host" in ctx.given:
        ctx.say(f"from now on, set {LOGIN_ENV}=admin:<the password> for this device")
        return
    ctx.say(f"add 'login = admin:<the password>' to the sections of {', '.join(names)} in "
            f"{ctx.args.config} (or use --update-config)")


def _update_logins(ctx, data: bytes, names: list[str], password: str) -> int:
    path = ctx.args.config
    listed = ", ".join(names)
    try:
        write_bnfos_conf(path, update_logins(data, names, _USER, password, path))
    except OSError as err:  # the disk filled up since the checks
        ctx.warn(f"error: {path} not updated ({(err.strerror or str(err)).lower()}): {listed} "
                 "now take the new password: add 'login = admin:<the password>' to their "
                 "sections by hand")
        return EXIT_USAGE
    ctx.say(f"{path}: login of {listed} updated")
    return EXIT_OK
