"""What Pacemaker (or ocf-tester, or a person) hands the agent: action and environment.

Read once into :class:`AgentEnvironment`; nothing else in the agent looks at
``os.environ``, which keeps the actions testable with any environment.
"""

from __future__ import annotations

__all__ = ["AgentEnvironment", "DEFAULT_RSCTMP"]

from ..runstate import DEFAULT_RUN_DIR as DEFAULT_RSCTMP
from .table import BEROFOS, AgentTable


def _whole_number(text: str | None) -> int | None:
    text = (text or "").strip()
    # bounded length: int() refuses huge digit strings with a ValueError
    if not text.isdigit() or not text.isascii() or len(text) > 12:
        return None
    return int(text)


class AgentEnvironment:
    """The action, the resource's parameters and Pacemaker's meta attributes."""

    def __init__(self, environ, argv: list[str], table: AgentTable = BEROFOS) -> None:
        self.environ = environ
        self.table = table
        # Pacemaker passes the action as the only argument; ocf-tester also
        # exports __OCF_ACTION.
        self.action = argv[1] if len(argv) > 1 else environ.get("__OCF_ACTION", "")
        self.program = argv[0] if argv else table.name
        instance = environ.get("OCF_RESOURCE_INSTANCE") or table.name
        self.instance = instance.split(":", 1)[0]  # anonymous clone: no :N
        self.interval_ms = _whole_number(environ.get("OCF_RESKEY_CRM_meta_interval"))
        timeout_ms = _whole_number(environ.get("OCF_RESKEY_CRM_meta_timeout"))
        self.timeout = (timeout_ms / 1000 if timeout_ms
                        else float(table.default_timeout(self.action)))
        self.on_node = environ.get("OCF_RESKEY_CRM_meta_on_node") or None
        self.promotable = any((environ.get(name) or "0").strip() not in ("", "0") for name in (
            "OCF_RESKEY_CRM_meta_promoted_max", "OCF_RESKEY_CRM_meta_master_max"))
        # what the clone allows; None outside a promotable clone
        self.promoted_max = next((_whole_number(environ.get(name)) for name in (
            "OCF_RESKEY_CRM_meta_promoted_max", "OCF_RESKEY_CRM_meta_master_max")
            if environ.get(name)), None)
        self.check_level = _whole_number(environ.get("OCF_CHECK_LEVEL")) or 0
        self.rsc_tmp = environ.get("HA_RSCTMP") or DEFAULT_RSCTMP
        self.debug = environ.get("HA_debug", "0").strip() not in ("", "0", "false", "no")

    @property
    def is_probe(self) -> bool:
        """A monitor with interval 0 (or none): Pacemaker asking "is it running here?"."""
        return self.action == "monitor" and not self.interval_ms

    def raw_parameter(self, name: str) -> str | None:
        return self.environ.get(f"OCF_RESKEY_{name}")

    def parameter(self, name: str) -> str:
        """The value of a parameter of the table, its default when unset."""
        value = self.raw_parameter(name)
        if value is None:
            value = self.table.parameters_by_name[name].default
        return "" if value is None else value

    def notify_summary(self) -> str:
        """``pre-promote: promote wazo-2; demote wazo-1`` from the notify variables."""
        prefix = "OCF_RESKEY_CRM_meta_notify_"
        kind = self.environ.get(prefix + "type", "?")
        operation = self.environ.get(prefix + "operation", "?")
        parts = []
        for what in ("promote", "demote", "start", "stop"):
            names = self.environ.get(f"{prefix}{what}_uname", "").split()
            if names:
                parts.append(f"{what} {' '.join(names)}")
        promoted = self.environ.get(prefix + "promoted_uname",
                                     self.environ.get(prefix + "master_uname", "")).split()
        if promoted:
            parts.append(f"promoted now {' '.join(promoted)}")
        return f"{kind}-{operation}: {'; '.join(parts) or 'nothing to do'}"
