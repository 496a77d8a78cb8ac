"""The toy OS with its file system on a virtio disk, and an image configured for a team.

The machine boots from the BIOS's ATA disk as always (boot sector, stage 2, kernel);
when the first virtio-blk disk holds a TOYFS image from sector 0, the kernel reads its
files from there. The virtio disk in these tests carries a different /etc/motd, so
``cat /etc/motd`` tells which disk the files came from. Raw and VMDK on vmm; raw on
QEMU ``-M pc`` with ``virtio-blk-pci`` (modern only).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_file, require_tool
from tests.e2e.test_toyos_net import QEMU_PC_NET, PcConsole
from tests.e2e.test_toyos_qemu import PROMPT, SerialConsole
from tests.e2e.test_toyos_vmm import BIOS, BOOT_INSTRUCTIONS, TOYOS_IMG
from vmm.config import NicConfig

GUESTS = ROOT / "guests"
BUILD = GUESTS / "build"
MOTD = "This /etc/motd is on the virtio disk.\n"
PROGRAMS = ["init", "sh", "clock", "echod", "crash", "spin"]


def make_fs(path: Path) -> Path:
    """A TOYFS image with the toy OS's programs and a motd of its own."""
    motd = path.with_name("motd")
    motd.write_text(MOTD)
    files = [f"/bin/{name}={require_file(BUILD / 'bin' / name)}" for name in PROGRAMS]
    files += [f"/etc/services={GUESTS / 'etc' / 'services'}", f"/etc/motd={motd}"]
    subprocess.run([sys.executable, GUESTS / "tools" / "mkfs.py", "-o", path, *files], check=True)
    return path


def make_image(path: Path, cmdline: str) -> Path:
    """The toy OS disk image with another kernel command line."""
    parts = {name: require_file(BUILD / f"{name}") for name in ("boot.bin", "stage2.bin", "kernel.elf", "fs.img")}
    subprocess.run([sys.executable, GUESTS / "tools" / "mkimage.py", "--boot", parts["boot.bin"],
                    "--stage2", parts["stage2.bin"], "--kernel", parts["kernel.elf"], "--fs", parts["fs.img"],
                    "--cmdline", cmdline, "-o", path], check=True)  # fmt: skip
    return path


def boot(image: Path, virtio: Path | None, nics: list[NicConfig] | None = None) -> PcConsole:
    console = PcConsole(nics or [], image, (virtio,) if virtio else ())
    console.boot_log = console.expect(PROMPT, BOOT_INSTRUCTIONS)
    return console


@pytest.mark.parametrize("kind", ["raw", "vmdk"])
def test_file_system_on_a_virtio_disk(tmp_path: Path, kind: str) -> None:
    fs = make_fs(tmp_path / "fs.img")
    if kind == "vmdk":
        qemu_img = require_tool("qemu-img")
        vmdk = tmp_path / "fs.vmdk"
        subprocess.run([qemu_img, "convert", "-f", "raw", "-O", "vmdk", fs, vmdk], check=True)
        fs = vmdk
    image = tmp_path / "toyos.img"
    image.write_bytes(require_file(TOYOS_IMG).read_bytes())
    console = boot(image, fs)
    try:
        lines = console.boot_log.splitlines()
        assert "kernel: pci 00:02.0 1af4:1042 class 0100 irq 11" in lines
        sectors = (tmp_path / "fs.img").stat().st_size // 512
        assert f"kernel: virtio disk 0: {sectors} sectors" in lines
        assert "kernel: fs: 8 files on virtio disk 0" in lines
        assert console.command("cat /etc/motd") == MOTD
        assert console.command("send via virtio") == "echo: via virtio\n"  # echod loaded from it
    finally:
        console.close()


def test_a_virtio_disk_without_toyfs_leaves_the_files_on_the_ata_disk(tmp_path: Path) -> None:
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(64 * 1024))
    console = boot(require_file(TOYOS_IMG), blank)
    try:
        lines = console.boot_log.splitlines()
        assert "kernel: virtio disk 0: 128 sectors" in lines
        assert "kernel: virtio disk 0: no TOYFS file system at sector 0" in lines
        assert "kernel: fs: 9 files" in lines
        assert console.command("cat /etc/motd") == (GUESTS / "etc" / "motd").read_text()
    finally:
        console.close()


