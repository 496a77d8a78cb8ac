"""`vmm lab` with the toy OS (its virtio-net driver, ping and kernel ARP/ICMP answers): three
guests on one switch, a and b in VLAN 10, c in VLAN 20. a pings b (answers) and c (no ARP
reply: VLANs do not leak). The lab runs twice through the `vmm lab` command and gives the
same serial bytes, the same pcap files and the same instruction counts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_file, require_tool
from tests.e2e.test_toyos_vmm import TOYOS_IMG

LAB = """
name = "toy OS: VLANs 10 and 20"
run = "60s"
[[switch]]
name = "sw0"
[[vm]]
name = "a"
image = "a.img"
nic = [{ switch = "sw0", vlan = 10, mac = "52:54:00:00:00:01", pcap = true }]
[[vm]]
name = "b"
image = "b.img"
nic = [{ switch = "sw0", vlan = 10, mac = "52:54:00:00:00:02" }]
[[vm]]
name = "c"
image = "c.img"
nic = [{ switch = "sw0", vlan = 20, mac = "52:54:00:00:00:03" }]
[[step]]
vm = "a"
expect = 'toyos\\$ '
within = "20s"
[[step]]
vm = "a"
send = "ping 10.0.0.2 2\\r"
[[step]]
vm = "a"
expect = "2 packets transmitted, 2 received"
within = "10s"
[[step]]
vm = "a"
send = "ping 10.0.0.3 1\\r"
[[step]]
vm = "a"
expect = "no ARP reply"
within = "10s"
"""


def run_lab(work: Path, out: str) -> tuple[subprocess.CompletedProcess, dict[str, bytes]]:
    run = subprocess.run([sys.executable, "-m", "vmm", "lab", str(work / "lab.toml"), "--out", str(work / out)],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    return run, {p.name: p.read_bytes() for p in sorted((work / out).iterdir())}


def test_toy_os_lab_pings_within_a_vlan_and_is_identical_twice(tmp_path: Path) -> None:
    for name in "abc":  # each VM its own copy of the disk
        shutil.copyfile(require_file(TOYOS_IMG, "run make -C guests"), tmp_path / f"{name}.img")
    (tmp_path / "lab.toml").write_text(LAB)
    first, files = run_lab(tmp_path, "first")
    second, again = run_lab(tmp_path, "second")
    assert first.returncode == 0, first.stderr
    a = files["a.serial"].decode("latin-1")
    assert "64 bytes from 10.0.0.2: icmp_seq=2 ttl=64" in a
    assert "ping: 10.0.0.3: no ARP reply (host unreachable)" in a
    assert sorted(files) == ["a-ethernet0.pcap", "a.serial", "b.serial", "c.serial",
                             "sw0-port1-a.pcap", "sw0-port2-b.pcap", "sw0-port3-c.pcap"]  # fmt: skip
    assert files == again
    vm_lines = [[x for x in run.stderr.splitlines() if x.startswith("vmm lab: vm ")] for run in (first, second)]
    assert vm_lines[0] == vm_lines[1] and len(vm_lines[0]) == 3
    # tshark reads the capture of a's switch port: the ARP and the echo exchange, untagged.
    fields = subprocess.run([require_tool("tshark"), "-r", str(tmp_path / "first" / "sw0-port1-a.pcap"), "-T",
                             "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "icmp.type", "-Y", "icmp"],
                            capture_output=True, text=True, timeout=120).stdout.splitlines()  # fmt: skip
    assert fields.count("10.0.0.1\t10.0.0.2\t8") == 2 and fields.count("10.0.0.2\t10.0.0.1\t0") == 2
    assert files["sw0-port3-c.pcap"] == files["sw0-port3-c.pcap"][:24]  # c heard nothing: VLAN 20


TWO = """
name = "toy OS: a pings b"
run = "60s"
[[switch]]
name = "sw0"
[[vm]]
name = "a"
image = "a.img"
nic = [{ switch = "sw0", mac = "52:54:00:00:00:01" }]
[[vm]]
name = "b"
image = "b.img"
nic = [{ switch = "sw0", mac = "52:54:00:00:00:02" }]
[[step]]
vm = "a"
expect = 'toyos\\$ '
within = "20s"
[[step]]
vm = "a"
send = "ping 10.0.0.2 2\\r"
[[step]]
vm = "a"
expect = "2 packets transmitted, 2 received"
within = "10s"
"""


def test_the_same_lab_file_runs_under_vmm_test(tmp_path: Path) -> None:
    """A lab file named *.vmm.toml is one test of `vmm test`: its steps are the expectations,
    and a step that does not happen fails it, naming the VM and the step."""
    for name in "ab":
        shutil.copyfile(require_file(TOYOS_IMG, "run make -C guests"), tmp_path / f"{name}.img")
    (tmp_path / "pings.vmm.toml").write_text(TWO)
    (tmp_path / "fails.vmm.toml").write_text(TWO.replace("2 packets transmitted, 2 received", "3 received"))
    run = subprocess.run([sys.executable, "-m", "vmm", "test", str(tmp_path / "pings.vmm.toml"),
                          str(tmp_path / "fails.vmm.toml"), "--out", str(tmp_path / "out"),
                          "--junit", str(tmp_path / "junit.xml")],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed, 1 failed" in run.stdout, run.stdout
    junit = (tmp_path / "junit.xml").read_text()
    assert junit.count("<testcase") == 2 and junit.count("<failure") == 1
    assert "3 received" in junit
