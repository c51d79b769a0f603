"""What an instance of the agent keeps on its node between two actions.

Every action is a new process, and the device has no notion of "started on
node X", so two small files per instance live in the run directory
(``HA_RSCTMP``, on Debian ``/run/resource-agents``: tmpfs, gone after a reboot
as a started instance should be):

* ``berofos-INSTANCE.role``: the role marker, ``unpromoted`` or ``promoted``;
  its existence means "started here".
* ``berofos-INSTANCE.state``: JSON, :class:`InstanceState`: which devices and
  which relay mode are this node's, the streak of failed reads that the score
  hysteresis counts, the last score, and what the split guard knows.

The agent writes them; ``berofos check --holder`` (a corosync-qdevice
heuristic) reads them.  The directory is trusted only as far as its mode
allows: one writable by others without the sticky bit is refused, temporary
files are created with ``O_EXCL`` under unpredictable names, and no file is
read or written through a symbolic link, so a local user who plants links there
cannot make root overwrite another file.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_RUN_DIR",
    "UNPROMOTED",
    "PROMOTED",
    "UnsafeRunDirectory",
    "ForeignFile",
    "RunDirectory",
    "RoleMarker",
    "InstanceState",
    "StateFile",
    "promoted_instances",
]

import errno
import os
import stat

# Debian's ocf-directories: HA_RSCTMP is derived by the shell library, not
# passed by Pacemaker.
DEFAULT_RUN_DIR = "/run/resource-agents"
UNPROMOTED = "unpromoted"
PROMOTED = "promoted"
_ROLES = (UNPROMOTED, PROMOTED)
_PREFIX = "berofos-"
_MAX_FILE = 64 * 1024  # what the agent writes is a few hundred bytes


class UnsafeRunDirectory(OSError):
    """The run directory is writable by others without the sticky bit, or not a directory."""


class ForeignFile(OSError):
    """A file of the run directory that neither root nor this user wrote: not the agent's."""


