"""The two-node safety warning, from what corosync-cmapctl and crm_attribute answer."""

from __future__ import annotations

import pytest

from berofos_ocf.agent.quorum import read_cluster_safety, two_node_without_safety

NODES = ("nodelist.node.0.name (str) = wazo-1\nnodelist.node.0.nodeid (u32) = 1\n"
         "nodelist.node.1.name (str) = wazo-2\nnodelist.node.1.nodeid (u32) = 2\n")
TWO_NODE = "quorum.provider (str) = corosync_votequorum\nquorum.two_node (u8) = 1\n"
QDEVICE = ("quorum.provider (str) = corosync_votequorum\nquorum.device.model (str) = net\n"
           "quorum.device.net.algorithm (str) = ffsplit\n")


def runner_for(cmap: str | None, stonith: tuple[int, str, str] = (0, "false\n", "")):
    calls = []

    def run(argv, timeout):
        calls.append(argv[0])
        if argv[0] == "corosync-cmapctl":
            return (0, cmap, "") if cmap is not None else (1, "", "Failed to initialize")
        return stonith
    return run, calls


def test_two_nodes_two_node_no_fencing_no_qdevice_is_warned():
    run, _ = runner_for(NODES + TWO_NODE)
    warning = two_node_without_safety(run, lambda: 1.0)
    assert warning and "add a qdevice arbiter or fencing" in warning


@pytest.mark.parametrize("cmap, stonith", [
    (NODES + QDEVICE, (0, "false\n", "")),                       # the arbiter
    (NODES + TWO_NODE, (0, "true\n", "")),                       # fencing
    (NODES + TWO_NODE, (105, "", "No such device or address")),  # unset: on by default
    (NODES + "nodelist.node.2.name (str) = pbx\n" + TWO_NODE, (0, "false\n", "")),
    (None, (0, "false\n", "")),                                  # no cluster here
], ids=["qdevice", "fencing", "fencing-default", "three-nodes", "no-cluster"])
def test_safe_or_unknown_says_nothing(cmap, stonith):
    run, _ = runner_for(cmap, stonith)
    assert two_node_without_safety(run, lambda: 1.0) is None


def test_fencing_is_asked_only_when_it_matters():
    run, calls = runner_for(NODES + QDEVICE)
    safety = read_cluster_safety(run, lambda: 1.0)
    assert (safety.nodes, safety.two_node, safety.qdevice) == (2, False, True)
    assert calls == ["corosync-cmapctl"]
