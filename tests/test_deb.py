"""The Debian package: ``make deb``, its contents, lintian, ``dpkg -i`` and ``dpkg --purge``.

The package is built once per session, into a temporary directory.  Its file
list, dependencies, version and the agent's meta-data are checked on an
unpacked copy (``dpkg-deb -x``), without root.  Installing and purging need
root and a machine where nothing of the package is installed yet: otherwise
those tests are skipped, saying why, rather than replace or remove what an
administrator installed.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from berofos_ocf import __version__

from .conftest import PYTHON, ROOT

PACKAGE = "berofos-ocf"
PRIVATE_DIR = "/usr/share/berofos-ocf"
AGENT = "/usr/lib/ocf/resource.d/berofos/berofos"
BYPASS_AGENT = "/usr/lib/ocf/resource.d/berofos/berofos-bypass"
ALERT = "/usr/libexec/berofos-ocf/berofos-alert"
GOLDEN = Path(__file__).resolve().parent / "golden" / "metadata.xml"
BYPASS_GOLDEN = GOLDEN.with_name("metadata-bypass.xml")
RUNTIME_DEPENDS = {"python3", "python3-requests", "resource-agents", "pacemaker-cli-utils"}
# Every file besides the Python modules, with its mode.
FILES = {
    "usr/bin/berofos": 0o755,
    AGENT.lstrip("/"): 0o755,
    BYPASS_AGENT.lstrip("/"): 0o755,
    ALERT.lstrip("/"): 0o755,
    "usr/share/bash-completion/completions/berofos": 0o644,
    "usr/share/doc/berofos-ocf/README.md.gz": 0o644,
    "usr/share/doc/berofos-ocf/changelog.gz": 0o644,
    "usr/share/doc/berofos-ocf/copyright": 0o644,
    "usr/share/doc/berofos-ocf/examples/bnfos.conf": 0o644,
    "usr/share/lintian/overrides/berofos-ocf": 0o644,
    "usr/share/man/man1/berofos.1.gz": 0o644,
    "usr/share/man/man7/ocf_berofos_berofos.7.gz": 0o644,
    "usr/share/man/man7/ocf_berofos_berofos-bypass.7.gz": 0o644,
    # dh_python3: recompiles the private modules when the default python3 changes
    "usr/share/python3/runtime.d/berofos-ocf.rtupdate": 0o755,
}
# Directories of the package alone: dpkg --purge must remove them.
OWN_DIRS = [PRIVATE_DIR, os.path.dirname(AGENT), os.path.dirname(ALERT),
            "/usr/share/doc/berofos-ocf"]


@pytest.fixture(scope="session")
def deb(tmp_path_factory) -> Path:
    """``make deb``, once per session; the path of the .deb."""
    if not shutil.which("dh") or not shutil.which("dpkg-buildpackage"):
        pytest.skip("debhelper and dpkg-dev are not installed (make check installs them)")
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(["make", "-s", "deb", f"DEBDIR={out}", f"PYTHON={PYTHON}"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / f"{PACKAGE}_{__version__}_all.deb"


@pytest.fixture(scope="session")
def unpacked(deb, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unpacked")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def control_field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], check=True, capture_output=True,
                          text=True).stdout.strip()


def package_members(deb: Path) -> dict[str, tarfile.TarInfo]:
    """The regular files of the package, by path without the leading ./."""
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True,
                         capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return {m.name.removeprefix("./"): m for m in archive.getmembers() if not m.isdir()}


def expected_files() -> dict[str, int]:
    """The package's files: the Python modules of the tree under the private directory."""
    modules = {f"{PRIVATE_DIR.lstrip('/')}/{path.relative_to(ROOT)}": 0o644
               for path in (ROOT / "berofos_ocf").rglob("*.py")}
    return {**FILES, **modules}


