"""Debian Linux guests on vmm's switch: access VLANs, a trunk with 802.1Q subinterfaces,
the captures tshark reads, and a QEMU VM on the same switch.

Each guest is the syslinux disk of `make linux-guest` with tests/e2e/linux_switch_init.sh as
/init (configured by its kernel command line: net.ip=, net.vlan=VID:ADDR, net.ping=).
The VLAN tests run as one `vmm lab` (four guests in lockstep: deterministic, no wall
clock); the QEMU test plugs QEMU's ``-netdev stream`` and a `vmm run` into a `vmm switch`
process. A Linux boot is ~6.3 G instructions (~10 s of CPU): marked slow (CI runs them).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_file, require_tool
from tests.e2e.test_linux_virtio import cpio_replace
from vmm.lab.cli import run_steps
from vmm.lab.engine import Lab
from vmm.lab.spec import load_lab

LINUX = ROOT / "guests" / "build" / "linux"
INIT = Path(__file__).resolve().parent / "linux_switch_init.sh"
GUARD = 900  # wall seconds for a process: a hang fails instead of blocking the suite

pytestmark = pytest.mark.slow


def net_initrd(work: Path) -> Path:
    initrd = work / "net-initrd.gz"
    if not initrd.exists():
        archive = gzip.decompress(require_file(LINUX / "initrd.gz", "run make linux-guest").read_bytes())
        initrd.write_bytes(gzip.compress(cpio_replace(archive, "init", INIT.read_bytes()), 1))
    return initrd


def linux_disk(work: Path, name: str, append: str) -> Path:
    """A copy of the Linux guest's syslinux disk that boots with the network /init and ``append``.
    ``no_timer_check``: QEMU TCG on a loaded host can miss the kernel's IO-APIC timer check
    and panic; vmm's virtual time never does, but the same disks boot under QEMU."""
    mcopy = require_tool("mcopy")
    image = work / f"{name}.img"
    shutil.copyfile(require_file(LINUX / "disk.img", "run make linux-guest"), image)
    cfg = work / f"{name}.cfg"
    cfg.write_text(f"DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n"
                   f"  APPEND console=ttyS0 quiet no_timer_check {append}\n")  # fmt: skip
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    for source, target in ((net_initrd(work), "::initrd.gz"), (cfg, "::syslinux.cfg")):
        subprocess.run([mcopy, "-o", "-i", f"{image}@@1M", str(source), target], check=True, env=env)
    return image


VLAN_LAB = """
name = "access VLANs 10 and 20, and a trunk"
run = "300s"

[[switch]]
name = "sw0"

[[vm]]
name = "a"
image = "a.img"
mem = "128M"
nic = [{ switch = "sw0", vlan = 10, pcap = true }]

[[vm]]
name = "b"
image = "b.img"
mem = "128M"
nic = [{ switch = "sw0", vlan = 10 }]

[[vm]]
name = "c"
image = "c.img"
mem = "128M"
nic = [{ switch = "sw0", vlan = 20 }]

[[vm]]
name = "t"
image = "t.img"
mem = "128M"
nic = [{ switch = "sw0", trunk = [10, 20] }]

[[step]]
vm = "a"
expect = "net-check: ping 10.0.10.2 ok"
within = "200s"

[[step]]
vm = "a"
expect = "net-check: ping 10.0.20.3 failed"
within = "60s"

[[step]]
vm = "t"
expect = "net-check: ping 10.0.10.1 ok"
within = "60s"

[[step]]
vm = "t"
expect = "net-check: ping 10.0.20.3 ok"
within = "60s"
"""


