# berofos-ocf: make check (the test suite), make demo (the agent on the emulator),
# make bench, make install / uninstall, make man.
PYTHON ?= /usr/bin/python3

CHECK_PACKAGES = python3-requests python3-pytest python3-hypothesis curl iproute2 util-linux

.PHONY: check deps-check
deps-check:
	tools/ensure-packages $(CHECK_PACKAGES)

check: deps-check
	$(PYTHON) -m pytest