def run_unpacked(unpacked: Path, program: str, *args: str) -> str:
    """Run a program of the unpacked package on its own modules.

    The agent and ``berofos`` put /usr/share/berofos-ocf first on sys.path
    unless it is already there: listing it after the unpacked copy keeps the
    copy first, even on a machine where the package is installed.
    """
    env = {"PATH": "/usr/bin:/bin",
           "PYTHONPATH": f"{unpacked}{PRIVATE_DIR}:{PRIVATE_DIR}"}
    result = subprocess.run([f"{unpacked}{program}", *args], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def test_make_deb_names_the_package_after_the_version(deb):
    assert deb.exists()
    assert control_field(deb, "Package") == PACKAGE
    assert control_field(deb, "Architecture") == "all"


def test_make_deb_leaves_the_tree_as_it_was(deb):
    # what debhelper and dpkg-buildpackage write when they run in the tree itself
    debris = ["debian/changelog", "debian/files", "debian/berofos-ocf", "debian/.debhelper",
              "debian/debhelper-build-stamp", "debian/berofos-ocf.substvars"]
    assert [name for name in debris if (ROOT / name).exists()] == []
    assert list(ROOT.parent.glob(f"{PACKAGE}_*")) == []


def test_package_holds_exactly_the_expected_files(deb):
    members = package_members(deb)
    assert {name: m.mode for name, m in members.items()} == expected_files()
    assert {(m.uname, m.gname) for m in members.values()} == {("root", "root")}


def test_depends_is_exactly_what_runs_it(deb):
    # dh_python3 writes python3 as python3:any (any architecture's interpreter).
    depends = {d.strip().removesuffix(":any") for d in control_field(deb, "Depends").split(",")}
    assert depends == RUNTIME_DEPENDS


def test_agent_points_at_the_private_module_directory(unpacked):
    for program in (AGENT, BYPASS_AGENT, ALERT):
        text = (unpacked / program.lstrip("/")).read_text()
        assert f'PACKAGE_DIR = "{PRIVATE_DIR}"' in text.splitlines()
    assert f'sys.path.insert(0, "{PRIVATE_DIR}")' in (unpacked / "usr/bin/berofos").read_text()


def test_unpacked_agent_gives_its_meta_data(unpacked):
    assert run_unpacked(unpacked, AGENT, "meta-data") == GOLDEN.read_text()


def test_unpacked_bypass_agent_gives_its_meta_data(unpacked):
    assert run_unpacked(unpacked, BYPASS_AGENT, "meta-data") == BYPASS_GOLDEN.read_text()


def test_unpacked_alert_agent_loads_its_modules(unpacked):
    # a node event: ignored, silently, by an agent that found berofos_ocf.alert
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{unpacked}{PRIVATE_DIR}:{PRIVATE_DIR}",
           "CRM_alert_version": "2.1.5", "CRM_alert_kind": "node", "CRM_alert_node": "node1",
           "CRM_alert_desc": "lost"}
    result = subprocess.run([f"{unpacked}{ALERT}"], env=env, capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_one_version_everywhere(deb, unpacked):
    metadata = ET.fromstring(run_unpacked(unpacked, AGENT, "meta-data"))
    changelog = gzip.decompress((unpacked / "usr/share/doc/berofos-ocf/changelog.gz")
                                .read_bytes()).decode()
    assert run_unpacked(unpacked, "/usr/bin/berofos", "--version") == f"berofos {__version__}\n"
    assert metadata.get("version") == __version__
    assert control_field(deb, "Version") == __version__
    assert changelog.startswith(f"{PACKAGE} ({__version__}) ")


def test_example_configuration_parses_and_holds_no_password(unpacked):
    from berofos_ocf.bnfosconf import parse_bnfos_conf

    text = (unpacked / "usr/share/doc/berofos-ocf/examples/bnfos.conf").read_text()
    conf = parse_bnfos_conf(text, "bnfos.conf")
    assert [device.name for device in conf.devices] == ["fos1"]
    assert not any(device.has_login for device in conf.devices)


@pytest.mark.skipif(not shutil.which("lintian"), reason="lintian is not installed")
def test_lintian_finds_no_error_nor_warning(deb):
    result = subprocess.run(["lintian", str(deb)], capture_output=True, text=True)
    problems = [line for line in result.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert problems == [] and result.returncode == 0, result.stdout + result.stderr


def test_every_lintian_override_gives_its_reason():
    lines = (ROOT / "debian" / f"{PACKAGE}.lintian-overrides").read_text().splitlines()
    for before, line in zip([""] + lines, lines):
        if line and not line.startswith("#"):
            assert before.startswith("#"), f"override without a reason above it: {line}"


# -- on this machine, as root ---------------------------------------------------------------

def dpkg_status(package: str = PACKAGE) -> str:
    result = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", package],
                            capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else "not-installed"


def why_not_install(deb: Path) -> str | None:
    """Why installing the package here would be wrong, or None."""
    if os.geteuid() != 0:
        return "dpkg -i needs root"
    if dpkg_status() != "not-installed":
        return f"{PACKAGE} is installed on this machine: purging it would remove it"
    present = [f"/{name}" for name in package_members(deb) if os.path.lexists(f"/{name}")]
    if present:
        return f"{present[0]} exists (make install?): dpkg -i would replace it, --purge remove it"
    missing = [d for d in sorted(RUNTIME_DEPENDS) if dpkg_status(d) != "installed"]
    if missing:
        return f"dependencies not installed: {' '.join(missing)} (make check installs them)"
    return None


def alternatives() -> str:
    return subprocess.run(["update-alternatives", "--get-selections"], capture_output=True,
                          text=True).stdout


@pytest.fixture
def installed(deb):
    """``dpkg -i`` of the package; purged afterwards whatever the test did."""
    reason = why_not_install(deb)
    if reason:
        pytest.skip(reason)
    before = alternatives()
    subprocess.run(["dpkg", "-i", str(deb)], check=True, capture_output=True)
    try:
        yield before
    finally:
        if dpkg_status() != "not-installed":
            subprocess.run(["dpkg", "--purge", PACKAGE], capture_output=True)


def test_installed_package_runs(installed):
    assert dpkg_status() == "installed"
    meta = subprocess.run([AGENT, "meta-data"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert meta.returncode == 0 and meta.stdout == GOLDEN.read_text(), meta.stderr
    bypass = subprocess.run([BYPASS_AGENT, "meta-data"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"})
    assert bypass.returncode == 0 and bypass.stdout == BYPASS_GOLDEN.read_text(), bypass.stderr
    version = subprocess.run(["/usr/bin/berofos", "--version"], capture_output=True, text=True)
    assert version.stdout == f"berofos {__version__}\n"
    # compiled at install time by dh_python3's postinst, not shipped
    assert list(Path(PRIVATE_DIR, "berofos_ocf", "cli", "__pycache__").glob("__init__.*.pyc"))


def test_purge_leaves_nothing_behind(installed):
    listed = subprocess.run(["dpkg", "-L", PACKAGE], check=True, capture_output=True,
                            text=True).stdout.split()
    conffiles = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE], check=True,
                               capture_output=True, text=True).stdout.split()[::2]
    files = [path for path in listed if not os.path.isdir(path)]
    assert AGENT in files and "/usr/bin/berofos" in files
    subprocess.run(["dpkg", "--purge", PACKAGE], check=True, capture_output=True)
    assert dpkg_status() == "not-installed"
    assert [path for path in files + conffiles if os.path.lexists(path)] == []
    assert [path for path in OWN_DIRS if os.path.lexists(path)] == []
    assert list(Path("/var/lib/dpkg/info").glob(f"{PACKAGE}.*")) == []
    assert alternatives() == installed
