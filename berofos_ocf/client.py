"""HTTP client of the berofos: read ``config.txt``, write values, switch relays.

One :class:`BerofosClient` per device, each with its own ``requests`` session.
Every request goes through :meth:`BerofosClient._request`, which bounds it by
the per-request timeout and by the caller's :class:`~berofos_ocf.deadline.Deadline`,
never follows redirects, ignores proxy variables, and maps every failure once
to the hierarchy of :mod:`berofos_ocf.errors`.  Reads retry a transient error
(:meth:`BerofosClient.read_settings`) and :meth:`BerofosClient.switch_relays`
owns "set, confirm, retry within a bound"; rejected credentials are never retried.

Whoever answers in the device's place chooses every byte, so answers are read
through :class:`_WireReader`, below ``requests`` and ``http.client``: every
socket read waits no longer than what is left of the request's time, and the
bytes taken from the socket are counted against a limit for the head and one
for the whole answer.  Compressed answers are refused, never decoded (the
device never compresses), and a body shorter than its Content-Length counts
as a dropped connection.  Device text quoted in an error goes through
:func:`~berofos_ocf.text.shown`.

:func:`on_every_device` is the one group operation: one function per device,
in parallel threads, until all are done or the deadline has passed, whichever
comes first, with a typed :class:`DeviceResult` per device (its value, or the
:class:`~berofos_ocf.errors.BerofosError` that prevented it).
:func:`read_status` reads every device with it.

With the ``berofos_ocf.client`` logger at DEBUG (``berofos -v``), every
request is logged with its outcome and duration; a request that carries a
password is logged without its query.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_WAIT",
    "READ_ATTEMPTS",
    "BerofosClient",
    "RelaySwitch",
    "DeviceResult",
    "DeviceStatus",
    "on_every_device",
    "read_status",
]

import http.client
import io
import logging
import re
import socket
import threading
import time
from typing import Callable, Generic, Sequence, TypeVar

import requests
import urllib3

from . import __version__
from .bnfosconf import DeviceEntry
from .configtxt import Settings, build_write_queries, parse_config_txt
from .deadline import Deadline
from .errors import (
    BerofosError,
    CredentialsRejected,
    DeviceCommunicationError,
    DeviceError,
    DeviceTimeout,
    DeviceUnreachable,
    FormatError,
    ProtocolError,
)
from .keys import KEYS_BY_NAME, RELAY_LABELS
from .text import shown

DEFAULT_TIMEOUT = 3.0
# A whole write or switch, its retries and read-backs included.
DEFAULT_WAIT = 10.0
# Bytes taken from the socket: the status line and headers (the device sends
# about 200), then the body (its config.txt is under 2 kB).  The head limit is
# below http.client's own (100 headers of 64 KiB each).
_MAX_HEAD = 32 * 1024
_MAX_BODY = 64 * 1024
_READ_SIZE = 4096
# Writes to these are not read back: whether the device applies them at once
# (and stops answering at the old address) is not known.
_NETWORK_KEYS = frozenset({"address", "netmask", "gateway", "port", "dhcp"})
_CONFIRM_WINDOW = 2.0
_POLL_INTERVAL = 0.2
_RETRY_PAUSE = 0.5
# Reads: three tries, pausing 0.2 s then 0.6 s, so a glitch costs under a
# second and a device that is really gone is known within three timeouts.
READ_ATTEMPTS = 3
_READ_PAUSES = (0.2, 0.6)
_MIN_TRY = 0.2  # no retry when less than this would be left for the request
_log = logging.getLogger(__name__)
_Value = TypeVar("_Value")
_Item = TypeVar("_Item")


class RelaySwitch:
    """Outcome of :meth:`BerofosClient.switch_relays`: where the relays were and are."""

    __slots__ = ("device", "old_mode", "new_mode")

    def __init__(self, device: DeviceEntry, old_mode: int, new_mode: int) -> None:
        self.device = device
        self.old_mode = old_mode
        self.new_mode = new_mode

    @property
    def changed(self) -> bool:
        return self.old_mode != self.new_mode

    def __str__(self) -> str:
        return (f"{self.device.label}: {RELAY_LABELS[self.old_mode]} -> "
                f"{RELAY_LABELS[self.new_mode]}")


class DeviceResult(Generic[_Value]):
    """What one device gave to a group operation: ``value``, or the ``error`` that prevented it."""

    __slots__ = ("device", "value", "error")

    def __init__(self, device: DeviceEntry, value: _Value | None = None,
                 error: BerofosError | None = None) -> None:
        self.device = device
        self.value = value
        self.error = error

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        outcome = f"error={self.error!r}" if self.error else f"value={self.value!r}"
        return f"{type(self).__name__}({self.device.name!r}, {outcome})"


class DeviceStatus(DeviceResult[Settings]):
    """What one read of a device gave: its settings, or the error that prevented it."""

    __slots__ = ()

    def __init__(self, device: DeviceEntry, settings: Settings | None = None,
                 error: BerofosError | None = None) -> None:
        super().__init__(device, settings, error)

    @property
    def settings(self) -> Settings | None:
        return self.value

    @property
    def reachable(self) -> bool:
        return self.settings is not None


class _Exchange:
    """The limits of one request on the wire, which the reader of its answer enforces.

    ``deadline`` bounds the whole request, connect, head and body; ``limit`` is
    how many bytes may come from the socket: the head's share until the head
    has been read, then the whole answer's.  ``declared`` is the answer's
    Content-Length once its head has been read.
    """

    def __init__(self, label: str, seconds: float) -> None:
        self.label = label
        self.seconds = seconds
        # Socket waits are real time, whatever clock the caller's deadline uses.
        self.deadline = Deadline(seconds)
        self.received = 0
        self.limit = _MAX_HEAD
        self.declared: int | None = None

    def room(self) -> int:
        """How many more bytes may come; a :class:`ProtocolError` when none may."""
        room = self.limit - self.received
        if room <= 0:
            what = "header" if self.limit == _MAX_HEAD else "answer on the wire"
            raise ProtocolError(self.label, f"{what} larger than {self.limit} bytes")
        return room

    def wait(self) -> float:
        """How long the next socket read may wait; a :class:`DeviceTimeout` when it may not."""
        remaining = self.deadline.remaining()
        if remaining <= 0:
            raise self.late()
        return remaining

    def late(self) -> DeviceTimeout:
        if self.received:
            return DeviceTimeout(self.label, "answer still arriving when time ran out")
        return DeviceTimeout(self.label, f"no answer within {self.seconds:.1f} s")

    def head_read(self, declared: int | None) -> None:
        self.limit = _MAX_HEAD + _MAX_BODY
        self.declared = declared


# The exchange of the request this thread is making: requests builds the
# connection and the answer itself, so that is how they find their limits.
_current = threading.local()


class _WireReader(io.RawIOBase):
    """The socket side of one answer: each read within its exchange's time and bytes.

    The socket timeout alone bounds each read, not their sum: a device sending
    a byte a second would hold a request for ever.
    """

    def __init__(self, file: io.BufferedReader, sock: socket.socket,
                 exchange: _Exchange) -> None:
        super().__init__()
        self._file = file  # the socket's own file, kept open while we read its raw side
        self._sock = sock
        self._exchange = exchange

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        exchange = self._exchange
        room = exchange.room()
        self._sock.settimeout(exchange.wait())
        try:
            count = self._file.raw.readinto(memoryview(buffer)[:room])
        except socket.timeout:
            raise exchange.late() from None
        exchange.received += count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


class _WireResponse(http.client.HTTPResponse):
    """http.client's answer, read through a :class:`_WireReader`, refused when unsafe to read."""

    def __init__(self, sock: socket.socket, *args, **kwargs) -> None:
        super().__init__(sock, *args, **kwargs)
        self._exchange = _current.exchange
        self.fp = io.BufferedReader(_WireReader(self.fp, sock, self._exchange))

    def begin(self) -> None:
        super().begin()
        problem = _framing_problem(self.headers)
        if problem:
            raise ProtocolError(self._exchange.label, problem)
        self._exchange.head_read(self.length)


