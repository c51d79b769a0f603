"""What the agent keeps in the cluster: the promotion score; and how it runs commands.

The files it keeps on the node (role marker, instance state) are in
:mod:`berofos_ocf.runstate`.  The promotion score is a transient node attribute set with
``crm_attribute --promotion``; outside a promotable clone (ocf-tester,
``crm_resource --force-*``) there is no attribute to set, and a failure of
``crm_attribute`` never fails an action.
"""

from __future__ import annotations

__all__ = ["PromotionScore", "NodeAttributes", "run_command", "WITHHELD"]

# Pacemaker's -INFINITY: this node must not be promoted, whatever location
# rules prefer it.
WITHHELD = -1_000_000


def run_command(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run a command without a shell; return (exit status, stdout, stderr). Never raises."""
    import subprocess

    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=max(timeout, 0.1), text=True)
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]}: no answer within {timeout:.1f} s"
    except OSError as err:
        return 126, "", f"{argv[0]}: {err.strerror}"
    return result.returncode, result.stdout, result.stderr.strip()


class _NodeAttribute:
    """Something this instance writes in the cluster with ``crm_attribute`` about its node.

    ``enabled`` is False outside a promotable clone: then nothing is run.
    ``runner(argv, timeout)`` returns (status, stdout, stderr), see :func:`run_command`;
    ``timeout()`` gives the seconds each call may take.  A failure is logged,
    never raised: it must not fail an action.
    """

    def __init__(self, node: str, *, enabled: bool, log, runner=run_command,
                 timeout=lambda: 5.0) -> None:
        self.node = node
        self.enabled = enabled
        self._log = log
        self._runner = runner
        self._timeout = timeout

    def _call(self, what: str, arguments: list[str]) -> bool:
        argv = ["crm_attribute", "--node", self.node, "--lifetime", "reboot", *arguments]
        status, _, error = self._runner(argv, self._timeout())
        if status != 0:
            self._log.warning(f"could not {what} of {self.node} "
                              f"(crm_attribute {' '.join(arguments)}): "
                              f"{error or f'exit status {status}'}")
        return status == 0


class PromotionScore(_NodeAttribute):
    """This node's promotion score for the clone, through ``crm_attribute --promotion``.

    Withholding sets ``-INFINITY`` rather than deleting: a node without a score
    still gets role=Promoted location scores added to a base of -1, so a
    preferred node that cannot reach the devices would be promoted anyway.
    Only stop deletes the score.
    """

    def __init__(self, instance: str, node: str, **options) -> None:
        super().__init__(node, **options)
        self.instance = instance

    def _run(self, what: str, *arguments: str) -> None:
        if self.enabled:
            self._call(f"{what} the promotion score",
                       [f"--promotion={self.instance}", *arguments])

    def set(self, score: int) -> None:
        """Set the score; :data:`WITHHELD` (or lower) is written as ``-INFINITY``."""
        if score <= WITHHELD:
            self.withhold()
            return
        self._log.debug(f"promotion score of {self.node}: {score}")
        self._run("set", f"--update={score}")

    def withhold(self) -> None:
        """This node must not be promoted, whatever location rules prefer it."""
        self._log.debug(f"promotion score of {self.node}: -INFINITY (withheld)")
        # one argument: a separate "-INFINITY" is parsed as options -I -N FINITY
        self._run("withhold", "--update=-INFINITY")

    def delete(self) -> None:
        """No score at all: the instance is stopped."""
        self._log.debug(f"promotion score of {self.node}: deleted")
        self._run("delete", "--delete")


class NodeAttributes(_NodeAttribute):
    """What this node's view says, as transient node attributes people read in ``crm_mon -A``.

    ``INSTANCE-lines``: where the lines are (``here``, the other node's name,
    ``split`` or ``unknown``); ``INSTANCE-health``: ``ok`` or a short problem.
    No leading ``#`` (crm_mon hides those).  Each is written only when its value
    changes (``known`` holds what was last written), and removed at stop.
    """

    def __init__(self, instance: str, node: str, **options) -> None:
        super().__init__(node, **options)
        self.names = {"lines": f"{instance}-lines", "health": f"{instance}-health"}

    def publish(self, values: dict[str, str], known: dict[str, str]) -> dict[str, str]:
        """Write the values (by key: lines, health) that differ from ``known``; what is known now."""
        if not self.enabled:
            return known
        written = dict(known)
        for key, value in values.items():
            name = self.names[key]
            if known.get(name) != value and self._call(f"update node attribute {name}",
                                                       ["--name", name, f"--update={value}"]):
                written[name] = value
        return written

    def remove(self, known: dict[str, str]) -> None:
        if self.enabled:
            for name in known:
                self._call(f"remove node attribute {name}", ["--name", name, "--delete"])
