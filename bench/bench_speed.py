"""The speed table of issue 15, measured side by side in one run (host CPU seconds):

- a prime sieve (byte stores) and a CRC32 (table loads) as a 64 KiB BIOS ROM, on vmm
  (in process), on a bare Unicorn engine (the same library vmm ships, no hooks) and on
  QEMU TCG (`-M isapc` with the ROM as its BIOS; QEMU's start-up, measured on a ROM that
  exits at once, is subtracted);
- a register loop of five-instruction blocks, vmm against bare Unicorn;
- the toy OS booted to its shell prompt and powered off by a typed `poweroff`, as whole
  processes: `vmm run` against QEMU with the same BIOS;
- the Debian Linux guest (`make linux-guest`) booted directly (`--kernel`, `--initrd`) to
  its init's first line, as whole processes: `vmm run` against QEMU TCG (`-M isapc`), with
  vmm's instruction count at the init stage.

Each pair is interleaved (best of ROUNDS) so that load from other processes hits both
alike; the machine's load average is printed with the ratios."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import unicorn
from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86

from tests.cpu.rom import assemble_rom
from vmm.config import MachineConfig, SerialConfig
from vmm.machine import Machine

ROOT = Path(__file__).resolve().parent.parent
BIOS = ROOT / "firmware" / "build" / "bios.bin"
TOYOS = ROOT / "guests" / "build" / "toyos.img"
LINUX = ROOT / "guests" / "build" / "linux"
LINUX_INIT = b"vmm-linux-guest: init running as pid 1"
ROUNDS = 5  # best of: the ROM lines run ~0.1 s each, short enough for the host to move them
LINUX_ROUNDS = 2  # ~5 s of CPU each
EXIT = """
    mov al, 0x10
    out 0xF4, al
    hlt
"""

# Sieve of Eratosthenes over the 64 KiB segment at 0x10000, {rounds} times: the inner
# loop is one byte store in three instructions.
SIEVE = (
    """
    mov ax, 0x1000
    mov ds, ax
    mov ebp, {rounds}
3:  xor bx, bx
    mov cx, 0x8000
4:  mov word ptr [bx], 0
    add bx, 2
    loop 4b
    mov si, 2
5:  cmp byte ptr [si], 0
    jne 7f
    mov ax, si
    mul si
    test dx, dx
    jnz 7f
    mov bx, ax
6:  mov byte ptr [bx], 1
    add bx, si
    jnc 6b
7:  inc si
    cmp si, 256
    jb 5b
    dec ebp
    jnz 3b
"""
    + EXIT
)

# CRC32 of the ROM's own 64 KiB, {rounds} times: a byte load and a table load a byte.
CRC = (
    """
    mov ax, 0x1000
    mov ds, ax
    xor cx, cx
1:  movzx eax, cx
    mov dx, 8
2:  shr eax, 1
    jnc 3f
    xor eax, 0xEDB88320
3:  dec dx
    jnz 2b
    mov di, cx
    shl di, 2
    mov [di], eax
    inc cx
    cmp cx, 256
    jb 1b
    mov ebp, {rounds}
4:  mov edx, 0xFFFFFFFF
    xor si, si
    xor cx, cx
5:  mov al, cs:[si]
    xor al, dl
    movzx bx, al
    shl bx, 2
    shr edx, 8
    xor edx, [bx]
    inc si
    loop 5b
    dec ebp
    jnz 4b
"""
    + EXIT
)

REGISTER_LOOP = (
    """
    mov ecx, {n}
    xor eax, eax
1:  add eax, ecx
    xor eax, 0x55
    rol eax, 3
    dec ecx
    jnz 1b
