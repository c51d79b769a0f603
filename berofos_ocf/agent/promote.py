"""Promote: move every device's relays to this node, and their power-on mode too.

Each device is handled in its own thread (the client's ``switch_relays``: read,
set, confirm, retry within the deadline), then its power-on relay mode
(``modedef``) is pointed here as well, so that a berofos that reboots keeps the
lines where the cluster put them.  A ``modedef`` that cannot be set is logged;
it does not fail a promote whose relays moved (the promoted monitor then
reports it as degraded).

Each device's switch is logged the moment it is confirmed, not when the whole
promote ends: if Pacemaker kills the action (SIGTERM) while another device
hangs, the log already says what moved, and the SIGTERM handler withdraws this
node's score and leaves an exit reason naming the devices that moved.
"""

from __future__ import annotations

__all__ = ["Promotion", "PromoteInterrupted"]

import contextlib
import signal
import threading

from ..client import on_every_device
from ..errors import BerofosError
from ..keys import RELAY_LABELS


class PromoteInterrupted(Exception):
    """SIGTERM arrived during the promote."""


class Promotion:
    """One promote: every client's device to ``own_mode`` for ``node``, within ``deadline``."""

    def __init__(self, clients: list, own_mode: int, node: str, deadline, log) -> None:
        self._clients = clients
        self._own_mode = own_mode
        self._node = node
        self._deadline = deadline
        self._log = log
        self._lock = threading.Lock()
        self.moved: list[str] = []

    def run(self) -> list[BerofosError]:
        """Promote every device in parallel; the errors, one per failed device."""
        results = on_every_device(self._promote_device, self._clients, self._deadline)
        return [result.error for result in results if not result.ok]

    def _promote_device(self, client):
        switch = client.switch_relays(self._own_mode, self._deadline)
        if switch.changed:
            change = f"{RELAY_LABELS[switch.old_mode]} -> {RELAY_LABELS[switch.new_mode]}"
            with self._lock:
                self.moved.append(f"{client.label} {change}")
            self._log.info(f"{client.label}: relays {change} for node {self._node}")
        self._point_power_on(client)
        return switch

    def _point_power_on(self, client) -> None:
        try:
            settings = client.read_settings(self._deadline)
            if settings.get("modedef") == self._own_mode:
                return
            client.write({"modedef": self._own_mode}, self._deadline, current=settings)
        except BerofosError as err:
            self._log.warning(f"{client.label}: power-on relay mode not pointed at {self._node} "
                              f"(a reboot would move the lines): {err}")
            return
        self._log.info(f"{client.label}: power-on relays {RELAY_LABELS[self._own_mode]} "
                       f"for node {self._node}")

    def stop_asking(self, grace: float = 1.0) -> None:
        """After SIGTERM: no new request starts; a request on the wire gets ``grace``
        seconds to land, so that :meth:`moved_summary` names what it moved."""
        self._deadline.expire()
        for thread in threading.enumerate():
            if thread.daemon and thread is not threading.current_thread():
                thread.join(grace / max(1, len(self._clients)))

    def moved_summary(self) -> str:
        """``; moved: fos1 (…) A--D -> A--B`` or nothing, for an exit reason."""
        with self._lock:
            return f"; moved: {', '.join(self.moved)}" if self.moved else ""

    @contextlib.contextmanager
    def interruptible(self):
        """Turn SIGTERM into :class:`PromoteInterrupted` in the main thread."""
        def handler(signum, frame):
            raise PromoteInterrupted()

        try:
            previous = signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread (tests): no handler to install
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
