"""LAB.toml is checked when it is read: one line naming the file, the VM or step, and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmm.errors import ConfigError
from vmm.lab.spec import load_lab

GOOD = """
slice = "2ms"
run = "5s"
[[switch]]
name = "sw0"
[[vm]]
name = "a"
image = "disk.img"
nic = [{ switch = "sw0", vlan = 10, pcap = true }, { switch = "sw0", trunk = [10, 20], native = 1 }]
[[step]]
vm = "a"
expect = "hello"
within = "1s"
"""


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    (tmp_path / "disk.img").write_bytes(bytes(512))
    return tmp_path


def write(lab_dir: Path, text: str) -> Path:
    path = lab_dir / "lab.toml"
    path.write_text(text)
    return path


def test_a_good_lab_reads(lab_dir: Path) -> None:
    spec = load_lab(write(lab_dir, GOOD))
    assert spec.slice_ns == 2_000_000 and spec.run_ns == 5 * 10**9
    vm = spec.vms[0]
    assert vm.config.machine == "pc" and [n.slot for n in vm.config.nics] == ["ethernet0", "ethernet1"]
    assert [n.mode.describe() for n in vm.nics] == ["access vlan 10", "trunk 10,20 native 1"]
    assert spec.steps[0].kind == "expect" and spec.steps[0].within.time_ns == 10**9


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('switch = "sw0", vlan = 10', 'switch = "sw9", vlan = 10'), "nic #1: switch 'sw9' is not one of"),
        (("vlan = 10", "vlan = 4095"), "nic #1: vlan=4095: a VLAN ID is 1..4094"),
        (("trunk = [10, 20]", "trunk = [10, 20], vlan = 3"), "nic #2: vlan and trunk exclude each other"),
        (('slice = "2ms"', 'slice = "1us"'), "slice: at least 10us"),
        (('vm = "a"', 'vm = "z"'), "step #1: vm 'z' is not one of the lab's VMs"),
        (('expect = "hello"', 'expect = "hello"\nsend = "x"'), "step #1: exactly one of expect, send, exit"),
        (('image = "disk.img"', 'image = "nothing.img"'), "nothing.img: no such file"),
        (('name = "a"', 'name = "a b"'), "name: letters, digits"),
        (("pcap = true", 'pcap = "yes"'), "pcap is true or false"),
        (("[[step]]", "colour = 3\n[[step]]"), "unknown key 'colour'"),
    ],
)
def test_bad_labs_are_one_line_errors(lab_dir: Path, change: tuple[str, str], message: str) -> None:
    assert change[0] in GOOD
    with pytest.raises(ConfigError, match="lab.toml") as info:
        load_lab(write(lab_dir, GOOD.replace(change[0], change[1], 1)))
    assert message in str(info.value) and "\n" not in str(info.value)
