"""Debian's own virtio drivers on vmm's `pc` machine, and the same guest under QEMU -M pc.

The Linux guest of `make linux-guest` (guests/linux) boots through syslinux on vmm's BIOS
with this module's /init (linux_virtio_init.sh) in place of its own: the virtio_pci,
virtio_blk, virtio_net, virtio_rng and virtio_balloon modules bind to vmm's devices; the
guest reads a raw and a VMDK virtio disk and writes a sector into each (the bytes are in the
files afterwards, and qemu-img finds the VMDK clean); eth0 has the configured MAC; /dev/hwrng
reads; the host asks for 32 MiB through the balloon and the guest's MemTotal drops by that
much. QEMU -M pc with the same modern virtio-pci devices lists the same devices and drivers.
A boot is ~6.5 G instructions: marked slow (CI runs it).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_file, require_tool
from vmm.config import DiskConfig, MachineConfig, NicConfig, SerialConfig
from vmm.disk.open import open_disk
from vmm.machine import Machine

LINUX = ROOT / "guests" / "build" / "linux"
INIT = Path(__file__).resolve().parent / "linux_virtio_init.sh"
MAC = "52:54:00:12:34:56"
SECTORS = 16384
MAX_INSTRUCTIONS = 30_000_000_000
QEMU_TIMEOUT = 900

pytestmark = pytest.mark.slow


def cpio_replace(archive: bytes, name: str, data: bytes) -> bytes:
    """A newc cpio archive with file ``name``'s contents replaced by ``data``."""
    out, at = bytearray(), 0
    while True:
        header = archive[at : at + 110]
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        size, name_size = fields[6], fields[11]
        name_end = at + 110 + name_size
        entry_name = archive[at + 110 : name_end - 1].decode()
        data_at = (name_end + 3) & ~3
        body = archive[data_at : data_at + size]
        following = (data_at + size + 3) & ~3
        if entry_name == name:
            fields[6], body = len(data), data
        out += b"070701" + b"".join(b"%08X" % value for value in fields) + archive[at + 110 : name_end]
        out += bytes(-len(out) % 4)  # the name's padding, then the body's
        out += body + bytes(-len(body) % 4)
        if entry_name == "TRAILER!!!":
            return bytes(out)
        at = following


def pattern_disk(path: Path) -> None:
    path.write_bytes(b"".join((b"VMMSECT%08d" % i).ljust(512, b".") for i in range(SECTORS)))


def prepare_images(work: Path) -> dict[str, Path]:
    """Copies of the syslinux disk with this module's /init: one for vmm (whose init waits
    for the host's balloon request), one for QEMU."""
    mcopy = require_tool("mcopy")
    disk = require_file(LINUX / "disk.img", "run make linux-guest")
    initrd = work / "initrd.gz"
    archive = gzip.decompress(require_file(LINUX / "initrd.gz", "run make linux-guest").read_bytes())
    initrd.write_bytes(gzip.compress(cpio_replace(archive, "init", INIT.read_bytes())))
    images = {}
    for who, append in (("vmm", "console=ttyS0 balloon-wait"), ("qemu", "console=ttyS0")):
        image = work / f"{who}.img"
        shutil.copyfile(disk, image)
        cfg = work / f"{who}.cfg"
        cfg.write_text(f"DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.gz\n"
                       f"  APPEND {append}\n")  # fmt: skip
        env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
        for source, target in ((initrd, "::initrd.gz"), (cfg, "::syslinux.cfg")):
            subprocess.run([mcopy, "-o", "-i", f"{image}@@1M", str(source), target], check=True, env=env)
        images[who] = image
    images["work"] = work
    return images


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return prepare_images(tmp_path_factory.mktemp("linux-virtio"))


def virtio_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("virtio-check: ")]


@pytest.fixture(scope="module")
def vmm_run(guest: dict[str, Path]) -> dict:
    work = guest["work"]
    raw, vmdk = work / "vd-raw.img", work / "vd.vmdk"
    pattern_disk(raw)
    source = work / "vd-source.img"
    pattern_disk(source)
    subprocess.run([sys.executable, "-m", "vmm", "disk", "convert", "--type", "monolithicSparse",
                    str(source), str(vmdk)], check=True)  # fmt: skip
    config = MachineConfig(
        machine="pc", memory_mb=128, serial=SerialConfig("none"), balloon=True,
        disks=[DiskConfig("ide0:0", guest["vmm"]), DiskConfig("virtio0", raw), DiskConfig("virtio1", vmdk)],
        nics=[NicConfig("ethernet0", "loopback", MAC)],
    )  # fmt: skip
    machine = Machine(config)
    asked = []

    def ask_for_memory() -> None:
        if not asked and b"balloon ready" in machine.serial_transcript:
            asked.append(machine.pci.balloon.set_target(32))

    try:
        result = machine.run(max_instructions=MAX_INSTRUCTIONS, poll=ask_for_memory)
        text = bytes(machine.serial_transcript).decode("latin-1").replace("\r\n", "\n")
        released = machine.pci.balloon.released_pages
    finally:
        machine.close()
    return {"result": result, "text": text, "raw": raw, "vmdk": vmdk, "released": released}


