"""vmm's patched libunicorn (csrc/unicorn/*.patch, built by `make`): the x87 block that
crashed Unicorn 2.1.4, stores that no longer take the slow path but still catch
self-modifying code, and a CPU-core crash reported in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cpu.rom import assemble_rom
from tests.cpu.test_unicorn_backend import StubPlatform, make_cpu
from vmm.cpu.base import StopReason
from vmm.cpu.unicorn import PhysRegion, UnicornCpu
from vmm.memory import GuestMemory

VMM = Path(sys.executable).with_name("vmm")
EXIT_PASS = 33  # (PASS << 1) | 1 through the isa-debug-exit port

X87_BLOCK = """
    fninit
    .rept 1500
    fld st(0)
    fxch st(3)
    fadd st, st(2)
    .endr
    mov al, PASS
    out 0xF4, al
    hlt
"""


def test_a_long_block_of_x87_register_instructions_runs_to_completion(tmp_path):
    # ~300 consecutive x87 register instructions overran TCG's temporaries and killed
    # Unicorn 2.1.4 (and vmm with it) with SIGSEGV; run in a child so a crash is a failure.
    rom = tmp_path / "x87.bin"
    rom.write_bytes(assemble_rom(X87_BLOCK))
    result = subprocess.run([str(VMM), "run", "--bios", str(rom), "--serial", "none"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert (result.returncode, result.stderr) == (EXIT_PASS, "")


def test_x87_block_counts_every_instruction():
    cpu, _, _ = make_cpu(X87_BLOCK)
    assert cpu.run(10**7).reason == StopReason.REQUESTED
    # far jmp, fninit, 3 * 1500 x87 instructions, mov and out: the exit port's stop
    # comes right after the OUT (0005), the HLT neither runs nor counts.
    assert cpu.instructions == 1 + 1 + 3 * 1500 + 2


STORES = """
    xor ax, ax
    mov ds, ax
    mov edx, 20
2:  mov esi, 0x10000
    mov ecx, 0x4000
1:  add dword ptr [esi], ecx
    xor dword ptr [esi + 4], edx
    add esi, 8
    dec ecx
    jnz 1b
    dec edx
    jnz 2b
    mov al, 1
    out 0xF4, al
    hlt
"""


def test_store_heavy_guest_keeps_its_instruction_count_and_results():
    cpu, _, memory = make_cpu(STORES)
    assert cpu.run(10**8).reason == StopReason.REQUESTED
    # The PyPI wheel's unpatched libunicorn counted 1,638,487: the same instructions and
    # the HLT after the exit port, counted with its block though it never ran (0005
    # stops right after the OUT).
    assert cpu.instructions == 1_638_486
    first = int.from_bytes(memory.read(0x10000, 4), "little")
    second = int.from_bytes(memory.read(0x10004, 4), "little")
    assert (first, second) == (20 * 0x4000, 20)  # 20 ^ 19 ^ ... ^ 1 == 20
    last = int.from_bytes(memory.read(0x10000 + 8 * 0x3FFF, 4), "little")
    assert last == 20 * 1


SELF_MODIFYING = """
    xor ax, ax
    mov ds, ax
    mov es, ax
    # Copy `mov al, 0x11; retf` to 0x7000 and call it: its page now holds code.
    mov dword ptr [0x7000], 0x90CB11B0
    lcall 0x0000, 0x7000
    mov bl, al
    # A store from another block to the same page rewrites the immediate.
    mov byte ptr [0x7001], 0x22
    lcall 0x0000, 0x7000
    mov bh, al
    # A store into the block that is running: the next instruction changes.
    mov byte ptr cs:[patched + 1], 0x33
patched:
    mov cl, 0x44
    mov al, bl
    out 0xE9, al
    mov al, bh
    out 0xE9, al
    mov al, cl
    out 0xE9, al
    mov al, 1
    out 0xF4, al
    hlt
