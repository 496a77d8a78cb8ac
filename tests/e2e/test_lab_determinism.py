"""`vmm lab` is deterministic: the same lab run twice gives the same serial bytes, the same
pcap files (switch ports and NICs, virtual timestamps) and the same instruction counts.

Two Debian guests on one switch (a pings b, then leaves through the exit port), run twice
through the `vmm lab` command. Four Linux boots: marked slow (CI runs it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_switch_linux import linux_disk

pytestmark = pytest.mark.slow

LAB = """
name = "a pings b"
run = "200s"
[[switch]]
name = "sw0"
[[vm]]
name = "a"
image = "a.img"
mem = "128M"
nic = [{ switch = "sw0", vlan = 5, pcap = true }]
[[vm]]
name = "b"
image = "b.img"
mem = "128M"
nic = [{ switch = "sw0", vlan = 5 }]
[[step]]
vm = "a"
expect = "net-check: ping 192.168.5.2 ok"
within = "150s"
[[step]]
vm = "a"
exit = 1
within = "10s"
"""


def run_lab(work: Path, out: Path) -> tuple[int, str, dict[str, bytes]]:
    run = subprocess.run([sys.executable, "-m", "vmm", "lab", str(work / "lab.toml"), "--out", str(out)],
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    return run.returncode, run.stderr, {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_a_lab_run_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    linux_disk(tmp_path, "a", "net.ip=192.168.5.1/24 net.ping=192.168.5.2")
    linux_disk(tmp_path, "b", "net.ip=192.168.5.2/24 net.stay")
    (tmp_path / "lab.toml").write_text(LAB)
    first = run_lab(tmp_path, tmp_path / "first")
    second = run_lab(tmp_path, tmp_path / "second")
    assert first[0] == 0, first[1]
    assert "net-check: ping 192.168.5.2 ok (3 replies)" in first[2]["a.serial"].decode("latin-1")
    assert sorted(first[2]) == ["a-ethernet0.pcap", "a.serial", "b.serial", "sw0-port1-a.pcap", "sw0-port2-b.pcap"]
    for name, data in first[2].items():
        assert second[2][name] == data, f"{name} differs between the two runs"
    counts = [[line for line in run[1].splitlines() if line.startswith("vmm lab: vm ")] for run in (first, second)]
    assert counts[0] == counts[1] and "instructions" in counts[0][0]
