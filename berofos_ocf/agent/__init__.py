"""The OCF resource agent for berofos devices, run as a promotable clone.

``agents/berofos`` calls :func:`main`.  Every action is a new process, so this
package keeps its imports lazy: meta-data loads only the table and ElementTree,
stop and demote load neither the HTTP client nor ``requests``.

Modules: :mod:`.table` (parameters and actions, the source of meta-data,
validation and man page), :mod:`.codes` (exit statuses), :mod:`.environment`
(what Pacemaker passes), :mod:`.ocflog` (logging through resource-agents'
``ocf.py``), :mod:`.state` (role marker, promotion score), :mod:`.actions`
(the actions), :mod:`.metadata` (XML and man page).
"""

from __future__ import annotations

__all__ = ["main"]

import os
import sys


def main(argv: list[str] | None = None, environ=None, table=None) -> int:
    """Run one OCF action of the agent described by ``table`` (default: berofos)."""
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
        from .actions import run_action

        return run_action(env)
    except Exception as err:  # last resort: a failed stop would get the node fenced
        sys.stderr.write(f"ocf-exit-reason:internal error in {action}: "
                         f"{type(err).__name__}: {err}\n")
        return 0 if action == "stop" else 1