"""


def test_stores_into_translated_code_still_take_effect():
    # The ROM is a writable shadow at F0000 (vmm has no chipset write protection), so
    # the running block can patch itself.
    cpu, platform, _ = make_cpu(SELF_MODIFYING)
    assert cpu.run(10**6).reason == StopReason.REQUESTED
    assert platform.bytes_to(0xE9) == b"\x11\x22\x33"


def test_a_crash_of_the_cpu_core_is_reported_in_one_line():
    # What a SIGSEGV inside libunicorn looks like to the user: one line on stderr, and
    # the process still dies of the signal.
    child = (
        "import os, signal\n"
        "from tests.cpu.test_unicorn_backend import make_cpu, LOOP\n"
        "cpu, _, _ = make_cpu(LOOP)\n"
        "os.kill(os.getpid(), signal.SIGSEGV)\n"
    )
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert result.returncode == -11
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vmm: fatal: the process died of SIGSEGV")


LOOP_100K = """
    mov ecx, 100000
1:  dec ecx
    jnz 1b
    mov al, 1
    out 0xF4, al
    hlt
"""


def test_instructions_are_counted_in_translated_code():
    # 0003: the translated code counts; the glue is called only at a deadline, an IRQ,
    # a watched block... not once per block as with the former block hook.
    cpu, _, _ = make_cpu(LOOP_100K)
    assert cpu.run(10**9).reason == StopReason.REQUESTED
    assert cpu.instructions == 1 + 1 + 2 * 100_000 + 2  # the stop comes right after the OUT
    assert cpu.stats["block_start_calls"] <= 3


def test_a_deadline_splits_the_count_exactly_where_the_block_hook_did():
    cpu, _, _ = make_cpu(LOOP_100K)
    # Whole blocks: a run stops at the first block boundary at or past its deadline.
    assert cpu.run(1001).reason == StopReason.DEADLINE
    assert cpu.instructions == 1002  # far jmp + mov (1 block), then 2-instruction blocks
    assert cpu.run(10**9).reason == StopReason.REQUESTED
    assert cpu.instructions == 1 + 1 + 2 * 100_000 + 2  # the stop comes right after the OUT


IRQ_UNDER_CLI = """
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word ptr [0x20 * 4], offset handler
    mov word ptr [0x20 * 4 + 2], 0xF000
    cli
    mov ecx, 50000
1:  dec ecx
    jnz 1b
    mov ecx, 1000
2:  loop 2b
    mov al, '1'
    out 0xE9, al
    pushf
    pop ax
    or ax, 0x200
    push ax
    popf
    mov al, '2'
    out 0xE9, al
    cli
    mov al, '3'
    out 0xE9, al
    sti
    mov al, '4'
    out 0xE9, al
    mov al, 1
    out 0xF4, al
    hlt
handler:
    push ax
    mov al, 'I'
    out 0xE9, al
    pop ax
    iret
"""


def test_an_irq_raised_under_cli_is_taken_right_after_popf_or_sti():
    # While the line is high and IF clear, the glue looks only at blocks entered other
    # than by a direct jump (after POPF, STI, IRET...), not at every block of the loops.
    cpu, platform, _ = make_cpu(IRQ_UNDER_CLI)
    cpu.set_irq_line(True)
    assert cpu.run(10**8).reason == StopReason.REQUESTED
    assert platform.bytes_to(0xE9) == b"1I234"
    assert platform.acks == 1
    assert cpu.stats["block_start_calls"] < 100
    # Without the POPF, IF stays clear until the STI: taken after its one-instruction
    # shadow.
    cpu2, platform2, _ = make_cpu(IRQ_UNDER_CLI.replace("    popf\n", "    pop ax\n"))
    cpu2.set_irq_line(True)
    assert cpu2.run(10**8).reason == StopReason.REQUESTED
    assert platform2.bytes_to(0xE9) == b"123I4"


LOOPS = """
    mov ecx, 0x10005
    xor ax, ax
