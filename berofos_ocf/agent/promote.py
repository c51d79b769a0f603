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

from ..client import for_each_device
from ..errors import BerofosError
from ..keys import RELAY_LABELS


class PromoteInterrupted(Exception):
    """SIGTERM arrived during the promote."""


class Promotion:
    """One promote of ``setup.devices`` to ``setup.own_mode`` by ``agent``."""

    def __init__(self, agent, setup) -> None:
        self._agent = agent
        self._setup = setup
        self._lock = threading.Lock()
        self.moved: list[str] = []

    def run(self) -> list[Exception]:
        """Promote every device in parallel; the failures, one per failed device."""
        agent = self._agent
        clients = agent._clients(self._setup)
        outcomes = for_each_device(self._promote_device, clients, agent.device_deadline,
                                   label=lambda client: client.label)
        return [outcome for outcome in outcomes if isinstance(outcome, Exception)]

    def _promote_device(self, client):
        setup, deadline = self._setup, self._agent.device_deadline
        switch = client.switch_relays(setup.own_mode, deadline)
        if switch.changed:
            change = (f"{RELAY_LABELS[switch.old_mode]} -> {RELAY_LABELS[switch.new_mode]}")
            with self._lock:
                self.moved.append(f"{client.label} {change}")
            self._agent.log.info(f"{client.label}: relays {change} for node {setup.node}")
        self._point_power_on(client)
        return switch

    def _point_power_on(self, client) -> None:
        setup, deadline, log = self._setup, self._agent.device_deadline, self._agent.log
        try:
            settings = client.read_settings(deadline)
            if settings.get("modedef") == setup.own_mode:
                return
            client.write({"modedef": setup.own_mode}, deadline, current=settings)
        except BerofosError as err:
            log.warning(f"{client.label}: power-on relay mode not pointed at {setup.node} "
                        f"(a reboot would move the lines): {err}")
            return
        log.info(f"{client.label}: power-on relays {RELAY_LABELS[setup.own_mode]} "
                 f"for node {setup.node}")

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
