"""The agent's meta-data XML (OCF 1.1), generated from :mod:`.table`.

The output validates against resource-agents' ``ra-api-1.dtd`` (which
ocf-tester uses) and pcs's OCF 1.1 schema: parameter types are only
``string``/``integer``/``boolean`` and roles are ``Promoted``/``Unpromoted``.
Two things of OCF 1.1 are newer than that DTD (resource-agents 4.12): the
``reload-agent`` action and the ``reloadable`` attribute of a parameter.  The
document declares them in its own internal DTD subset, which an XML parser
reads before the external one, so that ``xmllint --valid`` (ocf-tester) accepts
them; resource-agents' ``metadata.rng`` has no such escape and accepts the
document only without them.
"""

from __future__ import annotations

__all__ = ["metadata_xml"]

import xml.etree.ElementTree as ET

from .. import __version__
from .table import BEROFOS, AgentTable

_HEADER = ('<?xml version="1.0"?>\n<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd" [\n'
           '<!-- OCF 1.1, newer than ra-api-1.dtd: reload-agent, reloadable -->\n'
           '<!ATTLIST action name CDATA #REQUIRED>\n'
           '<!ATTLIST parameter reloadable (1|0) "0">\n'
           ']>\n')


def _description(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag, lang="en").text = text


def metadata_xml(table: AgentTable = BEROFOS) -> str:
    """The whole document, as ``meta-data`` prints it."""
    root = ET.Element("resource-agent", name=table.name, version=__version__)
    ET.SubElement(root, "version").text = "1.1"
    _description(root, "longdesc", table.longdesc)
    _description(root, "shortdesc", table.shortdesc)
    parameters = ET.SubElement(root, "parameters")
    for parameter in table.parameters:
        element = ET.SubElement(parameters, "parameter", name=parameter.name,
                                unique="1" if parameter.unique else "0",
                                required="1" if parameter.required else "0")
        if parameter.reloadable:
            element.set("reloadable", "1")
        _description(element, "longdesc", parameter.longdesc)
        _description(element, "shortdesc", parameter.shortdesc)
        content = ET.SubElement(element, "content", type=parameter.type)
        if parameter.default is not None:
            content.set("default", parameter.default)
    actions = ET.SubElement(root, "actions")
    for action in table.advertised():
        element = ET.SubElement(actions, "action", name=action.name,
                                timeout=f"{action.timeout}s")
        if action.interval is not None:
            element.set("interval", f"{action.interval}s")
        if action.role is not None:
            element.set("role", action.role)
        if action.depth is not None:
            element.set("depth", str(action.depth))
    ET.indent(root)
    return _HEADER + ET.tostring(root, encoding="unicode") + "\n"