def test_debian_drivers_bind_and_use_the_devices(vmm_run: dict) -> None:
    lines = virtio_lines(vmm_run["text"])
    assert vmm_run["result"].reason == "exit-port", vmm_run["text"][-3000:]
    assert "virtio-check: pci 0x1af4:0x1042 class 0x010000 driver virtio-pci" in lines
    for device, driver in (("0x0002", "virtio_blk"), ("0x0001", "virtio_net"), ("0x0004", "virtio_rng"),
                           ("0x0005", "virtio_balloon")):  # fmt: skip
        assert f"virtio-check: virtio device {device} driver {driver}" in lines
    for disk in ("vda", "vdb"):
        assert f"virtio-check: {disk} size {SECTORS} sectors" in lines
        assert f"virtio-check: {disk} sector 5 starts VMMSECT00000005" in lines
    assert f"virtio-check: eth0 address {MAC} carrier 1" in lines
    assert "virtio-check: hwrng virtio_rng.0 read 16 bytes" in lines
    gave = next(int(m.group(1)) for line in lines if (m := re.match(r"virtio-check: balloon gave (\d+) kB", line)))
    assert gave >= 32768 and vmm_run["released"] >= 8192


def test_guest_writes_land_in_the_raw_and_vmdk_files(vmm_run: dict) -> None:
    assert vmm_run["raw"].read_bytes()[9 * 512 :].startswith(b"WRITTEN-BY-LINUX-vda")
    with open_disk(vmm_run["vmdk"]) as disk:
        assert disk.read(9, 1).startswith(b"WRITTEN-BY-LINUX-vdb")
        assert disk.read(10, 1).startswith(b"VMMSECT00000010")
    check = subprocess.run([require_tool("qemu-img"), "check", str(vmm_run["vmdk"])], capture_output=True, text=True)
    assert check.returncode == 0 and "No errors were found" in check.stdout


@pytest.mark.qemu
def test_qemu_pc_lists_the_same_devices_and_drivers(guest: dict[str, Path], vmm_run: dict) -> None:
    qemu = require_tool("qemu-system-x86_64")
    work = guest["work"]
    raw, vmdk = work / "q-raw.img", work / "q-vdb.img"
    pattern_disk(raw)
    pattern_disk(vmdk)
    serial = work / "qemu.serial"
    subprocess.run([
        qemu, "-M", "pc", "-m", "128", "-vga", "none", "-display", "none", "-no-reboot",
        "-serial", f"file:{serial}", "-drive", f"file={guest['qemu']},format=raw,if=ide",
        "-drive", f"file={raw},format=raw,if=none,id=vda",
        "-device", "virtio-blk-pci,drive=vda,addr=2,disable-legacy=on",
        "-drive", f"file={vmdk},format=raw,if=none,id=vdb",
        "-device", "virtio-blk-pci,drive=vdb,addr=3,disable-legacy=on",
        "-netdev", "user,id=n0", "-device", f"virtio-net-pci,netdev=n0,addr=4,disable-legacy=on,mac={MAC}",
        "-device", "virtio-rng-pci,addr=5,disable-legacy=on", "-device", "virtio-balloon-pci,addr=6,disable-legacy=on",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ], stdin=subprocess.DEVNULL, capture_output=True, timeout=QEMU_TIMEOUT)  # fmt: skip
    qemu_lines = virtio_lines(serial.read_bytes().decode("latin-1").replace("\r\n", "\n"))
    listing = re.compile(r"virtio-check: (pci|virtio device|vd[ab] size|eth0 address|hwrng)")
    vmm_listing = [line for line in virtio_lines(vmm_run["text"]) if listing.match(line)]
    qemu_listing = [line for line in qemu_lines if listing.match(line)]
    assert "virtio-check: virtio device 0x0002 driver virtio_blk" in qemu_listing
    assert vmm_listing == qemu_listing


def test_direct_kernel_boot_on_pc_finds_the_devices(guest: dict[str, Path]) -> None:
    """`--machine pc --kernel`: no firmware runs, vmm sets the bus up as its BIOS would
    (vmm.devices.pci.firmware), and Debian's drivers bind as after a BIOS boot."""
    work = guest["work"]
    raw = work / "direct-raw.img"
    pattern_disk(raw)
    config = MachineConfig(
        machine="pc", memory_mb=128, serial=SerialConfig("none"), kernel=LINUX / "vmlinuz",
        initrd=work / "initrd.gz", append="console=ttyS0", disks=[DiskConfig("virtio0", raw)],
        nics=[NicConfig("ethernet0", "loopback", MAC)],
    )  # fmt: skip
    machine = Machine(config)
    try:
        result = machine.run(max_instructions=MAX_INSTRUCTIONS)
        text = bytes(machine.serial_transcript).decode("latin-1").replace("\r\n", "\n")
    finally:
        machine.close()
    assert result.reason == "exit-port", text[-3000:]
    lines = virtio_lines(text)
    assert lines[lines.index("virtio-check: modules loaded") + 1 :][:5] == [
        "virtio-check: pci 0x1af4:0x1042 class 0x010000 driver virtio-pci",
        "virtio-check: pci 0x1af4:0x1041 class 0x020000 driver virtio-pci",
        "virtio-check: pci 0x1af4:0x1044 class 0x00ff00 driver virtio-pci",
        "virtio-check: virtio device 0x0002 driver virtio_blk",
        "virtio-check: virtio device 0x0001 driver virtio_net",
    ]
    assert f"virtio-check: vda size {SECTORS} sectors" in lines
    assert "virtio-check: vda sector 5 starts VMMSECT00000005" in lines
    assert f"virtio-check: eth0 address {MAC} carrier 1" in lines
    assert "virtio-check: hwrng virtio_rng.0 read 16 bytes" in lines
    assert raw.read_bytes()[9 * 512 :].startswith(b"WRITTEN-BY-LINUX-vda")