"""
    + EXIT
)


def _cpu_seconds(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def vmm_rom(path: Path) -> tuple[float, int]:
    """(host CPU seconds, instructions) of the ROM on vmm, in this process."""
    machine = Machine(MachineConfig(bios=path, serial=SerialConfig("none")))
    try:
        seconds = _cpu_seconds(lambda: machine.run(max_instructions=10**10))
        return seconds, machine.cpu.instructions
    finally:
        machine.close()


def raw_unicorn_rom(rom: bytes) -> float:
    """Host CPU seconds of the same code on a bare Unicorn engine (no hooks) to its exit."""
    uc = unicorn.Uc(ucc.UC_ARCH_X86, ucc.UC_MODE_16)
    uc.mem_map(0, 0x100000)
    uc.mem_write(0xF0000, rom)
    uc.reg_write(x86.UC_X86_REG_CS, 0xF000)
    stop = 0xF0000 + rom.index(b"\xb0\x10\xe6\xf4")  # the exit's `mov al, 0x10`
    return _cpu_seconds(lambda: uc.emu_start(0, stop))


def qemu_rom(qemu: str, path: Path) -> float:
    """Host CPU seconds of a QEMU TCG process running the ROM as its BIOS to the exit port."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([qemu, "-M", "isapc", "-cpu", "qemu64,-apic", "-accel", "tcg", "-bios", str(path),
                             "-display", "none", "-serial", "none", "-monitor", "none", "-no-reboot",
                             "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=600)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0x21:
        raise RuntimeError(f"QEMU exited with {result.returncode}: {result.stderr.decode(errors='replace')}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def rom_line(label: str, body: str, qemu: str | None, qemu_startup: float, folder: Path) -> None:
    rom = assemble_rom(body)
    path = folder / "rom.bin"
    path.write_bytes(rom)
    ours, raws, qemus = [], [], []
    insns = 0
    for _ in range(ROUNDS):
        seconds, insns = vmm_rom(path)
        ours.append(seconds)
        raws.append(raw_unicorn_rom(rom))
        if qemu is not None:
            qemus.append(max(1e-3, qemu_rom(qemu, path) - qemu_startup))
    vmm_mips, raw_mips = insns / min(ours) / 1e6, insns / min(raws) / 1e6
    line = f"   {label}: {insns:,} insns; vmm {vmm_mips:7.0f} MIPS, raw unicorn {raw_mips:7.0f} MIPS"
    if qemus:
        qemu_mips = insns / min(qemus) / 1e6
        line += f", QEMU TCG {qemu_mips:7.0f} MIPS; vmm/QEMU {vmm_mips / qemu_mips:.2f}"
    line += f"; vmm/raw {vmm_mips / raw_mips:.2f}  ({_load()})"
    print(line, flush=True)


def toyos_process(command: list[str]) -> float:
    """Host CPU seconds of a whole process that boots the toy OS to its shell prompt and
    powers it off (`poweroff` is typed once the prompt is there)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert child.stdin is not None and child.stdout is not None
    seen = b""
    try:
        while not seen.endswith(b"toyos$ "):
            byte = child.stdout.read(1)
            if not byte:
                raise RuntimeError(f"{command[0]} ended before the prompt")
            seen += byte
        child.stdin.write(b"poweroff\n")
        child.stdin.flush()
        child.stdout.read()
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def toyos_line(qemu: str | None, folder: Path) -> None:
    if not TOYOS.exists() or qemu is None:
        print("   toy OS line skipped: needs guests/build/toyos.img and qemu-system-x86_64")
        return
    image = folder / "toyos.img"
    vmm = [str(Path(sys.executable).with_name("vmm")), "run", "--bios", str(BIOS), str(image)]
    ref = [qemu, "-M", "isapc", "-cpu", "qemu64,-apic", "-bios", str(BIOS), "-m", "64", "-display", "none",
           "-serial", "stdio", "-monitor", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
           "-drive", f"file={image},format=raw,if=ide"]  # fmt: skip
    ours, theirs = [], []
    for _ in range(ROUNDS):
        shutil.copyfile(TOYOS, image)
        ours.append(toyos_process(vmm))
        shutil.copyfile(TOYOS, image)
        theirs.append(toyos_process(ref))
    print(f"   toy OS, process start to prompt and poweroff: vmm {min(ours):.3f} s CPU, QEMU (same BIOS) "
          f"{min(theirs):.3f} s CPU; vmm/QEMU {min(ours) / min(theirs):.2f}x  ({_load()})", flush=True)  # fmt: skip


def until_line(command: list[str], line: bytes, cwd: Path, stderr_path: Path) -> float:
    """Host CPU seconds of a whole process from its start until ``line`` appears on its
    standard output (then it is killed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with stderr_path.open("wb") as stderr:
        child = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
        assert child.stdout is not None
        seen = b""
        try:
            while line not in seen:
                chunk = child.stdout.read1(4096)
                if not chunk:
                    raise RuntimeError(f"{command[0]} ended before {line.decode()!r}")
                seen = seen[-len(line) :] + chunk
        finally:
            child.kill()
            child.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def linux_line(qemu: str | None, folder: Path) -> None:
    kernel, initrd = LINUX / "vmlinuz", LINUX / "initrd.gz"
    if not kernel.exists() or not initrd.exists() or qemu is None:
        print("   Linux line skipped: needs `make linux-guest` and qemu-system-x86_64")
        return
    boot = ["--kernel", str(kernel), "--initrd", str(initrd), "--append", "console=ttyS0"]
    vmm = [str(Path(sys.executable).with_name("vmm")), "run", *boot, "--stages"]
    ref = [qemu, "-M", "isapc", "-cpu", "qemu64,-apic", "-m", "128", "-accel", "tcg", "-display", "none",
           "-serial", "stdio", "-monitor", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
           "-kernel", str(kernel), "-initrd", str(initrd), "-append", "console=ttyS0"]  # fmt: skip
    log = folder / "stderr.txt"
    ours, theirs = [], []
    insns = "?"
    for _ in range(LINUX_ROUNDS):
        ours.append(until_line(vmm, LINUX_INIT, folder, log))
        stage = re.search(rb"stage init +at insn +([\d,]+)", log.read_bytes())
        insns = stage.group(1).decode() if stage else "?"
        theirs.append(until_line(ref, LINUX_INIT, folder, log))
    print(f"   Linux, direct boot to init: {insns} insns; vmm {min(ours):.2f} s CPU, QEMU TCG {min(theirs):.2f} s CPU; "
          f"vmm/QEMU {min(ours) / min(theirs):.2f}x  ({_load()})", flush=True)  # fmt: skip


def main() -> None:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        print("   QEMU columns skipped: qemu-system-x86_64 is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        startup = 0.0
        if qemu is not None:
            empty = folder / "empty.bin"
            empty.write_bytes(assemble_rom(EXIT))
            startup = min(qemu_rom(qemu, empty) for _ in range(ROUNDS))
            print(f"   QEMU start-up to the exit port: {startup:.3f} s CPU (subtracted below)")
        rom_line("sieve (byte stores)", SIEVE.format(rounds=240), qemu, startup, folder)
        rom_line("CRC32 (table loads)", CRC.format(rounds=160), qemu, startup, folder)
        rom_line("register loop (5-instruction blocks)", REGISTER_LOOP.format(n=10_000_000), None, 0.0, folder)
        toyos_line(qemu, folder)
        linux_line(qemu, folder)


if __name__ == "__main__":
    main()