class RunDirectory:
    """The directory holding the agent's files, used without following links."""

    def __init__(self, path: str) -> None:
        self.path = path

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def ensure(self) -> None:
        """Create the directory if missing (tmpfiles.d may not have run); refuse an unsafe one."""
        os.makedirs(self.path, mode=0o755, exist_ok=True)
        self.check()

    def check(self) -> None:
        info = os.lstat(self.path)
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafeRunDirectory(f"{self.path} is not a directory")
        if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
            raise UnsafeRunDirectory(f"{self.path} is writable by everyone without the sticky "
                                     f"bit: chmod o-w or +t {self.path}")

    def read(self, name: str) -> str | None:
        """The text of ``name``, None if absent.

        A link, a non-regular file, or a file owned by someone other than root
        or this user (in a directory others may write to, with the sticky bit)
        is an OSError: the agent never wrote it.
        """
        try:
            descriptor = os.open(self.file(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise OSError(f"{self.file(name)} is not a regular file")
            if info.st_uid not in (0, os.geteuid()):
                raise ForeignFile(f"{self.file(name)} belongs to user {info.st_uid}")
            data = handle.read(_MAX_FILE + 1)
        if len(data) > _MAX_FILE:
            raise OSError(f"{self.file(name)} is larger than {_MAX_FILE} bytes")
        return data.decode("utf-8")

    def write(self, name: str, text: str) -> None:
        """Replace ``name`` atomically: a new file under an unpredictable name, then rename.

        The new file is created with ``O_EXCL | O_NOFOLLOW`` (a planted link or
        file makes it fail instead of being written through), and rename()
        replaces a link planted at ``name`` instead of following it.
        """
        self.ensure()
        temporary = self.file(f".{name}.{os.urandom(6).hex()}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        descriptor = os.open(temporary, flags, 0o644)
        try:
            # readable by all whatever the umask (Pacemaker's executor runs agents
            # with 027): the alert agent runs as hacluster, and the files hold no
            # secret (device names, a config path, the role)
            os.fchmod(descriptor, 0o644)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temporary, self.file(name))
        except BaseException:
            _unlink(temporary)
            raise

    def remove(self, name: str) -> None:
        """Remove ``name`` (a link is removed, not followed) and temporaries of killed writes."""
        leftovers = []
        try:
            leftovers = [entry for entry in os.listdir(self.path)
                         if entry.startswith(f".{name}.")]
        except FileNotFoundError:
            return
        for entry in [name] + leftovers:
            _unlink(self.file(entry))

    def names(self, suffix: str) -> list[str]:
        try:
            return sorted(entry for entry in os.listdir(self.path)
                          if entry.startswith(_PREFIX) and entry.endswith(suffix))
        except FileNotFoundError:
            return []


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class RoleMarker:
    """``berofos-INSTANCE.role`` holding ``unpromoted`` or ``promoted``."""

    def __init__(self, directory: str, instance: str) -> None:
        self.run_dir = RunDirectory(directory)
        self.directory = directory
        self.name = f"{_PREFIX}{instance}.role"
        self.path = self.run_dir.file(self.name)

    def read(self) -> str | None:
        """The role, or None when the instance is not started here."""
        try:
            text = self.run_dir.read(self.name)
        except ForeignFile:
            return None  # planted by someone else: this instance never started here
        except OSError as err:
            if err.errno == errno.ELOOP:
                return None  # a link: the agent never writes one
            return UNPROMOTED  # there but unreadable: started, role unknown → the safe one
        except UnicodeDecodeError:
            return UNPROMOTED
        if text is None:
            return None
        role = text.strip()
        return role if role in _ROLES else UNPROMOTED

    def write(self, role: str) -> None:
        self.run_dir.write(self.name, role + "\n")

    def remove(self) -> None:
        self.run_dir.remove(self.name)


class InstanceState:
    """The agent's memory of one instance on this node (see the module docstring).

    ``unusable_since`` is a ``time.monotonic()`` reading (system-wide on Linux,
    and the file does not outlive a boot); ``failed_reads`` counts the actions
    in a row whose read of the devices failed; ``attributes`` holds the node
    attributes last written for people (name → value), so that they are
    written only when they change.  (A plain class, not a
    dataclass: every action imports this module, and dataclasses costs more to
    import than the rest of the agent's stop.)
    """

    FIELDS = {"node": "", "own_mode": None, "config": "", "devices": list, "score": None,
              "failed_reads": 0, "unusable_since": None, "problem": "",
              "split_guard": False, "promoted_with_peer": None, "yielded_to": None,
              "yielded_since": None, "attributes": dict}
    __slots__ = tuple(FIELDS)

    def __init__(self, **values) -> None:
        for name, default in self.FIELDS.items():
            value = values.pop(name, default)
            setattr(self, name, value() if value in (list, dict) else value)
        if values:
            raise TypeError(f"unknown fields {sorted(values)}")

    @classmethod
    def from_json(cls, text: str) -> InstanceState:
        import json

        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return cls(**{key: value for key, value in data.items() if key in cls.FIELDS})

    def to_json(self) -> str:
        import json

        return json.dumps({name: getattr(self, name) for name in self.FIELDS},
                          sort_keys=True) + "\n"

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"InstanceState({fields})"


class StateFile:
    """``berofos-INSTANCE.state``; a missing or unreadable file reads as a fresh state."""

    def __init__(self, directory: str, instance: str) -> None:
        self.run_dir = RunDirectory(directory)
        self.name = f"{_PREFIX}{instance}.state"
        self.path = self.run_dir.file(self.name)

    def read(self) -> InstanceState:
        try:
            text = self.run_dir.read(self.name)
            return InstanceState() if text is None else InstanceState.from_json(text)
        except (OSError, ValueError, TypeError):
            return InstanceState()

    def write(self, state: InstanceState) -> None:
        self.run_dir.write(self.name, state.to_json())

    def remove(self) -> None:
        self.run_dir.remove(self.name)


def promoted_instances(directory: str) -> list[tuple[str, InstanceState]]:
    """(instance, state) of every instance whose marker says promoted on this node."""
    run_dir = RunDirectory(directory)
    found = []
    for name in run_dir.names(".role"):
        instance = name[len(_PREFIX):-len(".role")]
        if RoleMarker(directory, instance).read() == PROMOTED:
            found.append((instance, StateFile(directory, instance).read()))
    return found
