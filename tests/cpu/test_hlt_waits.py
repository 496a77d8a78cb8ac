"""HLT lasts until an interrupt the CPU takes (SDM vol. 2A, HLT), as in QEMU and on KVM:
timer events that raise no interrupt (the RTC's periodic flag with IRQ 8 masked) let
virtual time pass but do not end it."""

from __future__ import annotations

from tests.cpu.rom import assemble_rom
from vmm.config import MachineConfig, SerialConfig
from vmm.machine import Machine

ROM = """
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov al, 0x11            # PIC: ICW1-4, vectors 8-15, only IRQ 0 unmasked
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
    mov al, 0x0A            # RTC: periodic flag at 1024 Hz, its IRQ 8 masked
    out 0x70, al
    mov al, 0x26
    out 0x71, al
    mov al, 0x0B
    out 0x70, al
    in al, 0x71
    or al, 0x40
    mov ah, al
    mov al, 0x0B
    out 0x70, al
    mov al, ah
    out 0x71, al
    mov al, 0x30            # PIT counter 0, mode 0: one interrupt after 65535 ticks (~55 ms)
    out 0x43, al
    mov al, 0xFF
    out 0x40, al
    out 0x40, al
    sti
    hlt
    mov eax, [0x500]        # interrupts taken when the HLT ended
    mov [0x504], eax
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


def test_hlt_is_not_ended_by_timer_events_without_an_interrupt(tmp_path):
    rom = tmp_path / "hlt.bin"
    rom.write_bytes(assemble_rom(ROM))
    machine = Machine(MachineConfig(bios=rom, serial=SerialConfig("none")))
    try:
        machine.run(max_instructions=10**7)
        assert machine.memory.read_u32(0x504) == 1  # the PIT's interrupt ended it, 55 ms on
        assert 54_000_000 < machine.clock.now_ns() < 56_000_000
    finally:
        machine.close()
