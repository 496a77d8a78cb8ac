"""VM bundles end to end: `vmm create`, `vmm run NAME.vmx`, the .nvram kept across power
cycles, the boot order deciding which disk boots, and one monitor per VM."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

VMM = [sys.executable, "-m", "vmm"]

# A boot sector: print CMOS byte 0x40 and the boot drive, store 0x40 + 1, power off.
CMOS_COUNTER = """
    .code16
    .intel_syntax noprefix
    .globl _start
_start:
    xor ax, ax
    mov ds, ax
    mov si, offset msg
    call puts
    mov al, 0x40
    out 0x70, al
    in al, 0x71
    mov bl, al
    call hex8
    mov si, offset drive
    call puts
    mov al, dl
    call hex8
    mov si, offset nl
    call puts
    mov al, 0x40
    out 0x70, al
    mov al, bl
    inc al
    out 0x71, al
    xor al, al
    out 0xF4, al
    hlt
puts:
    lodsb
    test al, al
    jz 1f
    mov ah, 0x0E
    int 0x10
    jmp puts
1:  ret
hex8:
    push ax
    shr al, 4
    call nibble
    pop ax
nibble:
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe 2f
    add al, 7
2:  mov ah, 0x0E
    int 0x10
    ret
msg:   .asciz "{label}: cmos[0x40]="
drive: .asciz " drive="
nl:    .asciz "\\r\\n"
    .org 510
    .byte 0x55, 0xAA
"""


def boot_disk(path: Path, label: str) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, elf = Path(tmp, "b.S"), Path(tmp, "b.o"), Path(tmp, "b.elf")
        src.write_text(CMOS_COUNTER.replace("{label}", label))
        subprocess.run(["as", "--64", "-o", obj, src], check=True)
        subprocess.run(["ld", "-m", "elf_x86_64", "-Ttext=0x7C00", "-e", "_start", "-o", elf, obj], check=True)
        sector = subprocess.run(["objcopy", "-O", "binary", "-j", ".text", elf, "/dev/stdout"],
                                check=True, capture_output=True).stdout  # fmt: skip
    assert len(sector) == 512
    path.write_bytes(sector + bytes(1024 * 1024 - 512))
    return path


def vmm(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*VMM, *args], capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture
def bundle(tmp_path):
    created = vmm("create", str(tmp_path / "vm"), "--from-image", str(boot_disk(tmp_path / "a.img", "disk A")))
    assert created.returncode == 0, created.stderr
    return tmp_path / "vm" / "vm.vmx"


def run_bundle(vmx: Path) -> list[str]:
    proc = vmm("run", str(vmx))
    assert proc.returncode == 1, proc.stderr  # the boot sector wrote 0 to the exit port
    return [line for line in proc.stdout.splitlines() if line.startswith("disk ")]


def test_a_cmos_byte_written_by_the_guest_survives_power_off(bundle):
    assert run_bundle(bundle) == ["disk A: cmos[0x40]=00 drive=80"]
    assert run_bundle(bundle) == ["disk A: cmos[0x40]=01 drive=80"]
    assert run_bundle(bundle) == ["disk A: cmos[0x40]=02 drive=80"]
    assert "cmos 0x40: 03" in vmm("nvram", "show", str(bundle)).stdout


def test_nvram_boot_order_chooses_the_disk(bundle, tmp_path):
    second = boot_disk(bundle.parent / "b.img", "disk B")
    assert vmm("set", str(bundle), "ide0:1.fileName", second.name).returncode == 0
    assert vmm("set", str(bundle), "ide0:1.present", "TRUE").returncode == 0
    assert run_bundle(bundle) == ["disk A: cmos[0x40]=00 drive=80"]
    changed = vmm("nvram", "set", str(bundle), "boot.order", "hdd1,hdd")
    assert changed.returncode == 0, changed.stderr
    assert run_bundle(bundle) == ["disk B: cmos[0x40]=01 drive=81"]


def test_a_second_monitor_is_refused_and_a_killed_one_leaves_no_lock(bundle, tmp_path):
    # A guest that never ends: the first monitor holds the lock while it runs.
    spinning = tmp_path / "spin.img"
    spinning.write_bytes(b"\xeb\xfe" + bytes(508) + b"\x55\xaa" + bytes(1024 * 1024 - 512))
    assert vmm("set", str(bundle), "ide0:0.fileName", str(spinning)).returncode != 0  # outside the bundle
    (bundle.parent / "spin.img").write_bytes(spinning.read_bytes())
    assert vmm("set", str(bundle), "ide0:0.fileName", "spin.img").returncode == 0
    first = subprocess.Popen([*VMM, "run", str(bundle)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        # The lock is taken before the machine starts: once the BIOS banner is out, it is held.
        assert first.stdout.readline().startswith("vmm BIOS")
        second = vmm("run", str(bundle), "--serial", "none", "--max-insns", "1000")
        assert second.returncode != 0
        assert f"in use by vmm process {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    third = vmm("run", str(bundle), "--serial", "none", "--max-insns", "100000")
    assert third.returncode == 124, third.stderr  # ran, and stopped at the limit
