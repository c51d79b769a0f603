"""The exception hierarchy shared by every layer.

Everything the package raises on purpose derives from :class:`BerofosError`, so
a caller can catch one class and print one clear line.  Device errors carry the
device's label (``fos1 (10.0.0.5)``) in their message; none of them ever carries
a password, a request URL or an HTTP header.
"""

from __future__ import annotations

__all__ = [
    "BerofosError",
    "ConfigFileError",
    "InvalidValue",
    "FormatError",
    "DeviceCommunicationError",
    "DeviceUnreachable",
    "DeviceTimeout",
    "CredentialsRejected",
    "ProtocolError",
    "DeviceError",
]


class BerofosError(Exception):
    """Base class of every error raised by berofos-ocf on purpose."""


class ConfigFileError(BerofosError):
    """A local configuration file (``bnfos.conf``) is missing, unreadable or wrong.

    ``path`` and ``line`` (1-based, or None) say where; ``kind`` is one of
    ``missing``, ``permission``, ``syntax`` or ``unknown-device`` so that the
    agent can map it to the right OCF exit code without parsing the message.
    """

    def __init__(self, message: str, *, path: str | None = None,
                 line: int | None = None, kind: str = "syntax") -> None:
        where = path or ""
        if path and line is not None:
            where = f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line
        self.kind = kind


class InvalidValue(BerofosError, ValueError):
    """A value does not fit its key (a usage error, never a device error)."""


class FormatError(BerofosError):
    """Bytes or text from the wire do not follow the format (``config.txt``, GBL4).

    Raised by the pure protocol layer, which does not know which device sent the
    data; the client re-raises it as :class:`ProtocolError` naming the device.
    """


class DeviceCommunicationError(BerofosError):
    """Talking to a device failed; ``device`` is its label, e.g. ``fos1 (10.0.0.5)``.

    ``transient`` says whether asking again may help, and is what the client's
    retries go by: True for a connection refused, reset, dropped or timed out
    (small embedded web servers drop connections when two clients ask at the
    same moment), and for a server error (5xx); False for rejected credentials,
    which must never be retried as if the network had hiccuped, and for an
    answer that was complete but wrong.  Each instance may override its class.
    """

    transient = False

    def __init__(self, device: str, detail: str, *, message: str | None = None,
                 transient: bool | None = None) -> None:
        super().__init__(message or f"{device}: {detail}")
        self.device = device
        self.detail = detail
        if transient is not None:
            self.transient = transient


class DeviceUnreachable(DeviceCommunicationError):
    """No connection: refused, reset, dropped, no route, device powered off."""

    transient = True


class DeviceTimeout(DeviceUnreachable):
    """The device did not answer within the time allowed."""


class CredentialsRejected(DeviceCommunicationError):
    """HTTP 401: no login configured, or the configured one is wrong."""

    transient = False

    def __init__(self, device: str, detail: str = "") -> None:
        message = f"credentials rejected by {device}" + (f" ({detail})" if detail else "")
        super().__init__(device, detail or "credentials rejected", message=message)


class ProtocolError(DeviceCommunicationError):
    """The device answered something that is not what the protocol says."""


class DeviceError(DeviceCommunicationError):
    """The device understood and refused: HTTP error status, error code, no confirmation."""
