"""Meta-data, man pages, installation and resource-agents' ocf-tester."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from berofos_ocf.agent.bypass_table import BYPASS
from berofos_ocf.agent.metadata import metadata_xml
from berofos_ocf.agent.table import BEROFOS
from berofos_ocf.manpage import agent_manpage, cli_manpage

from .conftest import PYTHON, ROOT

GOLDEN = Path(__file__).resolve().parent / "golden" / "metadata.xml"
BYPASS_GOLDEN = GOLDEN.with_name("metadata-bypass.xml")
# each agent: its golden meta-data and its table
AGENTS = {"berofos": (GOLDEN, BEROFOS), "berofos-bypass": (BYPASS_GOLDEN, BYPASS)}
EACH_AGENT = pytest.mark.parametrize("agent", list(AGENTS))
RA_SCHEMAS = Path("/usr/share/resource-agents")
PCS_SCHEMA = Path("/usr/share/pcs/data/ocf-1.1.rng")


def agent_metadata(agent: str = "berofos") -> str:
    result = subprocess.run([str(ROOT / "agents" / agent), "meta-data"], check=True,
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.stderr == ""
    return result.stdout


@EACH_AGENT
def test_metadata_matches_the_golden_copy(agent):
    # Regenerate with: agents/berofos meta-data > tests/golden/metadata.xml
    # (agents/berofos-bypass meta-data > tests/golden/metadata-bypass.xml)
    assert agent_metadata(agent) == AGENTS[agent][0].read_text()


@EACH_AGENT
def test_metadata_is_generated_from_the_table(agent):
    assert agent_metadata(agent) == metadata_xml(AGENTS[agent][1])


def xmllint(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(["xmllint", "--noout", *args, "-"], input=stdin, text=True,
                          capture_output=True, cwd=RA_SCHEMAS)


@EACH_AGENT
def test_metadata_validates_against_ra_api_dtd(agent):
    result = xmllint("--valid", stdin=agent_metadata(agent))
    assert result.returncode == 0, result.stderr


def without_ocf_1_1(text: str) -> str:
    """The meta-data without what resource-agents 4.12's schema predates (OCF 1.1's
    reloadable parameters and reload-agent action)."""
    text = text.replace(' reloadable="1"', "")
    return "\n".join(line for line in text.splitlines() if "reload-agent" not in line)


@EACH_AGENT
def test_metadata_validates_against_metadata_rng(agent):
    metadata = agent_metadata(agent)
    assert ' reloadable="1"' in metadata and '<action name="reload-agent"' in metadata
    result = xmllint("--relaxng", str(RA_SCHEMAS / "metadata.rng"),
                     stdin=without_ocf_1_1(metadata))
    assert result.returncode == 0, result.stderr


@EACH_AGENT
def test_only_http_timeout_is_reloadable(agent):
    metadata = agent_metadata(agent)
    assert metadata.count('reloadable="1"') == 1
    assert '<parameter name="http_timeout" unique="0" required="0" reloadable="1">' in metadata


@pytest.mark.skipif(not PCS_SCHEMA.exists(), reason="pcs is not installed")
@EACH_AGENT
def test_metadata_validates_against_pcs_ocf_1_1_schema(agent):
    result = xmllint("--relaxng", str(PCS_SCHEMA), stdin=agent_metadata(agent))
    assert result.returncode == 0, result.stderr


@EACH_AGENT
def test_metadata_needs_neither_root_nor_network(installed_tree, agent):
    program = str(installed_tree.with_name(agent))
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "unshare", "--net", program, "meta-data"],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    if "unshare failed" in result.stderr:  # unprivileged user namespaces not allowed
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 program, "meta-data"], capture_output=True,
                                text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == AGENTS[agent][0].read_text()


@pytest.mark.parametrize("name, generate", [
    ("ocf_berofos_berofos.7", agent_manpage),
    ("ocf_berofos_berofos-bypass.7", lambda: agent_manpage(table=BYPASS)),
    ("berofos.1", cli_manpage),
])
def test_committed_man_pages_are_up_to_date(name, generate):
    # Regenerate with: make man
    assert (ROOT / "man" / name).read_text() == generate(), f"man/{name} is stale: run make man"


@pytest.mark.parametrize("name", ["ocf_berofos_berofos.7", "ocf_berofos_berofos-bypass.7",
                                  "berofos.1"])
def test_man_pages_render_without_warnings(name):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed")
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(ROOT / "man" / name)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""


def test_install_and_uninstall_with_destdir(tmp_path):
    root = tmp_path / "root"
    make = ["make", "-s", f"DESTDIR={root}", f"PYTHON={PYTHON}", "PROVIDER=example"]
    subprocess.run(make + ["install"], cwd=ROOT, check=True, capture_output=True)
    agent = root / "usr/lib/ocf/resource.d/example/berofos"
    assert os.access(agent, os.X_OK)
    assert agent.read_text().startswith("#!/usr/bin/python3\n")
    assert 'PACKAGE_DIR = "/usr/lib/python3/dist-packages"' in agent.read_text()
    assert (root / "usr/lib/python3/dist-packages/berofos_ocf/agent/actions.py").exists()
    page = (root / "usr/share/man/man7/ocf_example_berofos.7").read_text()
    assert "ocf:example:berofos" in page and page.startswith(".TH OCF_EXAMPLE_BEROFOS 7")
    bypass = root / "usr/lib/ocf/resource.d/example/berofos-bypass"
    assert os.access(bypass, os.X_OK)
    assert 'PACKAGE_DIR = "/usr/lib/python3/dist-packages"' in bypass.read_text()
    page = (root / "usr/share/man/man7/ocf_example_berofos-bypass.7").read_text()
    assert "ocf:example:berofos\\-bypass" in page
    assert page.startswith(".TH OCF_EXAMPLE_BEROFOS-BYPASS 7")
    assert os.access(root / "usr/bin/berofos", os.X_OK)
    assert (root / "usr/share/man/man1/berofos.1").exists()
    subprocess.run(make + ["uninstall"], cwd=ROOT, check=True, capture_output=True)
    left = [p for p in root.rglob("*") if p.is_file()]
    assert left == []


def test_installed_agent_and_command_run(installed_tree, tmp_path):
    meta = subprocess.run([str(installed_tree), "meta-data"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert meta.returncode == 0 and meta.stdout == GOLDEN.read_text()
    command = installed_tree.parents[3] / "bin" / "berofos"
    result = subprocess.run([str(command), "keys"], capture_output=True, text=True)
    assert result.returncode == 0 and "wdogitime" in result.stdout


@pytest.mark.skipif(not shutil.which("ocf-tester"), reason="resource-agents is not installed")
def test_ocf_tester_passes(installed_tree, emulator_process, tmp_path):
    emulator = emulator_process(devices=2)
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    node = os.uname().nodename
    env = dict(os.environ, HA_RSCTMP=str(tmp_path), OCF_ROOT="/usr/lib/ocf")
    result = subprocess.run(["ocf-tester", "-n", "isdn", "-o", f"config={conf}",
                             "-o", f"port_b={node}", "-o", "port_d=the-other-node",
                             str(installed_tree)], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed all tests" in result.stdout
    assert not (tmp_path / "berofos-isdn.role").exists()  # ended stopped


@pytest.mark.skipif(not shutil.which("ocf-tester"), reason="resource-agents is not installed")
def test_ocf_tester_passes_for_the_bypass_agent(installed_tree, emulator_process, tmp_path):
    emulator = emulator_process(devices=2)
    conf = emulator.write_conf(tmp_path / "bnfos.conf")
    env = dict(os.environ, HA_RSCTMP=str(tmp_path), OCF_ROOT="/usr/lib/ocf")
    result = subprocess.run(["ocf-tester", "-n", "isdn-bypass", "-o", f"config={conf}",
                             "-o", f"udp_port={emulator.udp_port}",
                             str(installed_tree.with_name("berofos-bypass"))],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed all tests" in result.stdout
    assert not (tmp_path / "berofos-bypass-isdn-bypass.kicker").exists()  # ended stopped
    devices = emulator.control.devices()
    assert [(d["relay_mode"], d["watchdog_state"]) for d in devices] == [(0, 0), (0, 0)]
