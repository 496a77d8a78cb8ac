"""CPU conformance: small ROMs assembled from tests/cpu/roms/ exercise interrupt and
exception delivery in each mode (Intel SDM vol. 3, ch. 6). Each must print exactly the
expected text on COM1 under vmm, and the same bytes under QEMU's ISA PC with the same
CPU model and no local APIC (`-M isapc -cpu qemu64,-apic`, the machine vmm emulates)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QEMU_DETERMINISTIC, require_tool
from tests.cpu.rom import assemble_rom, rom_source
from vmm.config import MachineConfig, SerialConfig
from vmm.machine import Machine

PASS_STATUS = 33  # the ROMs write 0x10 to the exit port: (0x10 << 1) | 1

EXPECTED = {
    "realmode": (
        "real: int 0x42 through the IVT returned ax=1235 flags(IF,CF)=0001\nreal: IRQ0 woke hlt, ticks=0003\n"
    ),
    "protected": (
        # int 0x80 from CPL 3 lands on TSS.SS0:ESP0 (0x9000 less the five pushed dwords)
        "pm32: int 0x80 from ring 3: cs=0000001B ss=00000023 esp=00008FEC\n"
        "pm32: sysenter: cs=00000008 esp=00009800\n"
        "pm32: #GP error=00000000 from cs=0000001B\n"
    ),
    "longmode": (
        "long: #PF error=0000000000000000 cr2=0000000000400000 cs=0000000000000018\n"
        "long: #PF error=0000000000000003 cr2=0000000000005008 cs=0000000000000018\n"
        "long: syscall 0000000000000001 rcx=00000000000F01AC r11=0000000000000002 cs=0000000000000018\n"
        "long: syscall 0000000000000002 rcx=00000000000F01B3 r11=0000000000000002 cs=0000000000000018\n"
        "long: #PF error=0000000000000005 cr2=0000000000200000 cs=000000000000003B\n"
        "long: #DF error=0000000000000000 on IST1 stack rsp=0000000000009FD8\n"
    ),
}


def build(name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.bin"
    path.write_bytes(assemble_rom(rom_source(name)))
    return path


def boot(rom: Path, max_instructions: int = 50_000_000):
    machine = Machine(MachineConfig(bios=rom, serial=SerialConfig("none")))
    try:
        result = machine.run(max_instructions=max_instructions)
        return result, machine.serial_transcript.decode(), machine.cpu.instructions
    finally:
        machine.close()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rom_output_under_vmm(name, tmp_path):
    result, serial, _ = boot(build(name, tmp_path))
    assert serial == EXPECTED[name]
    assert (result.reason, result.status) == ("exit-port", PASS_STATUS)


def test_triple_fault_reports_the_fault_chain(tmp_path):
    result, serial, _ = boot(build("triple", tmp_path))
    assert serial == "triple: loading an empty IVT and raising int 3\n"
    assert result.reason == "triple-fault"
    # INT 3 cannot be delivered (IVT limit 0): #GP with the IDT-vector error code
    # (3 * 8 + 2), whose delivery fails the same way: #DF, and then shutdown.
    vectors = [(vector, error, software) for vector, error, _pc, software in result.fault_chain]
    # The first is the INT 3 instruction (a software interrupt), not a #BP exception.
    assert vectors == [(3, None, True), (13, 3 * 8 + 2, False), (8, 0, False)]


@pytest.mark.parametrize("name", ["realmode", "longmode"])
def test_two_runs_are_identical(name, tmp_path):
    rom = build(name, tmp_path)
    first, second = boot(rom), boot(rom)
    assert first[1] == second[1]
    assert first[2] == second[2]  # the same instruction count, to the instruction


def test_cli_exit_status_and_stages(tmp_path):
    rom = build("longmode", tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "vmm", "run", "--bios", str(rom), "--stages", "--max-insns", "10000000"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == PASS_STATUS, proc.stderr
    assert proc.stdout == EXPECTED["longmode"]
    assert "stage firmware" in proc.stderr


@pytest.mark.qemu
@pytest.mark.parametrize("name", sorted(EXPECTED) + ["triple"])
def test_same_output_under_qemu(name, tmp_path):
    qemu = require_tool("qemu-system-x86_64")
    rom = build(name, tmp_path)
    out = tmp_path / "serial.txt"
    proc = subprocess.run(
        [qemu, "-M", "isapc", "-cpu", "qemu64,-apic", "-m", "64", "-bios", str(rom), "-display", "none",
         "-serial", f"file:{out}", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot",
         *QEMU_DETERMINISTIC],
        timeout=60,
    )  # fmt: skip
    _, serial, _ = boot(rom)
    assert out.read_text() == serial
    if name != "triple":
        assert proc.returncode == PASS_STATUS


def test_cli_names_a_software_interrupt_in_the_fault_chain(tmp_path):
    """INT 10h with an empty IVT: the chain starts with the INT instruction, not with
    the exception that shares its vector (#MF)."""
    rom = tmp_path / "int10.bin"
    rom.write_bytes(
        assemble_rom("""
        xor ax, ax
        mov ss, ax
        mov sp, 0x7000
        lidt cs:[empty_ivt]
        int 0x10
        hlt
    empty_ivt:
        .word 0
        .long 0
    """)
    )
    proc = subprocess.run([sys.executable, "-m", "vmm", "run", "--bios", str(rom), "--serial", "none"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("vmm: triple fault after ")
    # The INT (CD 10) is at F000:000D; the CPU holds the address after it.
    assert lines[1] == "vmm:   INT 10h (software interrupt) returning to pc 0xf000f"
    assert lines[2] == "vmm:   #GP general protection error 0x82 at pc 0xf000f"
    assert lines[3] == "vmm:   #DF double fault error 0x0 at pc 0xf000f"