def test_init_prints_the_configured_team_id_and_address(tmp_path: Path) -> None:
    image = make_image(tmp_path / "team.img", "name=lab7 team=7 ip=192.168.7.2/24 console=ttyS0")
    console = boot(image, None, [NicConfig(connection="loopback", mac="52:54:00:07:00:02")])
    try:
        lines = console.boot_log.splitlines()
        at = lines.index("init: toyos ready on lab7")
        assert lines[at + 1 : at + 3] == [
            "init: team ID 7",
            "init: eth0 up, MAC 52:54:00:07:00:02, link up, inet 192.168.7.2/24",
        ]
        assert console.command("ping 192.168.7.2 1").endswith("1 packets transmitted, 1 received, 0% packet loss\n")
    finally:
        console.close()


@pytest.mark.qemu
def test_qemu_pc_reads_the_same_file_system_from_virtio_blk_pci(tmp_path: Path) -> None:
    qemu = require_tool("qemu-system-x86_64")
    fs = make_fs(tmp_path / "fs.img")
    image = tmp_path / "toyos.img"
    image.write_bytes(require_file(TOYOS_IMG).read_bytes())
    console = SerialConsole([qemu, *QEMU_PC_NET, "-nic", "none", "-bios", str(BIOS),
                             "-drive", f"file={image},format=raw,if=ide",
                             "-drive", f"file={fs},format=raw,if=none,id=vd0",
                             "-device", "virtio-blk-pci,drive=vd0,disable-legacy=on,addr=2"])  # fmt: skip
    try:
        lines = console.expect(PROMPT).splitlines()
        assert "kernel: pci 00:02.0 1af4:1042 class 0100 irq 11" in lines
        assert f"kernel: virtio disk 0: {fs.stat().st_size // 512} sectors" in lines
        assert "kernel: fs: 8 files on virtio disk 0" in lines
        assert console.command("cat /etc/motd") == MOTD
    finally:
        console.close()


def test_ip_dhcp_without_a_server_says_so(tmp_path: Path) -> None:
    image = make_image(tmp_path / "dhcp.img", "name=toyos ip=dhcp console=ttyS0")
    console = boot(image, None, [NicConfig(connection="null", mac="52:54:00:00:00:09")])
    try:
        lines = console.boot_log.splitlines()
        at = lines.index("init: eth0 no answer from a DHCP server")
        assert lines[at + 1] == "init: eth0 up, MAC 52:54:00:00:00:09, link up, no IPv4 address"
        assert console.machine.pci.nics[0].stats["tx_frames"] == 3  # three DISCOVERs
    finally:
        console.close()


def test_ip_dhcp_gets_a_lease_from_vmm_user_networking(tmp_path: Path) -> None:
    """`--nic user` (libslirp): the same lease as under QEMU's user networking, and the
    gateway answers ping."""
    image = make_image(tmp_path / "dhcp.img", "name=toyos ip=dhcp console=ttyS0")
    console = boot(image, None, [NicConfig(connection="user", mac="52:54:00:00:00:09")])
    try:
        lines = console.boot_log.splitlines()
        at = lines.index("init: eth0 DHCP lease from 10.0.2.2: router 10.0.2.2, 86400 s")
        assert lines[at + 1] == "init: eth0 up, MAC 52:54:00:00:00:09, link up, inet 10.0.2.15/24"
        assert console.command("ping 10.0.2.2 2") == (
            "PING 10.0.2.2: 56 data bytes\n"
            "64 bytes from 10.0.2.2: icmp_seq=1 ttl=255\n"
            "64 bytes from 10.0.2.2: icmp_seq=2 ttl=255\n"
            "--- 10.0.2.2 ping statistics ---\n"
            "2 packets transmitted, 2 received, 0% packet loss\n"
        )
    finally:
        console.close()


@pytest.mark.qemu
def test_ip_dhcp_gets_a_lease_from_qemu_user_networking(tmp_path: Path) -> None:
    qemu = require_tool("qemu-system-x86_64")
    image = make_image(tmp_path / "dhcp.img", "name=toyos ip=dhcp console=ttyS0")
    nic = "virtio-net-pci,netdev=n0,disable-legacy=on,addr=2,mac=52:54:00:00:00:09"
    console = SerialConsole([qemu, *QEMU_PC_NET, "-drive", f"file={image},format=raw,if=ide", "-netdev", "user,id=n0",
                             "-device", nic])  # fmt: skip
    try:
        lines = console.expect(PROMPT).splitlines()
        at = lines.index("init: eth0 DHCP lease from 10.0.2.2: router 10.0.2.2, 86400 s")
        assert lines[at + 1] == "init: eth0 up, MAC 52:54:00:00:00:09, link up, inet 10.0.2.15/24"
        assert console.command("ping 10.0.2.2 1").endswith("1 packets transmitted, 1 received, 0% packet loss\n")
    finally:
        console.close()