@pytest.fixture(scope="module")
def vlan_lab(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("switch-linux")
    # a, b: VLAN 10; c: VLAN 20 but in a's /16, so a's ping to it would cross if VLANs leaked.
    linux_disk(work, "a", "net.ip=10.0.10.1/16 net.stay net.ping=10.0.10.2 net.ping=10.0.20.3")
    linux_disk(work, "b", "net.ip=10.0.10.2/16 net.stay")
    linux_disk(work, "c", "net.ip=10.0.20.3/16 net.stay")
    linux_disk(work, "t", "net.vlan=10:10.0.10.4/24 net.vlan=20:10.0.20.4/24 net.stay "
                          "net.ping=10.0.10.1 net.ping=10.0.20.3")  # fmt: skip
    (work / "lab.toml").write_text(VLAN_LAB)
    out = work / "out"
    lab = Lab(load_lab(work / "lab.toml"), out)
    try:
        run_steps(lab)
        serial = {vm.name: bytes(vm.machine.serial_transcript).decode("latin-1") for vm in lab.vms}
        info = lab.switches["sw0"].describe()
    finally:
        lab.close()
    return {"out": out, "serial": serial, "switch": info}


def test_same_access_vlan_pings_and_different_vlans_do_not(vlan_lab: dict) -> None:
    a = vlan_lab["serial"]["a"]
    assert "net-check: ping 10.0.10.2 ok (3 replies)" in a
    assert "net-check: ping 10.0.20.3 failed" in a


def test_the_trunk_with_subinterfaces_reaches_both_vlans(vlan_lab: dict) -> None:
    t = vlan_lab["serial"]["t"]
    assert "net-check: eth0.10 eth0.10 VID: 10" in t
    assert "net-check: ping 10.0.10.1 ok" in t and "net-check: ping 10.0.20.3 ok" in t
    assert vlan_lab["switch"]["counters"].get("drop_vlan_not_allowed", 0) == 0


def tshark(path: Path, *fields: str, display: str = "") -> list[str]:
    args = [require_tool("tshark"), "-r", str(path), "-T", "fields", *[x for f in fields for x in ("-e", f)]]
    out = subprocess.run(args + (["-Y", display] if display else []), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_tshark_reads_the_icmp_exchange_and_the_trunk_tags(vlan_lab: dict) -> None:
    out = vlan_lab["out"]
    access = tshark(out / "sw0-port1-a.pcap", "ip.src", "ip.dst", "icmp.type", display="icmp")
    assert "10.0.10.1\t10.0.10.2\t8" in access and "10.0.10.2\t10.0.10.1\t0" in access
    assert not tshark(out / "sw0-port1-a.pcap", "vlan.id", display="vlan")  # an access port is untagged
    trunk = tshark(out / "sw0-port4-t.pcap", "vlan.id", "ip.src", "ip.dst", "icmp.type", display="icmp")
    assert "10\t10.0.10.4\t10.0.10.1\t8" in trunk and "10\t10.0.10.1\t10.0.10.4\t0" in trunk
    assert "20\t10.0.20.4\t10.0.20.3\t8" in trunk and "20\t10.0.20.3\t10.0.20.4\t0" in trunk
    # The NIC's own capture (virtual time) saw a's side of the same exchange.
    nic = tshark(out / "a-ethernet0.pcap", "ip.dst", "icmp.type", display="icmp")
    assert "10.0.10.2\t8" in nic and "10.0.10.1\t0" in nic
    dump = subprocess.run([require_tool("tcpdump"), "-nn", "-e", "-r", str(out / "sw0-port4-t.pcap"), "vlan 20"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "vlan 20" in dump.stdout and "ICMP echo reply" in dump.stdout


@pytest.mark.qemu
def test_a_qemu_vm_on_the_switch_pings_a_vmm_vm(tmp_path: Path) -> None:
    qemu = require_tool("qemu-system-x86_64")
    sock = tmp_path / "sw.sock"
    vmm_disk = linux_disk(tmp_path, "vmm", "net.ip=10.0.0.2/24 net.stay")
    qemu_disk = linux_disk(tmp_path, "qemu", "net.ip=10.0.0.1/24 net.wait=10.0.0.2 net.ping=10.0.0.2")
    switch = subprocess.Popen([sys.executable, "-m", "vmm", "switch", str(sock), "--pcap", str(tmp_path / "cap")],
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    vm = None
    try:
        assert "serving" in switch.stderr.readline()
        vm = subprocess.Popen([sys.executable, "-m", "vmm", "run", "--machine", "pc", "--mem", "128M",
                               "--nic", f"switch={sock},vlan=1,mac=52:54:00:00:00:02",
                               "--serial", f"file:{tmp_path / 'vmm.serial'}", str(vmm_disk)])  # fmt: skip
        run = subprocess.run([
            qemu, "-M", "pc", "-m", "128", "-vga", "none", "-display", "none", "-no-reboot",
            "-serial", f"file:{tmp_path / 'qemu.serial'}", "-drive", f"file={qemu_disk},format=raw,if=ide",
            "-netdev", f"stream,id=n0,server=off,addr.type=unix,addr.path={sock}",
            "-device", "virtio-net-pci,netdev=n0,disable-legacy=on,mac=52:54:00:00:00:01",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ], stdin=subprocess.DEVNULL, capture_output=True, timeout=GUARD)  # fmt: skip
        qemu_serial = (tmp_path / "qemu.serial").read_bytes().decode("latin-1")
        assert run.returncode == 1, run.stderr.decode() + qemu_serial[-2000:]  # the guest wrote 0 to port 0xF4
        assert "net-check: ping 10.0.0.2 ok (3 replies)" in qemu_serial
        shown = subprocess.run([sys.executable, "-m", "vmm", "switch", "show", str(sock)], capture_output=True,
                               text=True, timeout=60).stdout  # fmt: skip
        assert "vm/ethernet0" in shown and "52:54:00:00:00:02" in shown  # the QEMU port went with QEMU
    finally:
        if vm is not None:
            vm.terminate()
            vm.wait(60)
        switch.terminate()
        switch.wait(60)
    assert "net-check: up" in (tmp_path / "vmm.serial").read_bytes().decode("latin-1")
    captures = {p.name for p in (tmp_path / "cap").iterdir()}
    qemu_port = next(name for name in captures if "stream" in name)
    icmp = tshark(tmp_path / "cap" / qemu_port, "ip.src", "ip.dst", "icmp.type", display="icmp")
    assert "10.0.0.1\t10.0.0.2\t8" in icmp and "10.0.0.2\t10.0.0.1\t0" in icmp
