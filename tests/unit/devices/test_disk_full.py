"""A host write that fails (disk full) reaches the guest as an ATA error, is reported once,
and leaves the image intact; lock and .nvram writes on a full disk give one line and no
temp files (issue 23). ENOSPC is injected at the write layer (os.pwrite/os.write)."""

from __future__ import annotations

import errno
import os

import pytest

from tests.cpu.rom import assemble_rom
from vmm.bundle.lock import VmLock, VmLockedError
from vmm.bundle.nvram import Nvram
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.disk.open import open_disk
from vmm.disk.vmdk.create import create_vmdk
from vmm.errors import VmmError
from vmm.machine import Machine

# WRITE SECTORS of one sector, to LBA 0 then LBA 1; then exit with the error register of
# the second command in the high nibble and the low nibble of the first command's status.
ATA_WRITE_TWICE = """
    xor bx, bx
again:
    mov dx, 0x1F6
    mov al, 0xE0
    out dx, al
    mov dx, 0x1F2
    mov al, 1
    out dx, al
    mov dx, 0x1F3
    mov al, bl
    out dx, al
    inc dx
    xor al, al
    out dx, al
    inc dx
    out dx, al
    mov dx, 0x1F7
    mov al, 0x30
    out dx, al
1:  in al, dx
    test al, 0x08
    jz 1b
    mov dx, 0x1F0
    mov cx, 256
    mov ax, 0xABCD
2:  out dx, ax
    loop 2b
    mov dx, 0x1F7
3:  in al, dx
    test al, 0x80
    jnz 3b
    mov si, ax
    mov dx, 0x1F1
    in al, dx
    mov ah, al
    mov al, byte ptr cs:[status_seen]
    or al, 0
    jnz 4f
    mov ax, si
    mov byte ptr cs:[status_seen], al
4:  inc bx
    cmp bx, 2
    jne again
    mov dx, 0x1F1
    in al, dx
    shl al, 4
    mov cx, si
    and cl, 0x0F
    or al, cl
    out 0xF4, al
    hlt
status_seen:
    .byte 0
"""


def run_guest(tmp_path, disk_path) -> tuple[int, Machine]:
    rom = tmp_path / "ata.bin"
    rom.write_bytes(assemble_rom(ATA_WRITE_TWICE))
    config = MachineConfig(bios=rom, serial=SerialConfig("none"), disks=[DiskConfig("ide0:0", disk_path)])
    machine = Machine(config)
    warnings: list[str] = []
    machine.warn = warnings.append
    result = machine.run(max_instructions=1_000_000)
    assert result.reason == "exit-port", result
    machine.warnings = warnings
    return (result.status - 1) >> 1, machine


def full_disk(monkeypatch, after_bytes: int = 0) -> None:
    """From now on host writes take ``after_bytes`` bytes, then fail with ENOSPC."""
    real = os.pwrite
    left = [after_bytes]

    def pwrite(fd, data, offset):
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = min(len(data), left[0])
        left[0] -= n
        return real(fd, bytes(data[:n]), offset)

    monkeypatch.setattr(os, "pwrite", pwrite)


@pytest.mark.parametrize("kind", ["raw", "vmdk"])
def test_a_write_on_a_full_disk_is_an_ata_error_for_the_guest_and_said_once(tmp_path, monkeypatch, kind):
    path = tmp_path / ("d.img" if kind == "raw" else "d.vmdk")
    if kind == "raw":
        path.write_bytes(bytes(64 * 1024))
    else:
        create_vmdk(path, 128, grain_size=16)
    before = path.read_bytes()
    full_disk(monkeypatch, after_bytes=100)  # a short write, then nothing
    status, machine = run_guest(tmp_path, path)
    monkeypatch.undo()
    # error register ABRT (0x04) in the high nibble, status DRDY|DSC|ERR low nibble 0x1.
    assert status == 0x41
    assert len(machine.warnings) == 1 and "No space left on device" in machine.warnings[0]
    assert "the guest gets I/O errors" in machine.warnings[0]
    assert machine.disk_io_errors == 2
    machine.ata.disks[0].close()
    if kind == "vmdk":
        with open_disk(path, read_only=True) as disk:  # still opens and reads what it held
            assert disk.read(0, 2) == bytes(1024)
    else:
        assert path.read_bytes()[512:] == before[512:]


def test_writes_that_fit_still_succeed(tmp_path):
    path = tmp_path / "d.img"
    path.write_bytes(bytes(64 * 1024))
    status, machine = run_guest(tmp_path, path)
    assert status == 0  # error 0; status DRDY|DSC (0x50): low nibble 0
    assert machine.warnings == []
    assert path.read_bytes()[:1024] == b"\xcd\xab" * 512


def test_lock_on_a_full_disk_is_one_line_and_leaves_no_temp_folder(tmp_path, monkeypatch):
    vmx = tmp_path / "vm.vmx"
    vmx.write_text('.encoding = "UTF-8"\n')
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:5]))
    with pytest.raises(VmLockedError) as info:
        VmLock(vmx).acquire()
    monkeypatch.undo()
    assert str(info.value) == f"{vmx}.lck: cannot create the lock: No space left on device"
    assert sorted(os.listdir(tmp_path)) == ["vm.vmx"]


def test_nvram_save_on_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "vm.nvram"
    Nvram().save(path)
    before = path.read_bytes()
    nvram = Nvram()
    nvram.set("boot.order", "cdrom,hdd")

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(VmmError) as info:
        nvram.save(path)
    monkeypatch.undo()
    assert str(info.value) == f"{path}: cannot write: No space left on device (the previous file is kept)"
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["vm.nvram"]
