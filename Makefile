# berofos-ocf
#   make check     install what the tests need (Debian packages) and run them all
#   make demo      a live 2-node cluster on the emulator, its promoted node killed
#   make demo-agent  the agent's actions by hand, without a cluster
#   make demo-bypass one Wazo in front of a PBX: its only node killed, the berofos
#                  watchdog hands the lines to the PBX
#   make bench     timings of the agent's actions and of a failover
#   make install   the agent, the package, the berofos command, the man pages, the
#                  bash completion and the alert agent (DESTDIR, PREFIX, OCF_ROOT,
#                  PROVIDER; resources ocf:PROVIDER:berofos and
#                  ocf:PROVIDER:berofos-bypass)
#   make deb       berofos-ocf_VERSION_all.deb here, built by debhelper from a copy
#   make man       regenerate man/ from the agent's table and the CLI
PYTHON ?= /usr/bin/python3
PREFIX ?= /usr
OCF_ROOT ?= /usr/lib/ocf
PROVIDER ?= berofos
PYTHONDIR ?= $(PREFIX)/lib/python3/dist-packages
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
# Beside the man pages ($(PREFIX)/share/bash-completion/completions by default), so
# that an installation whose MANDIR is moved elsewhere (the test suite's private
# ones) keeps its completion there too, out of the system's.
COMPLETIONDIR ?= $(dir $(MANDIR))bash-completion/completions
# The alert agent, at the path a Pacemaker alert names: beside BINDIR
# ($(PREFIX)/libexec/berofos-ocf by default), so that an installation whose BINDIR
# is moved elsewhere (the test suite's private ones) keeps it there too.
ALERTDIR ?= $(dir $(BINDIR))libexec/berofos-ocf
# no: leave byte-compiling to the package manager (dh_python3's py3compile)
BYTECOMPILE ?= yes
DESTDIR ?=
DEBDIR ?= .

AGENT_DIR = $(OCF_ROOT)/resource.d/$(PROVIDER)
AGENT_MAN = ocf_$(PROVIDER)_berofos.7
BYPASS_MAN = ocf_$(PROVIDER)_berofos-bypass.7
RUNTIME_PACKAGES = python3 python3-requests resource-agents
# what debian/control's Build-Depends name, as Debian packages
DEB_PACKAGES = debhelper dh-python dpkg-dev python3 python3-requests
# a live cluster: pcs writes its configuration; qdevice/qnetd give two nodes a third vote
CLUSTER_PACKAGES = pacemaker pacemaker-cli-utils corosync iproute2 util-linux procps pcs \
	corosync-qdevice corosync-qnetd libnss3-tools
CHECK_PACKAGES = $(RUNTIME_PACKAGES) $(CLUSTER_PACKAGES) $(DEB_PACKAGES) python3-pytest \
	python3-hypothesis libxml2-utils crmsh curl groff-base make lintian
DEMO_PACKAGES = $(RUNTIME_PACKAGES) $(CLUSTER_PACKAGES)

# The version has one source, berofos_ocf.__version__ (the meta-data, berofos --version
# and debian/changelog all show it).
VERSION = $(shell $(PYTHON) -c 'import berofos_ocf; print(berofos_ocf.__version__)')
DEB = berofos-ocf_$(VERSION)_all.deb
# what the package is built from, copied so that the tree itself is never written
DEB_SOURCES = Makefile COPYING README.md agents alerts berofos_ocf debian examples man

.PHONY: check demo demo-agent demo-bypass bench install uninstall man deb deps-check deps-demo deps-deb

deps-check:
	@tests/ensure-packages $(CHECK_PACKAGES)

deps-demo:
	@tests/ensure-packages $(DEMO_PACKAGES)

deps-deb:
	@tests/ensure-packages $(DEB_PACKAGES)

check: deps-check
	$(PYTHON) -m pytest

demo: deps-demo
	$(PYTHON) -m tests.demo

demo-agent: deps-demo
	$(PYTHON) -m tests.demo_agent

demo-bypass: deps-demo
	$(PYTHON) -m tests.demo_bypass

bench: deps-check
	$(PYTHON) -m tests.bench

