"""Guests that misbehave, and the limits that must hold against them (issue 23): what
`vmm run` prints and its exit status."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cpu.rom import assemble_rom

EMPTY_IDT = """
empty_idt:
    .word 0
    .long 0
"""

# #UD (through ud2 or int 6) handled by an IVT entry, then a triple fault: an empty IDT
# turns int3 into #GP, #DF, shutdown.
UD_THEN_TRIPLE_FAULT = (
    """
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word ptr [6*4], offset ud_handler
    mov word ptr [6*4+2], 0xF000
    {raise_ud}
    {raise_ud}
    lidt cs:[empty_idt]
    int3
    mov al, 0x7F
    out 0xF4, al
    hlt
ud_handler:
    push bp
    mov bp, sp
    add word ptr [bp+2], {skip}
    pop bp
    iret
"""
    + EMPTY_IDT
)

TRIPLE_FAULT = (
    """
    lidt cs:[empty_idt]
    int3
"""
    + EMPTY_IDT
)

TWO_EXITS = """
    mov al, 0
    out 0xF4, al
    mov al, 1
    out 0xF4, al
    hlt
"""

LOOP = """
1:  jmp 1b
"""


def rom(tmp_path, body: str) -> str:
    path = tmp_path / "rom.bin"
    path.write_bytes(assemble_rom(body))
    return str(path)


def vmm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vmm", "run", "--serial", "none", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(("raise_ud", "skip"), [("ud2", 2), ("int 6", 0)])
def test_triple_fault_after_a_handled_ud_is_still_caught(tmp_path, raise_ud, skip):
    done = vmm(
        "--bios", rom(tmp_path, UD_THEN_TRIPLE_FAULT.format(raise_ud=raise_ud, skip=skip)), "--max-insns", "1000000"
    )
    assert done.returncode == 3, done.stderr
    chain = done.stderr.splitlines()[1:]
    assert len(chain) == 3 and "#BP breakpoint" in chain[0], done.stderr
    assert chain[1:] == [
        "vmm:   #GP general protection error 0x1a at pc 0xf0020",
        "vmm:   #DF double fault error 0x0 at pc 0xf0020",
    ]


def test_two_exit_port_writes_in_one_block_the_first_wins(tmp_path):
    done = vmm("--bios", rom(tmp_path, TWO_EXITS))
    assert done.returncode == 1, done.stderr  # (0 << 1) | 1, as QEMU's isa-debug-exit


def test_timeout_stops_a_guest_that_triple_faults_in_a_loop(tmp_path):
    done = vmm("--bios", rom(tmp_path, TRIPLE_FAULT), "--on-triple-fault", "reset", "--timeout", "0.5")
    assert done.returncode == 124
    assert done.stderr.splitlines()[-1] == "vmm: stopped after 0.5 s of wall time"
    assert done.stderr.count("vmm: triple fault: resetting") > 1


def test_max_insns_stops_a_guest_that_triple_faults_in_a_loop(tmp_path):
    done = vmm("--bios", rom(tmp_path, TRIPLE_FAULT), "--on-triple-fault", "reset", "--max-insns", "3000")
    assert done.returncode == 124
    assert done.stderr.splitlines()[-1] == "vmm: stopped after 3,000 instructions"


@pytest.mark.parametrize(
    ("flag", "value", "line"),
    [
        ("--max-insns", "200000", "stopped after 200,000 instructions"),
        ("--timeout", "0.5", "stopped after 0.5 s of wall time"),
    ],
)
def test_gdb_without_a_debugger_honours_the_limits(tmp_path, flag, value, line):
    done = vmm("--bios", rom(tmp_path, LOOP), "--gdb", "127.0.0.1:0", flag, value)
    assert done.returncode == 124, done.stderr
    assert done.stderr.splitlines()[-1] == f"vmm: {line}"


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "0", "soon"])
def test_timeout_must_be_a_positive_finite_number(tmp_path, value):
    done = vmm("--bios", rom(tmp_path, LOOP), f"--timeout={value}")
    assert done.returncode == 2
    assert done.stderr == f"vmm: --timeout: {value!r} is not a number of seconds above zero\n"


def test_a_state_loaded_after_a_triple_fault_runs_and_faults_afresh(tmp_path):
    """Loading a CPU state leaves no exception in flight: before, the #DF left over from
    the first triple fault sent the second one unnoticed and the guest ran on."""
    from vmm.config import MachineConfig, SerialConfig
    from vmm.machine import Machine

    machine = Machine(MachineConfig(memory_mb=16, serial=SerialConfig("none"), bios=rom(tmp_path, TRIPLE_FAULT)))
    at_reset = machine.cpu.get_state()
    first = machine.run(max_instructions=1000)
    machine.cpu.set_state(at_reset)
    before = machine.cpu.instructions
    second = machine.run(max_instructions=1000)
    assert (first.reason, second.reason) == ("triple-fault", "triple-fault")
    assert machine.cpu.instructions - before == 3
    assert [vector for vector, *_ in second.fault_chain] == [3, 13, 8]