def _framing_problem(headers: http.client.HTTPMessage) -> str | None:
    """Why the body behind ``headers`` is not read, or None.

    Content encodings are refused rather than decoded: a few kilobytes of
    gzip inside gzip expand to gigabytes, and the device never compresses.
    Chunked transfer is read by http.client, which bounds each chunk-size line
    to 64 KiB (urllib3's own chunk reader, which does not, is never used) and
    within the limits of :class:`_WireReader`; refusing it would fail on a
    firmware that one day sends it.  A Content-Length must be one plain number:
    http.client would read ``5, 5`` or ``-1`` as "until the connection closes".
    """
    if headers.defects or headers.get_payload():
        # A line that is no header ends the parse: the headers after it are
        # lost, and urllib3 would log the rest raw, beside the URL (which
        # holds the password of an apwd write), where shown() cannot reach.
        return "header lines that are not HTTP"
    encodings = headers.get_all("Content-Encoding") or []
    if {token.strip().lower() for value in encodings for token in value.split(",")} - {
            "identity", ""}:
        return f"compressed answer (Content-Encoding: {shown(', '.join(encodings))})"
    transfer = headers.get_all("Transfer-Encoding") or []
    if transfer and [value.lower() for value in transfer] != ["chunked"]:
        return f"unsupported Transfer-Encoding: {shown(', '.join(transfer))}"
    lengths = headers.get_all("Content-Length") or []
    if lengths and (transfer or len(lengths) > 1
                    or not re.fullmatch(r"[0-9]{1,12}", lengths[0].strip())):
        return f"unusable Content-Length: {shown(', '.join(lengths))}" + (
            " with chunked transfer" if transfer else "")
    return None