1:  inc ax
    loop 1b                 # 16-bit address size: CX only
    out 0xE9, al            # 5
    shr ecx, 16
    mov al, cl
    out 0xE9, al            # 1: ECX's high half untouched
    mov ecx, 0x10003
    xor ax, ax
2:  inc ax
    addr32 loop 2b          # ECX
    out 0xE9, al            # 0x03 + 0x10000 iterations: low byte 3
    mov cx, 10
    xor bx, bx
3:  inc bx
    cmp bx, 4
    loopnz 3b               # ends on ZF = 1 with CX = 6
    jnz 9f                  # the flags of the CMP survive the block's end
    mov al, bl
    out 0xE9, al            # 4
    mov al, cl
    out 0xE9, al            # 6
    mov cx, 7
    xor si, si
4:  inc si
    cmp si, si
    loopz 4b                # ZF stays 1: runs out CX
    mov ax, si
    out 0xE9, al            # 7
    xor cx, cx
    jcxz 5f
    jmp 9f
5:  mov cx, 1
    jcxz 9f
    mov al, 0xAA
    out 0xE9, al
    mov al, 1
    out 0xF4, al
    hlt
9:  mov al, 0xEE
    out 0xE9, al
    mov al, 1
    out 0xF4, al
    hlt
"""


def test_loop_instructions_keep_their_results_and_counts():
    # 0004: LOOP/LOOPZ/LOOPNZ/JCXZ chain to the next block instead of returning to
    # Unicorn's loop; what they compute, the flags after them and the count stay.
    cpu, platform, _ = make_cpu(LOOPS)
    assert cpu.run(10**8).reason == StopReason.REQUESTED
    assert platform.bytes_to(0xE9) == bytes([5, 1, 3, 4, 6, 7, 0xAA])
    assert cpu.instructions == 131_150  # as without 0004 (less the HLT after the exit port: 0005)


MMIO_WRITES = """
    mov ax, 0xA000
    mov ds, ax
    mov byte ptr [0], 1
    mov byte ptr [1], 2
    mov al, 1
    out 0xF4, al
    hlt
"""


def test_an_mmio_access_whose_handler_stops_the_run_happens_once():
    # 0005: without Unicorn's exit test after each access, a stop asked for by an MMIO
    # handler acts at the end of the block. The test used to leave right after the
    # access with EIP back at the accessing instruction, which ran again on resume: the
    # device saw the write twice.
    class Device(StubPlatform):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[tuple[int, int]] = []

        def mmio_write(self, addr: int, size: int, value: int) -> None:
            self.writes.append((addr, value))
            if len(self.writes) == 1:
                self.cpu.request_stop()

    memory = GuestMemory(16 << 20)
    platform = Device()
    rom = assemble_rom(MMIO_WRITES)
    cpu = UnicornCpu(memory, platform, [
        PhysRegion(0, 0xA0000, "ram", 0),
        PhysRegion(0xA0000, 0x10000, "device"),
        PhysRegion(0xB0000, 0x40000, "ram", 0xB0000),
        PhysRegion(0xF0000, 0x10000, "rom", data=rom),
        PhysRegion(0x100000, (16 << 20) - 0x100000, "ram", 0x100000),
        PhysRegion(16 << 20, 0xFFFF0000 - (16 << 20), "hole"),
        PhysRegion(0xFFFF0000, 0x10000, "rom", data=rom),
    ])  # fmt: skip
    platform.cpu = cpu
    stops = 0
    while (result := cpu.run(10**6)).reason == StopReason.REQUESTED:
        stops += 1
    # One stop: the device's acts at the end of the block, after the exit port's OUT.
    assert result.reason == StopReason.HALT and stops == 1
    assert platform.writes == [(0xA0000, 1), (0xA0001, 2)]
    assert platform.bytes_to(0xF4) == b"\x01"
