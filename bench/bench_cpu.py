"""Guest MIPS of a CPU-bound ROM under vmm beside raw Unicorn running the same code in the
same process, and the cost of a timer interrupt round trip (PIT -> PIC -> INTA -> IVT
handler -> EOI -> IRET)."""

from __future__ import annotations

import time

import unicorn
from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86

from tests.cpu.rom import assemble_rom
from vmm.config import MachineConfig, SerialConfig
from vmm.machine import Machine

LOOP = """
    mov ecx, {n}
    xor eax, eax
1:  add eax, ecx
    xor eax, 0x55
    rol eax, 3
    dec ecx
    jnz 1b
    mov al, 0x10
    out 0xF4, al
    hlt
"""

MEMORY = """
    xor ax, ax
    mov ds, ax
    mov edx, {n}
2:  mov esi, 0x10000
    mov ecx, 0x4000
1:  add dword ptr [esi], ecx
    xor dword ptr [esi + 4], edx
    add esi, 8
    dec ecx
    jnz 1b
    dec edx
    jnz 2b
    mov al, 0x10
    out 0xF4, al
    hlt
"""

TIMER = """
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov al, 0x11
    out 0x20, al
    mov al, 0x08
    out 0x21, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x01
    out 0x21, al
    mov al, 0xFE
    out 0x21, al
    mov word ptr [8 * 4], offset timer
    mov word ptr [8 * 4 + 2], 0xF000
    mov al, 0x34
    out 0x43, al
    mov ax, {divisor}
    out 0x40, al
    mov al, ah
    out 0x40, al
    {sti}
    mov ecx, {n}
1:  add eax, ecx
    dec ecx
    jnz 1b
    mov al, 0x10
    out 0xF4, al
    hlt
timer:
    inc dword ptr [0x500]
    push ax
    mov al, 0x20
    out 0x20, al
    pop ax
    iret
"""


def _write_rom(body: str, path: str) -> str:
    with open(path, "wb") as f:
        f.write(assemble_rom(body))
    return path


def raw_unicorn_seconds(rom: bytes) -> float:
    """The same ROM code on a bare Unicorn engine (16-bit mode, no hooks) to its HLT."""
    uc = unicorn.Uc(ucc.UC_ARCH_X86, ucc.UC_MODE_16)
    uc.mem_map(0, 0x100000)
    uc.mem_write(0xF0000, rom)
    uc.reg_write(x86.UC_X86_REG_CS, 0xF000)
    stop = 0xF0000 + rom.index(b"\xe6\xf4")  # the `out 0xF4, al`
    start = time.perf_counter()
    uc.emu_start(0, stop)
    return time.perf_counter() - start


def vmm_run(path: str) -> tuple[float, int, Machine]:
    machine = Machine(MachineConfig(bios=__import__("pathlib").Path(path), serial=SerialConfig("none")))
    start = time.perf_counter()
    machine.run(max_instructions=10**10)
    return time.perf_counter() - start, machine.cpu.instructions, machine


def main() -> None:
    for label, body in [
        ("register loop (5-instruction blocks)", LOOP.format(n=30_000_000)),
        ("memory read-modify-write loop", MEMORY.format(n=300)),
    ]:
        rom = assemble_rom(body)
        path = _write_rom(body, "/tmp/vmm-bench-loop.bin")
        # Best of three, interleaved, so that load from other processes hits both alike.
        raws, ours_all = [], []
        for _ in range(3):
            raws.append(raw_unicorn_seconds(rom))
            seconds, insns, machine = vmm_run(path)
            machine.close()
            ours_all.append(seconds)
        raw, ours = min(raws), min(ours_all)
        print(f"{label}: {insns:,} instructions")
        print(f"   raw unicorn {insns / raw / 1e6:8.0f} MIPS   vmm {insns / ours / 1e6:8.0f} MIPS   "
              f"ratio vmm/raw {raw / ours:.2f}")  # fmt: skip

    m = 20_000_000
    # Divisor 12: IRQ0 at about 99 kHz of virtual time, one every ~1000 instructions.
    quiet, quiet_insns, mq = vmm_run(_write_rom(TIMER.format(divisor=12, sti="", n=m), "/tmp/vmm-bench-t0.bin"))
    mq.close()
    busy, busy_insns, mb = vmm_run(_write_rom(TIMER.format(divisor=12, sti="sti", n=m), "/tmp/vmm-bench-t1.bin"))
    ticks = mb.memory.read_u32(0x500)
    mb.close()
    cost = (busy - quiet) / ticks if ticks else float("nan")
    print(f"timer interrupts: {ticks:,} IRQ0 round trips at ~99 kHz virtual in {busy_insns:,} instructions")
    print(f"   {cost * 1e6:.2f} us of host time per interrupt round trip "
          f"(run with interrupts {busy:.3f} s, without {quiet:.3f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