class _WireConnection(urllib3.connection.HTTPConnection):
    response_class = _WireResponse


class _WirePool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WireConnection


class _WireAdapter(requests.adapters.HTTPAdapter):
    """requests' transport for ``http://``, its answers read by :class:`_WireResponse`."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WirePool}


class _Session(requests.Session):
    """The ``requests`` session of one device: plain answers, read by :class:`_WireAdapter`."""

    def __init__(self) -> None:
        super().__init__()
        # Proxy variables and ~/.netrc are for people's browsers, not for a switch
        # on the local network; honouring them would route relay commands elsewhere.
        self.trust_env = False
        self.headers["User-Agent"] = f"berofos-ocf/{__version__}"
        self.headers["Accept-Encoding"] = "identity"
        self.mount("http://", _WireAdapter())

    def get_redirect_target(self, resp) -> None:
        # Redirects are never followed, yet requests would parse the Location
        # and read the body of a 3xx answer to prepare the next hop.
        return None


def _causes(exc: BaseException):
    """Every exception wrapped inside ``exc`` (requests nests urllib3 nests http.client)."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]


def _connection_error(label: str, exc: BaseException) -> DeviceCommunicationError:
    causes = list(_causes(exc))
    kinds = tuple(type(c) for c in causes)

    def has(cls) -> bool:
        return any(issubclass(kind, cls) for kind in kinds)

    if has(http.client.RemoteDisconnected):
        return DeviceUnreachable(label, "closed the connection without answering")
    if has(http.client.IncompleteRead):
        return DeviceUnreachable(label, "answer cut short")
    if has(ConnectionRefusedError):
        return DeviceUnreachable(label, "connection refused")
    if has(ConnectionResetError):
        return DeviceUnreachable(label, "connection reset")
    if has(http.client.HTTPException):
        return ProtocolError(label, "answered something that is not HTTP")
    if has(socket.timeout) or has(TimeoutError):
        return DeviceTimeout(label, "no answer in time")
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return DeviceUnreachable(label, cause.strerror.lower())
    return DeviceUnreachable(label, "cannot connect")


