"""The pc machine as a user configures it: flags, .vmx keys, `vmm show`, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vmm.bundle import commands
from vmm.devices.pci.board import default_mac


def vmm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmm", *args], capture_output=True, text=True, timeout=120)


def test_virtio_flags_need_the_pc_machine(tmp_path: Path) -> None:
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(1 << 20))
    proc = vmm("run", "--virtio-disk", str(disk), "--max-insns", "1000")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "vmm: --virtio-disk: virtio devices sit on PCI, add --machine pc"
    proc = vmm("run", "--machine", "pc", "--nic", "carrier-pigeon", "--max-insns", "1000")
    assert proc.returncode == 2 and "--nic: unknown kind 'carrier-pigeon'" in proc.stderr


def test_show_lists_the_pci_devices_of_a_pc_bundle(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    (tmp_path / "toy" / "data.img").write_bytes(bytes(1 << 20))
    keys = ['vmm.machine = "pc"', 'virtio0.present = "TRUE"', 'virtio0.fileName = "data.img"',
            'ethernet0.present = "TRUE"', 'ethernet0.connectionType = "loopback"', 'vmm.balloon = "16"']  # fmt: skip
    vmx.write_text(vmx.read_text() + "\n".join(keys) + "\n")
    out = commands.show(vmx)
    mac = default_mac("toy", "ethernet0")
    assert "pci: host bridge 8086:1237" in out
    assert "pci: PIIX3 ISA bridge 8086:7000 (PIRQ router)" in out
    assert "pci: virtio-blk 1af4:1042 virtio0:" in out and "data.img" in out
    assert f"pci: virtio-net 1af4:1041 ethernet0: MAC {mac}, backend loopback" in out
    assert "pci: virtio-rng 1af4:1044 (seeded)" in out
    assert "pci: virtio-balloon 1af4:1045 (target 16 MB)" in out
    assert "machine type pc" in out
    assert mac.startswith("52:54:00:") and mac == default_mac("toy", "ethernet0") != default_mac("toy", "ethernet1")


def test_unknown_machine_type_in_a_bundle(tmp_path: Path) -> None:
    vmx = commands.create_bundle(tmp_path / "toy", 1 << 20)
    vmx.write_text(vmx.read_text() + 'vmm.machine = "q35"\n')
    out = commands.show(vmx)
    assert out.splitlines()[-1].startswith("error: ") and "unknown machine type 'q35' (isapc or pc)" in out
