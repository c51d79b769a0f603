"""Is this a two-node cluster that a network split would leave with two promoted nodes?

Corosync's ``two_node`` keeps a lone survivor quorate, which is what a node
that *dies* needs, but after a *split* both halves keep quorum.  Without
fencing and without a third vote (a corosync-qdevice), each half then promotes
its instance.  The agent cannot fix that configuration, but start and
validate-all say so in the log, with the way out.

Everything is asked with the commands the cluster ships (``corosync-cmapctl``,
``crm_attribute``); a command that fails (no cluster here, ocf-tester) means
"nothing to say".
"""

from __future__ import annotations

__all__ = ["ClusterSafety", "read_cluster_safety", "two_node_without_safety"]

from dataclasses import dataclass


@dataclass
class ClusterSafety:
    """What keeps two promoted instances apart, as far as the cluster's tools tell."""

    nodes: int
    two_node: bool
    qdevice: bool
    fencing: bool | None  # None: not known

    def warning(self) -> str | None:
        if self.nodes != 2 or not self.two_node or self.qdevice or self.fencing is not False:
            return None
        return ("two-node cluster with two_node, no fencing and no qdevice: a network split "
                "between the nodes promotes both (the agent's split guard then keeps the "
                "lines where the other node put them, one switch); add a qdevice arbiter or "
                "fencing (see the README, 'Two nodes')")


def _cmap(runner, timeout) -> dict[str, str] | None:
    status, out, _ = runner(["corosync-cmapctl"], timeout())
    if status != 0:
        return None
    keys = {}
    for line in out.splitlines():
        name, _, value = line.partition(" = ")
        keys[name.split(" (", 1)[0].strip()] = value.strip()
    return keys


def _fencing(runner, timeout) -> bool | None:
    status, out, error = runner(["crm_attribute", "--type", "crm_config", "--name",
                                 "stonith-enabled", "--query", "--quiet"], timeout())
    if status == 0:
        return out.strip().lower() not in ("false", "no", "0", "off", "n")
    if "No such device" in error or "not found" in error.lower() or status == 105:
        return True  # unset: Pacemaker's default is true
    return None


def read_cluster_safety(runner, timeout) -> ClusterSafety | None:
    """The facts, or None when corosync cannot be asked (no cluster on this host)."""
    keys = _cmap(runner, timeout)
    if keys is None:
        return None
    nodes = {name.split(".")[2] for name in keys if name.startswith("nodelist.node.")}
    two_node = keys.get("quorum.two_node", "0") not in ("0", "")
    qdevice = bool(keys.get("quorum.device.model"))
    fencing = None
    if len(nodes) == 2 and two_node and not qdevice:
        fencing = _fencing(runner, timeout)
    return ClusterSafety(len(nodes), two_node, qdevice, fencing)


def two_node_without_safety(runner, timeout) -> str | None:
    """The warning for this cluster, or None (safe, or not known)."""
    safety = read_cluster_safety(runner, timeout)
    return safety.warning() if safety else None