class BerofosClient:
    """The HTTP side of one device.

    ``timeout`` bounds each request; ``deadline`` arguments bound a whole
    operation.  ``session``, ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, device: DeviceEntry, *, timeout: float = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None, clock=time.monotonic,
                 sleep=time.sleep) -> None:
        self.device = device
        self.timeout = timeout
        self._session = session or _Session()
        self._base = f"http://{device.host}:{device.port}"
        self._auth = (device.user, device.password or "") if device.has_login else None
        self._clock = clock
        self._sleep = sleep

    @property
    def label(self) -> str:
        return self.device.label

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> BerofosClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _deadline(self, deadline: Deadline | None) -> Deadline:
        return deadline if deadline is not None else Deadline(None, clock=self._clock)

    def _request(self, path: str, deadline: Deadline | None = None, *,
                 secret: bool = False) -> bytes:
        """GET ``path``; return the body of a 2xx answer or raise a device error.

        With ``secret`` the query carries a password: the original exception,
        whose text holds the URL, is then not chained to the one raised.
        """
        deadline = self._deadline(deadline)
        timeout = deadline.bound(self.timeout)
        if timeout <= 0:
            raise DeviceTimeout(self.label, "no time left to ask")
        shown_path = path.partition("?")[0] + "?<password hidden>" if secret else path
        started = time.monotonic()
        try:
            body = self._exchange(path, _Exchange(self.label, timeout))
            _log.debug("%s: GET %s: %d bytes in %.0f ms", self.label, shown_path, len(body),
                       (time.monotonic() - started) * 1000)
            return body
        except DeviceCommunicationError as err:
            _log.debug("%s: GET %s: %s", self.label, shown_path, err.detail)
            raise
        # urllib3's errors come unwrapped from the body, read below requests
        except (requests.RequestException, urllib3.exceptions.HTTPError) as err:
            if isinstance(err, requests.Timeout):
                error = DeviceTimeout(self.label, f"no answer within {timeout:.1f} s")
            else:
                error = _connection_error(self.label, err)
            cause = None if secret else err
        except UnicodeError:
            # requests encodes Basic credentials as Latin-1; the message would
            # quote a character of the password.
            error = DeviceError(self.label, "the login cannot be sent (characters outside "
                                            "Latin-1)")
            cause = None
        _log.debug("%s: GET %s: %s", self.label, shown_path, error.detail)
        # Raised outside the handler: with a secret, not even __context__ may
        # keep the requests exception, whose text holds the URL.
        raise error from cause

    def _exchange(self, path: str, exchange: _Exchange) -> bytes:
        """One GET within the limits of ``exchange``: the status checked, the body read."""
        _current.exchange = exchange
        try:
            response = self._session.get(self._base + path, auth=self._auth,
                                         timeout=exchange.seconds, allow_redirects=False,
                                         stream=True)
            with response:
                self._check_status(response)
                return self._read_body(response, exchange.declared)
        finally:
            _current.exchange = None

    def _read_body(self, response: requests.Response, declared: int | None) -> bytes:
        # The bytes as they came (requests' iter_content would decode them);
        # _WireReader bounds the time and the framing around them.
        chunks, size = [], 0
        while chunk := response.raw.read(_READ_SIZE, decode_content=False):
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_BODY:
                raise ProtocolError(self.label, f"answer larger than {_MAX_BODY} bytes")
        if declared is not None and size < declared:
            # http.client takes an early close for the end of the body; cut at
            # a line end, the missing lines would read as values turned off.
            raise DeviceUnreachable(self.label, f"answer cut short ({size} of {declared} bytes)")
        return b"".join(chunks)

    def _check_status(self, response: requests.Response) -> None:
        status = response.status_code
        if status == 401:
            if "WWW-Authenticate" not in response.headers:
                raise CredentialsRejected(self.label,
                                          "HTTP 401 without a WWW-Authenticate challenge")
            if self._auth is None:
                raise CredentialsRejected(
                    self.label, "password protection is on and no login is configured")
            raise CredentialsRejected(self.label)
        if not 200 <= status < 300:
            raise DeviceError(self.label, f"HTTP {status} {shown(response.reason or '')}".rstrip(),
                              transient=status >= 500)

    def read_settings(self, deadline: Deadline | None = None, *,
                      attempts: int = READ_ATTEMPTS) -> Settings:
        """``GET /config.txt``, parsed; asked again after a transient error.

        At most ``attempts`` requests, all within ``deadline``; the last error
        is raised when none succeeds.  Retries are logged nowhere: the caller
        sees either settings or the error of the last try.
        """
        deadline = self._deadline(deadline)
        for attempt in range(attempts):
            try:
                return self._read_settings_once(deadline)
            except DeviceCommunicationError as err:
                pause = _READ_PAUSES[min(attempt, len(_READ_PAUSES) - 1)]
                if (not err.transient or attempt + 1 >= attempts
                        or deadline.remaining() <= pause + _MIN_TRY):
                    raise
            self._sleep(pause)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _read_settings_once(self, deadline: Deadline) -> Settings:
        body = self._request("/config.txt", deadline)
        try:
            return parse_config_txt(body)
        except FormatError as err:
            raise ProtocolError(self.label, shown(str(err))) from err

    def relay_mode(self, settings: Settings) -> int:
        """The relay mode of ``settings``, or a :class:`ProtocolError` naming this device."""
        try:
            return settings.relay_mode
        except FormatError as err:
            raise ProtocolError(self.label, shown(str(err))) from err

    def write(self, changes: dict[str, object], deadline: Deadline | None = None,
              *, current: Settings | None = None, confirm: bool = True) -> Settings | None:
        """Write typed values (see :mod:`berofos_ocf.keys`) and read them back.

        Whole ``cmd`` groups are sent, the unchanged values taken from
        ``current`` (read first when not given), which keeps legacy firmware
        from resetting them.  ``config.txt`` is then polled for a short while
        until every value reads as written (the device may acknowledge before
        acting).  Returns the settings read back, or None when ``confirm`` is
        False or a network setting was changed: the device may already answer
        at its new address only.
        """
        deadline = self._deadline(deadline)
        if current is None:
            current = self.read_settings(deadline)
        secret = any(KEYS_BY_NAME[name].kind == "secret" for name in changes)
        for path in build_write_queries(changes, current):
            self._request(path, deadline, secret=secret)
        if "apwd" in changes:
            # From now on the device knows only the new password.
            self._auth = (self.device.user or "admin", str(changes["apwd"]))
        if not confirm or _NETWORK_KEYS & changes.keys():
            return None
        settings, mismatch = self._poll(lambda read: _mismatch(changes, read), deadline)
        if mismatch:
            raise DeviceError(self.label, mismatch)
        return settings

    def _poll(self, problem, deadline: Deadline) -> tuple[Settings, str | None]:
        """Read ``config.txt`` until ``problem(settings)`` is None or the window closes."""
        window = Deadline(deadline.bound(_CONFIRM_WINDOW), clock=self._clock)
        while True:
            settings = self.read_settings(deadline)
            found = problem(settings)
            if found is None or window.remaining() <= _POLL_INTERVAL:
                return settings, found
            self._sleep(_POLL_INTERVAL)

    def switch_relays(self, mode: int, deadline: Deadline) -> RelaySwitch:
        """Move the relays to ``mode`` and return once ``config.txt`` confirms it.

        Reads first (nothing is sent when the relays are already there), sends
        ``?cmd=4&mode=V``, then polls ``config.txt`` for a short while because
        the device may acknowledge before the relays have moved.  An error is
        retried until ``deadline`` when it says it is transient (a dropped
        connection, a 5xx, relays that did not follow the command yet); any
        other (rejected credentials, an answer that is not a berofos's) is
        raised at once.
        """
        old_mode = None
        last_error: DeviceCommunicationError | None = None
        while True:
            try:
                settings = self.read_settings(deadline)
                current = self.relay_mode(settings)
                if old_mode is None:
                    old_mode = current
                if current == mode:
                    return RelaySwitch(self.device, old_mode, mode)
                for path in build_write_queries({"mode": mode}, settings):
                    self._request(path, deadline)
                _, mismatch = self._poll(
                    lambda read: None if self.relay_mode(read) == mode else "not yet", deadline)
                if mismatch is None:
                    return RelaySwitch(self.device, old_mode, mode)
                last_error = DeviceError(
                    self.label, f"relays did not reach {RELAY_LABELS[mode]} after the command",
                    transient=True)
            except DeviceCommunicationError as err:
                if not err.transient:
                    raise
                last_error = err
            if deadline.remaining() <= _RETRY_PAUSE:
                raise last_error
            self._sleep(_RETRY_PAUSE)



def _mismatch(changes: dict[str, object], settings: Settings) -> str | None:
    """The first written value that does not read back, described; None if all do."""
    for name, wanted in changes.items():
        key = KEYS_BY_NAME[name]
        if not key.readable:
            continue
        try:
            seen = key.format_user(settings[name])
        except (KeyError, FormatError):
            seen = "nothing readable"
        if seen != key.format_user(wanted):
            return f"wrote {name}={key.format_user(wanted)} but it reads {seen}"
    return None


def _in_parallel(function, items: Sequence, deadline: Deadline) -> list:
    """``function(item)`` for every item in a daemon thread each, until ``deadline``.

    One slot per item: ``(value, None)`` or ``(None, exception)`` once it has
    finished, None while it still runs (its thread never holds the process back).
    """
    slots: list = [None] * len(items)

    def run(index: int) -> None:
        try:
            slots[index] = (function(items[index]), None)
        except Exception as err:  # handed to the caller, which reports it
            slots[index] = (None, err)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(deadline.remaining() if deadline.remaining() != float("inf") else None)
    return slots


def _late(label: str) -> DeviceTimeout:
    return DeviceTimeout(label, "no answer within the time allowed")


def on_every_device(action: Callable[[_Item], _Value], items: Sequence[_Item],
                    deadline: Deadline, *,
                    device: Callable[[_Item], DeviceEntry] = lambda item: item.device,
                    ) -> list[DeviceResult[_Value]]:
    """``action(item)`` for every item in parallel, within ``deadline``: a result per item.

    ``device(item)`` says which device an item is (a :class:`BerofosClient`'s
    own by default).  A :class:`~berofos_ocf.errors.BerofosError` is that
    device's error; a device still busy at the deadline gets a
    :class:`~berofos_ocf.errors.DeviceTimeout`.  Any other exception is a bug:
    it is raised here, once every device is done or given up.
    """
    results: list[DeviceResult[_Value]] = []
    for item, slot in zip(items, _in_parallel(action, items, deadline)):
        entry = device(item)
        if slot is None:
            results.append(DeviceResult(entry, error=_late(entry.label)))
        elif isinstance(slot[1], BerofosError):
            results.append(DeviceResult(entry, error=slot[1]))
        elif slot[1] is not None:
            raise slot[1]
        else:
            results.append(DeviceResult(entry, slot[0]))
    return results


def read_status(clients: list[BerofosClient], deadline: Deadline) -> list[DeviceStatus]:
    """Read every device once (the client asks again after a glitch), in parallel."""
    return [DeviceStatus(r.device, r.value, r.error)
            for r in on_every_device(lambda c: c.read_settings(deadline), clients, deadline)]
