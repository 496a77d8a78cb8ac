"""A device writing guest RAM (DMA) drops the translated code of that *physical* page, with
paging on. Regression: the Unicorn backend used uc_ctl(REMOVE_CACHE), which takes a virtual
address and walked the guest's page tables for it, so the wrong page was invalidated (and a
Debian guest on virtio re-faulted on one instruction forever).

The ROM maps virtual 0x200000 to physical 0x300000 and virtual 0x300000 to physical 0x200000,
calls a function at virtual 0x200000 that prints 'A' on port 0xE9, asks the test's device
(port 0x510) to patch the function's immediate in physical memory to 'B', and calls it again.
"""

from __future__ import annotations

from pathlib import Path

from tests.cpu.rom import assemble_rom
from vmm.config import MachineConfig, SerialConfig
from vmm.machine import Machine

ROM = """
    cli
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    lgdt cs:[gdtr]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    .byte 0x66, 0xEA
    .long pm32 + ROM
    .word 0x08
    .code32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7000
    mov edi, 0x11000                  # page table: identity map of the first 4 MiB
    mov eax, 0x3
    mov ecx, 1024
1:  stosd
    add eax, 0x1000
    loop 1b
    mov dword ptr [0x11000 + 0x200 * 4], 0x300003   # virtual 0x200000 -> physical 0x300000
    mov dword ptr [0x11000 + 0x300 * 4], 0x200003   # virtual 0x300000 -> physical 0x200000
    mov dword ptr [0x10000], 0x11003  # page directory entry 0
    mov esi, offset function + ROM    # the function, into physical 0x300000
    mov edi, 0x300000
    mov ecx, function_end - function
    rep movsb
    mov eax, 0x10000
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    mov eax, 0x200000
    call eax                          # 'A'
    mov dx, 0x510
    out dx, al                        # the device patches physical 0x300001 to 'B'
    mov eax, 0x200000
    call eax                          # 'B' if the stale translation was dropped
    mov al, 0
    out 0xF4, al
    hlt
function:
    mov al, 'A'
    out 0xE9, al
    ret
function_end:
    .balign 8
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF
    .quad 0x00CF92000000FFFF
gdt_end:
gdtr:
    .word gdt_end - gdt - 1
    .long gdt + ROM
"""


class Patcher:
    """Port 0x510: a write patches guest RAM the way a device's DMA does."""

    name = "patcher"
    ports = [(0x510, 1)]

    def __init__(self, machine: Machine) -> None:
        self.machine = machine

    def io_read(self, port: int, size: int) -> int:
        return 0xFF

    def io_write(self, port: int, size: int, value: int) -> None:
        self.machine.memory.write(0x300001, b"B")


def test_a_dma_write_drops_the_code_of_the_physical_page(tmp_path: Path) -> None:
    rom = tmp_path / "dma.bin"
    rom.write_bytes(assemble_rom(ROM))
    machine = Machine(MachineConfig(bios=rom, serial=SerialConfig("none")))
    try:
        machine.io.register(0x510, 1, Patcher(machine))
        result = machine.run(max_instructions=1_000_000)
        assert result.reason == "exit-port"
        assert bytes(machine.debug_transcript) == b"AB"
    finally:
        machine.close()
