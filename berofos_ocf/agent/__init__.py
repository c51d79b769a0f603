"""The OCF resource agents for berofos devices: the promotable clone and the bypass primitive.

``agents/berofos`` calls :func:`main`; ``agents/berofos-bypass`` calls it with
the table :data:`.bypass_table.BYPASS`.  Every action is a new process, so this
package keeps its imports lazy: meta-data loads only the table and ElementTree,
stop and demote load neither the HTTP client nor ``requests``.

Modules: :mod:`.table` (parameters and actions, the source of meta-data,
validation and man page), :mod:`.codes` (exit statuses), :mod:`.environment`
(what Pacemaker passes), :mod:`.ocflog` (logging through resource-agents'
``ocf.py``), :mod:`.state` (role marker, promotion score), :mod:`.actions`
(the actions), :mod:`.metadata` (XML and man page); for the bypass agent
:mod:`.bypass_table`, :mod:`.bypass` (its actions) and :mod:`.bypass_kicker`
(its kicker process, :mod:`berofos_ocf.kicker`).
"""

from __future__ import annotations

__all__ = ["main"]

import os
import sys


def main(argv: list[str] | None = None, environ=None, table=None) -> int:
    """Run one OCF action of the agent described by ``table`` (default: berofos), with
    the ``run_action`` of the module its table names."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    from .environment import AgentEnvironment

    action = argv[1] if len(argv) > 1 else ""
    try:
        env = AgentEnvironment(environ, argv, *([table] if table else []))
        if env.action == "meta-data":
            from .metadata import metadata_xml

            sys.stdout.write(metadata_xml(env.table))
            return 0
        from importlib import import_module

        # the table names the module of its agent's actions (.actions, .bypass)
        return import_module(f".{env.table.module}", __name__).run_action(env)
    except Exception as err:  # last resort: a failed stop would get the node fenced
        sys.stderr.write(f"ocf-exit-reason:internal error in {action}: "
                         f"{type(err).__name__}: {err}\n")
        return 0 if action == "stop" else 1
