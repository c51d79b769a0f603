# berofos-ocf
#   make check     install what the tests need (Debian packages) and run them all
#   make demo      a live 2-node cluster on the emulator, its promoted node killed
#   make demo-agent  the agent's actions by hand, without a cluster
#   make bench     timings of the agent's actions and of a failover
#   make install   the agent, the package, the berofos command and the man pages
#                  (DESTDIR, PREFIX, OCF_ROOT, PROVIDER; resource ocf:PROVIDER:berofos)
#   make man       regenerate man/ from the agent's table and the CLI
PYTHON ?= /usr/bin/python3
PREFIX ?= /usr
OCF_ROOT ?= /usr/lib/ocf
PROVIDER ?= berofos
PYTHONDIR ?= $(PREFIX)/lib/python3/dist-packages
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=

AGENT_DIR = $(OCF_ROOT)/resource.d/$(PROVIDER)
AGENT_MAN = ocf_$(PROVIDER)_berofos.7
RUNTIME_PACKAGES = python3 python3-requests resource-agents
# a live cluster: pcs writes its configuration; qdevice/qnetd give two nodes a third vote
CLUSTER_PACKAGES = pacemaker pacemaker-cli-utils corosync iproute2 util-linux procps pcs \
	corosync-qdevice corosync-qnetd libnss3-tools
CHECK_PACKAGES = $(RUNTIME_PACKAGES) $(CLUSTER_PACKAGES) python3-pytest python3-hypothesis \
	libxml2-utils crmsh curl groff-base make
DEMO_PACKAGES = $(RUNTIME_PACKAGES) $(CLUSTER_PACKAGES)

.PHONY: check demo demo-agent bench install uninstall man deps-check deps-demo

deps-check:
	@tests/ensure-packages $(CHECK_PACKAGES)

deps-demo:
	@tests/ensure-packages $(DEMO_PACKAGES)

check: deps-check
	$(PYTHON) -m pytest

demo: deps-demo
	$(PYTHON) -m tests.demo

demo-agent: deps-demo
	$(PYTHON) -m tests.demo_agent

bench: deps-check
	$(PYTHON) -m tests.bench

man:
	$(PYTHON) -m berofos_ocf.manpage agent > man/ocf_berofos_berofos.7
	$(PYTHON) -m berofos_ocf.manpage cli > man/berofos.1

install:
	install -d $(DESTDIR)$(PYTHONDIR)/berofos_ocf/agent $(DESTDIR)$(PYTHONDIR)/berofos_ocf/emulator
	for f in $$(find berofos_ocf -name '*.py'); do \
		install -m 0644 $$f $(DESTDIR)$(PYTHONDIR)/$$f || exit 1; done
	$(PYTHON) -m compileall -q -d $(PYTHONDIR) $(DESTDIR)$(PYTHONDIR)/berofos_ocf
	install -d $(DESTDIR)$(AGENT_DIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man7
	sed 's|^PACKAGE_DIR = .*|PACKAGE_DIR = "$(PYTHONDIR)"|' agents/berofos \
		> $(DESTDIR)$(AGENT_DIR)/berofos
	chmod 0755 $(DESTDIR)$(AGENT_DIR)/berofos
	printf '%s\n' '#!/usr/bin/python3' \
		'"""berofos(1): set up, inspect and switch beroNet berofos devices."""' \
		'import sys' 'if "$(PYTHONDIR)" not in sys.path:' \
		'    sys.path.insert(0, "$(PYTHONDIR)")' 'from berofos_ocf.cli import main' \
		'sys.exit(main())' > $(DESTDIR)$(BINDIR)/berofos
	chmod 0755 $(DESTDIR)$(BINDIR)/berofos
	$(PYTHON) -m berofos_ocf.manpage agent --provider $(PROVIDER) \
		> $(DESTDIR)$(MANDIR)/man7/$(AGENT_MAN)
	install -m 0644 man/berofos.1 $(DESTDIR)$(MANDIR)/man1/berofos.1

uninstall:
	rm -rf $(DESTDIR)$(PYTHONDIR)/berofos_ocf
	rm -f $(DESTDIR)$(AGENT_DIR)/berofos $(DESTDIR)$(BINDIR)/berofos \
		$(DESTDIR)$(MANDIR)/man7/$(AGENT_MAN) $(DESTDIR)$(MANDIR)/man1/berofos.1
	-rmdir $(DESTDIR)$(AGENT_DIR) 2>/dev/null
