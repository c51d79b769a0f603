"""OCF 1.1 exit statuses.

resource-agents' ``ocf.py`` names only 0–9, with the old master/slave names;
the promoted names and the degraded statuses 190/191 are defined here.
"""

from __future__ import annotations

__all__ = ["OCFStatus"]

from enum import IntEnum


class OCFStatus(IntEnum):
    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9
    DEGRADED = 190
    DEGRADED_PROMOTED = 191
