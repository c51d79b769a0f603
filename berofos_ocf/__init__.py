"""berofos-ocf: beroNet berofos failover switches under Pacemaker/Corosync.

The package is layered, each layer importing only downward:

* protocol (pure, no I/O): :mod:`.keys`, :mod:`.configtxt`, :mod:`.gbl4`,
  :mod:`.bnfosconf`;
* client (the only place doing I/O with a device): :mod:`.client` (HTTP),
  :mod:`.udp` (GBL4 over UDP);
* :mod:`.agent` (the OCF resource agent) and :mod:`.cli` (the ``berofos`` command);
* :mod:`.emulator`, which depends on the protocol layer only.

Importing the package does nothing but define the version: the resource agent
starts a new interpreter for every action, so every import here is paid on
every monitor.
"""

__all__ = ["__version__"]

__version__ = "1.0.0"
