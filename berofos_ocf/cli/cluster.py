"""Is Pacemaker managing the lines on this machine?  The guard of ``berofos switch``.

A switch by hand under a cluster that manages a berofos resource is undone by
the next promoted monitor (code 9, then a new promote), or fought over.  The
guard asks Pacemaker's own tools: ``crm_mon --output-as=xml --one-shot
--inactive`` lists every resource with its agent and whether the cluster
manages it (cluster maintenance mode, node maintenance and
``is-managed=false`` all show as unmanaged); for its message, ``cibadmin
--query --scope resources`` gives the resource's ``port_b`` and ``port_d``.
No tools, no cluster running, no answer in time: nothing manages the lines,
and the switch goes ahead (the normal case on a machine without a cluster).

Commands run through an injected ``runner(argv, timeout)`` that returns
(exit status, stdout, stderr), so that tests give the tools' answers.
"""

from __future__ import annotations

__all__ = ["TOOL_TIMEOUT", "ManagedResource", "managed_berofos", "refuse_if_managed",
           "run_tool"]

import subprocess
import xml.etree.ElementTree as ElementTree

from ..health import relay_owner
from ..keys import RELAY_LABELS
from .context import UsageError

TOOL_TIMEOUT = 5.0
_AGENT_TYPE = "berofos"
_CONTAINERS = ("clone", "group", "bundle")


class ManagedResource:
    """A berofos resource the cluster manages: ``movable`` is what ``pcs resource move``
    takes (the clone), ``port_b``/``port_d`` its nodes when the CIB could be read."""

    __slots__ = ("resource", "movable", "agent", "port_b", "port_d")

    def __init__(self, resource: str, movable: str, agent: str) -> None:
        self.resource = resource
        self.movable = movable
        self.agent = agent
        self.port_b: str | None = None
        self.port_d: str | None = None


def run_tool(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run a local tool without a shell: (status, stdout, stderr); never raises."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.SubprocessError) as err:
        return 127, "", str(err)
    return done.returncode, done.stdout, done.stderr


def _xml(runner, argv: list[str]) -> ElementTree.Element | None:
    status, out, _ = runner(argv, TOOL_TIMEOUT)
    if status != 0 or not out.strip():
        return None
    try:
        return ElementTree.fromstring(out)
    except ElementTree.ParseError:
        return None


def _is_berofos(agent: str) -> bool:
    parts = agent.split(":")
    return parts[0] == "ocf" and parts[-1] == _AGENT_TYPE


def _resources(element: ElementTree.Element, outer: str | None = None):
    """(resource element, id of its outermost container or its own) below ``element``."""
    for child in element:
        if child.tag == "resource":
            yield child, outer or child.get("id", "")
        elif child.tag in _CONTAINERS:
            yield from _resources(child, outer or child.get("id", ""))
        elif child.tag == "replica":
            yield from _resources(child, outer)


def managed_berofos(runner) -> list[ManagedResource]:
    """The berofos resources (any provider) the running cluster manages; none without one."""
    status = _xml(runner, ["crm_mon", "--output-as=xml", "--one-shot", "--inactive"])
    if status is None:
        return []
    options = status.find("./summary/cluster_options")
    if options is not None and options.get("maintenance-mode") == "true":
        return []
    found: dict[str, ManagedResource] = {}
    resources = status.find("resources")
    for resource, movable in [] if resources is None else _resources(resources):
        agent = resource.get("resource_agent", "")
        if _is_berofos(agent) and resource.get("managed") == "true":
            name = resource.get("id", "").split(":")[0]  # clone instances: isdn:0
            found.setdefault(movable, ManagedResource(name, movable, agent))
    if found:
        _add_nodes(runner, list(found.values()))
    return list(found.values())


def _add_nodes(runner, managed: list[ManagedResource]) -> None:
    """``port_b`` and ``port_d`` of each resource, from the CIB's configuration."""
    configuration = _xml(runner, ["cibadmin", "--query", "--scope", "resources"])
    if configuration is None:
        return
    by_id = {item.resource: item for item in managed}
    for primitive in configuration.iter("primitive"):
        item = by_id.get(primitive.get("id"))
        if item is None:
            continue
        for pair in primitive.iterfind("./instance_attributes/nvpair"):
            if pair.get("name") in ("port_b", "port_d"):
                setattr(item, pair.get("name"), pair.get("value"))


def refuse_if_managed(runner, mode: int) -> None:
    """Raise :class:`UsageError` saying how to move the lines when the cluster manages them."""
    managed = managed_berofos(runner or run_tool)
    if not managed:
        return
    item = managed[0]
    node = relay_owner(mode, item.port_b or "NODE", item.port_d or "NODE")
    raise UsageError(
        f"Pacemaker manages these lines (resource {item.movable}, {item.agent}): to put "
        f"them on {RELAY_LABELS[mode]}, 'pcs resource move {item.movable} {node} --promoted' "
        f"(or 'crm_resource --move --promoted --resource {item.movable} --node {node}', then "
        "--clear), or first 'pcs property set maintenance-mode=true'; --force switches "
        "anyway, and the cluster may switch them back")
