"""The split guard: two promoted halves of a two-node cluster do not play relay ping-pong.

With ``two_node``, no fencing and no quorum device, a network split leaves
both nodes quorate; the one that did not hold the lines promotes itself and
moves them.  Were the holder to take them back (its monitor sees them
elsewhere, code 9, Pacemaker re-promotes it), the two would switch the relays
back and forth for as long as the split lasts, every switch dropping every call.

The guard is the agent's part in stopping that, by a fact it feeds Pacemaker:
a promoted instance that held the lines *with its peer in its partition*,
and finds them moved to the peer *by the peer's promote* (relays and power-on
mode both point there: promote sets both) while the peer is *outside* its
partition, yields: it withholds its score (Pacemaker demotes it and does not
promote it again) until it sees the peer in its partition again, the lines
leave the peer, or a probe (``pcs resource cleanup``) asks for a fresh look.
The node that took over after losing sight of its peer never yields, so one
of the two halves always stops.

The guard is armed only where that split can happen: start records whether
the cluster is two nodes with ``two_node``, no fencing and no quorum device
(:mod:`.quorum`).  With an arbiter or fencing the losing half is stopped or
fenced, so a yield could only be wrong (a hand-made ``mode`` and ``modedef``
change while the peer is down would park the lines on a dead node).
"""

from __future__ import annotations

__all__ = ["SplitGuard"]


class SplitGuard:
    """The guard for one action: ``runner`` runs ``crm_node -p``, ``timeout()`` bounds it."""

    def __init__(self, *, log, runner, timeout, clock, is_probe: bool, in_cluster: bool) -> None:
        self._log = log
        self._runner = runner
        self._timeout = timeout
        self._clock = clock
        self._is_probe = is_probe
        self._in_cluster = in_cluster

    def partition(self) -> list[str] | None:
        """The node names of this node's cluster partition (None: not known)."""
        status, out, _ = self._runner(["crm_node", "-p"], self._timeout())
        return [name.lower() for name in out.split()] if status == 0 and out.strip() else None

    def _peer_in_sight(self, setup) -> bool | None:
        partition = self.partition()
        return None if partition is None else setup.peer.lower() in partition

    def note_peer(self, setup, promoted: bool, state) -> None:
        """Has the peer been in this partition since this instance was promoted?

        Asked on each promoted monitor until the answer is yes (a promote after
        a failover happens without the peer), never again after that.
        """
        if promoted and state.split_guard and not state.promoted_with_peer and self._in_cluster:
            if self._peer_in_sight(setup):
                state.promoted_with_peer = True

    def check(self, setup, health: list, promoted: bool, state) -> None:
        """Record a yield to a peer that took the lines from outside this partition."""
        if not (promoted and state.split_guard and state.promoted_with_peer
                and _taken_by_peer(setup, health)):
            return
        if self._peer_in_sight(setup) is not False:
            return
        state.yielded_to, state.yielded_since = setup.peer, self._clock()
        self._log.warning(f"the lines were moved to {setup.peer} by its own promote while "
                          f"{setup.peer} is outside this partition (split without fencing or "
                          "arbiter): not taking them back while it is out of sight")

    def release(self, setup, health: list, state) -> None:
        """End a yield when the peer is back in sight, or the lines left it."""
        if not state.yielded_to:
            return
        readable = [h for h in health if h.usable]  # unread devices prove nothing
        reason = None
        if self._is_probe:
            reason = "a probe (cleanup) asked for a fresh look"
        elif readable and not any(h.relay_mode == setup.peer_mode for h in readable):
            reason = "the lines are no longer at the peer"
        elif self._peer_in_sight(setup):
            reason = f"{setup.peer} is back in this partition"
        if reason:
            self._log.info(f"no longer yielding the lines to {state.yielded_to}: {reason}")
            state.yielded_to = state.yielded_since = None


def _taken_by_peer(setup, health: list) -> bool:
    """Every device's relays and power-on mode point at the peer: its promote did that."""
    return bool(health) and all(h.relay_mode == setup.peer_mode
                                and h.power_on_mode == setup.peer_mode for h in health)