man:
	$(PYTHON) -m berofos_ocf.manpage agent > man/ocf_berofos_berofos.7
	$(PYTHON) -m berofos_ocf.manpage agent --agent berofos-bypass \
		> man/ocf_berofos_berofos-bypass.7
	$(PYTHON) -m berofos_ocf.manpage cli > man/berofos.1

install:
	for f in $$(find berofos_ocf -name '*.py'); do \
		install -D -m 0644 $$f $(DESTDIR)$(PYTHONDIR)/$$f || exit 1; done
	[ "$(BYTECOMPILE)" = no ] || \
		$(PYTHON) -m compileall -q -d $(PYTHONDIR) $(DESTDIR)$(PYTHONDIR)/berofos_ocf
	install -d $(DESTDIR)$(AGENT_DIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(COMPLETIONDIR)
	for agent in berofos berofos-bypass; do \
		sed 's|^PACKAGE_DIR = .*|PACKAGE_DIR = "$(PYTHONDIR)"|' agents/$$agent \
			> $(DESTDIR)$(AGENT_DIR)/$$agent && \
		chmod 0755 $(DESTDIR)$(AGENT_DIR)/$$agent || exit 1; done
	printf '%s\n' '#!/usr/bin/python3' \
		'"""berofos(1): set up, inspect and switch beroNet berofos devices."""' \
		'import sys' 'if "$(PYTHONDIR)" not in sys.path:' \
		'    sys.path.insert(0, "$(PYTHONDIR)")' 'from berofos_ocf.cli import main' \
		'sys.exit(main())' > $(DESTDIR)$(BINDIR)/berofos
	chmod 0755 $(DESTDIR)$(BINDIR)/berofos
	$(PYTHON) -m berofos_ocf.manpage agent --provider $(PROVIDER) \
		> $(DESTDIR)$(MANDIR)/man7/$(AGENT_MAN)
	$(PYTHON) -m berofos_ocf.manpage agent --agent berofos-bypass --provider $(PROVIDER) \
		> $(DESTDIR)$(MANDIR)/man7/$(BYPASS_MAN)
	install -m 0644 man/berofos.1 $(DESTDIR)$(MANDIR)/man1/berofos.1
	$(PYTHON) -m berofos_ocf.completion > $(DESTDIR)$(COMPLETIONDIR)/berofos
	install -d $(DESTDIR)$(ALERTDIR)
	sed 's|^PACKAGE_DIR = .*|PACKAGE_DIR = "$(PYTHONDIR)"|' alerts/berofos-alert \
		> $(DESTDIR)$(ALERTDIR)/berofos-alert
	chmod 0755 $(DESTDIR)$(ALERTDIR)/berofos-alert

uninstall:
	rm -rf $(DESTDIR)$(PYTHONDIR)/berofos_ocf
	rm -f $(DESTDIR)$(AGENT_DIR)/berofos $(DESTDIR)$(AGENT_DIR)/berofos-bypass \
		$(DESTDIR)$(BINDIR)/berofos $(DESTDIR)$(MANDIR)/man7/$(AGENT_MAN) \
		$(DESTDIR)$(MANDIR)/man7/$(BYPASS_MAN) $(DESTDIR)$(MANDIR)/man1/berofos.1 \
		$(DESTDIR)$(COMPLETIONDIR)/berofos $(DESTDIR)$(ALERTDIR)/berofos-alert
	-rmdir $(DESTDIR)$(AGENT_DIR) $(DESTDIR)$(ALERTDIR) 2>/dev/null

# dpkg-buildpackage in a temporary copy: debian/changelog is written there, with the
# version of berofos_ocf and the date of the last commit (or SOURCE_DATE_EPOCH), so
# that the same tree builds the same package.
deb: deps-deb
	set -e; work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	tar -c --exclude=__pycache__ $(DEB_SOURCES) | tar -x -C "$$work" --one-top-level=src; \
	epoch=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)}; \
	sed -e 's/@VERSION@/$(VERSION)/' -e "s/@DATE@/$$(date -R -u -d @$$epoch)/" \
		-e "s/@MAINTAINER@/$$(sed -n 's/^Maintainer: //p' debian/control)/" \
		debian/changelog.in > "$$work/src/debian/changelog"; \
	(cd "$$work/src" && dpkg-buildpackage -b --no-sign); \
	cp "$$work/$(DEB)" $(DEBDIR)/
	@echo "built $(DEBDIR)/$(DEB)"
