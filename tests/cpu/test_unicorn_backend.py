"""The Unicorn backend on its own: a stub platform records port writes and answers the
interrupt acknowledge, so each behaviour of the native glue is checked in isolation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cpu.rom import assemble_rom
from vmm.cpu.base import StopReason
from vmm.cpu.unicorn import PhysRegion, UnicornCpu
from vmm.memory import GuestMemory

ROOT = Path(__file__).resolve().parents[2]

RAM = 16 << 20


class StubPlatform:
    def __init__(self) -> None:
        self.out: list[tuple[int, int]] = []
        self.vector = 0x20
        self.acks = 0
        self.cpu: UnicornCpu | None = None

    def io_read(self, port: int, size: int) -> int:
        return 0x5A if port == 0x1234 else 0xFF

    def io_write(self, port: int, size: int, value: int) -> None:
        self.out.append((port, value))
        if port == 0xF4:
            self.cpu.request_stop()

    def mmio_read(self, addr: int, size: int) -> int:
        return 0

    def mmio_write(self, addr: int, size: int, value: int) -> None:
        pass

    def interrupt_acknowledge(self) -> int:
        self.acks += 1
        self.cpu.set_irq_line(False)
        return self.vector

    def bytes_to(self, port: int) -> bytes:
        return bytes(value & 0xFF for p, value in self.out if p == port)


def make_cpu(body: str) -> tuple[UnicornCpu, StubPlatform, GuestMemory]:
    rom = assemble_rom(body)
    memory = GuestMemory(RAM)
    platform = StubPlatform()
    regions = [
        PhysRegion(0, 0xF0000, "ram", 0),
        PhysRegion(0xF0000, 0x10000, "rom", data=rom),
        PhysRegion(0x100000, RAM - 0x100000, "ram", 0x100000),
        PhysRegion(RAM, 0xFFFF0000 - RAM, "hole"),
        PhysRegion(0xFFFF0000, 0x10000, "rom", data=rom),
    ]
    cpu = UnicornCpu(memory, platform, regions)
    platform.cpu = cpu
    return cpu, platform, memory


LOOP = """
    mov ecx, 100000
1:  dec ecx
    jnz 1b
    mov al, 1
    out 0xF4, al
    hlt
"""


def test_reset_state_is_architectural():
    cpu, _, _ = make_cpu(LOOP)
    state = cpu.get_state()
    assert state.mode == "real"
    assert (state.segments["cs"].selector, state.segments["cs"].base, state.rip) == (0xF000, 0xFFFF0000, 0xFFF0)
    assert state.pc == 0xFFFFFFF0
    assert state.cr0 == 0x60000010


def test_instruction_count_is_exact_and_deadlines_split_runs_exactly():
    cpu, platform, _ = make_cpu(LOOP)
    assert cpu.run(10**9).reason == StopReason.REQUESTED
    whole = cpu.instructions
    # far jmp + mov + 2 * 100000 loop instructions + mov, out: the stop the OUT asks for
    # comes right after it (the HLT after it does not run, and is not counted).
    assert whole == 1 + 1 + 2 * 100000 + 2
    assert cpu.run(10).reason == StopReason.HALT  # resumed: the HLT is next
    assert cpu.instructions == whole + 1
    cpu.instructions = whole
    cpu2, _, _ = make_cpu(LOOP)
    slices = 0
    before = 0
    while cpu2.run(997).reason == StopReason.DEADLINE:
        slices += 1
        # A slice stops at the first block boundary at or past its deadline: the loop's
        # blocks are two instructions, so it overshoots by at most one.
        assert 997 <= cpu2.instructions - before <= 998
        before = cpu2.instructions
    assert cpu2.instructions == whole
    assert slices > 100


def test_step_executes_exactly_n_instructions():
    cpu, _, _ = make_cpu(LOOP)
    cpu.step(1)
    assert cpu.get_state().pc == 0xF0000  # the reset vector's far jump
    cpu.step(3)
    assert cpu.instructions == 4
    assert cpu.get_state().gprs["rcx"] == 100000 - 1


def test_port_io_reaches_the_platform():
    cpu, platform, _ = make_cpu("""
        mov dx, 0x1234
        in al, dx
        out 0xE9, al
        mov al, 1
        out 0xF4, al
        hlt
    """)
    cpu.run(10**6)
    assert platform.bytes_to(0xE9) == b"\x5a"


def test_hlt_stops_with_halt_and_irq_is_delivered_through_the_ivt():
    cpu, platform, memory = make_cpu("""
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x7000
        mov word ptr [0x20 * 4], offset handler
        mov word ptr [0x20 * 4 + 2], 0xF000
        sti
        hlt
        mov al, 'B'
        out 0xE9, al
        mov al, 1
        out 0xF4, al
        hlt
    handler:
        mov al, 'A'
        out 0xE9, al
        iret
    """)
    assert cpu.run(10**6).reason == StopReason.HALT
    assert platform.bytes_to(0xE9) == b""
    cpu.set_irq_line(True)
    assert cpu.run(10**6).reason == StopReason.REQUESTED
    assert platform.bytes_to(0xE9) == b"AB"  # the handler ran, then execution resumed after HLT
    assert platform.acks == 1


def test_irq_waits_for_interrupts_enabled():
    cpu, platform, _ = make_cpu("""
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x7000
        mov word ptr [0x20 * 4], offset handler
        mov word ptr [0x20 * 4 + 2], 0xF000
        cli
        mov al, '1'
        out 0xE9, al
        sti
        nop
        mov al, '2'
        out 0xE9, al
        mov al, 1
        out 0xF4, al
        hlt
    handler:
        mov al, 'I'
        out 0xE9, al
        iret
    """)
    cpu.set_irq_line(True)
    cpu.run(10**6)
    assert platform.bytes_to(0xE9) == b"1I2"


def test_state_round_trip_into_a_fresh_cpu():
    cpu, platform, memory = make_cpu(LOOP)
    cpu.run(5001)
    state = cpu.get_state()
    count = cpu.instructions
    other, other_platform, other_memory = make_cpu(LOOP)
    other_memory.write(0, memory.read(0, RAM))
    other.set_state(state)
    other.instructions = count
    assert other.get_state() == state
    other.run(10**9)
    cpu.run(10**9)
    assert other.instructions == cpu.instructions


def test_a20_disabled_wraps_at_one_megabyte():
    cpu, platform, memory = make_cpu("""
        mov ax, 0xFFFF
        mov ds, ax
        mov byte ptr [0x10], 0x77      # linear 0x100000, or 0x0 with A20 masked
        mov al, 1
        out 0xF4, al
        hlt
    """)
    cpu.set_a20(False)
    cpu.run(10**6)
    assert memory.read_u8(0) == 0x77 and memory.read_u8(0x100000) == 0


def test_unbacked_addresses_read_all_ones():
    cpu, platform, _ = make_cpu("""
        mov ax, 0
        mov ds, ax
        mov eax, 0x8000000              # 128 MiB: beyond the 16 MiB of RAM
        mov ebx, [eax]
        mov dword ptr [eax], 0
        mov ebx, [eax]
        mov al, bl
        out 0xE9, al
        mov al, 1
        out 0xF4, al
        hlt
    """)
    cpu.run(10**6)
    assert platform.bytes_to(0xE9) == b"\xff"
    assert cpu.stats["unclaimed"] >= 3


@pytest.mark.parametrize("vector", [0x08, 0x70])
def test_cpuid_hides_the_apic(vector):
    cpu, platform, _ = make_cpu("""
        mov eax, 1
        cpuid
        shr edx, 9
        mov al, dl
        and al, 1
        out 0xE9, al
        shr ecx, 31
        mov al, cl
        out 0xE9, al
        mov al, 1
        out 0xF4, al
        hlt
    """)
    cpu.run(10**6)
    assert platform.bytes_to(0xE9) == b"\x00\x01"  # no APIC; the hypervisor bit set


def test_rdtsc_follows_virtual_time_not_the_host():
    body = """
        rdtsc
        mov ebx, eax
        mov ecx, 1000
    1:  dec ecx
        jnz 1b
        rdtsc
        sub eax, ebx
        out 0xE9, al
        shr eax, 8
        out 0xE9, al
        mov al, 1
        out 0xF4, al
        hlt
    """
    deltas = []
    for _ in range(2):
        cpu, platform, _ = make_cpu(body)
        cpu.run(10**6)
        low, high = platform.bytes_to(0xE9)
        deltas.append(low | high << 8)
    # 1 GHz TSC at 100 virtual MHz: 10 ticks per instruction; the blocks between the two
    # RDTSCs hold about 2000 instructions (counted as each block is entered).
    assert deltas[0] == deltas[1]
    assert 2000 * 10 <= deltas[0] <= 2010 * 10


def test_refuses_another_unicorn_version():
    from vmm.cpu.unicorn_engine import check_version
    from vmm.errors import CpuError

    check_version(2 << 24 | 1 << 16 | 4 << 8, "libunicorn.so.2")  # what `make` installs
    with pytest.raises(CpuError, match="vmm needs unicorn 2.1.4 .* found 2.0.0"):
        check_version(2 << 24, "libunicorn.so.2")


def test_the_run_path_does_not_import_the_binding():
    # Importing unicorn's Python binding costs ~10 ms of every start: vmm boots without
    # it, and the debugger's hooks get it on the same engine.
    code = (
        "import sys; from tests.cpu.test_unicorn_backend import make_cpu, LOOP\n"
        "cpu, _, _ = make_cpu(LOOP); cpu.run(1000)\n"
        "assert 'unicorn' not in sys.modules, sorted(m for m in sys.modules if m.startswith('unicorn'))\n"
        "cpu.engine.hook_del(cpu.engine.hook_add(1 << 2, lambda *a: None))  # UC_HOOK_CODE\n"
        "assert 'unicorn' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_step_after_a_run_still_stops_after_n_instructions():
    # The loop's blocks are translated (without Unicorn's counting hook) by the first run;
    # a later step(N) must still retire exactly N instructions.
    cpu, _, _ = make_cpu(LOOP)
    cpu.run(1001)
    before = cpu.get_state().gprs["rcx"]
    cpu.step(200)
    assert cpu.get_state().gprs["rcx"] == before - 100  # dec/jnz: two instructions an iteration


def test_registers_msrs_and_the_fxsave_image_round_trip():
    # vmm reads and writes Unicorn's registers through its own glue (csrc/uc_engine.c),
    # not the binding: 8-byte registers, 10-byte x87 registers, 16-byte XMM registers and
    # MSRs must come back as they went in (a snapshot is exactly this round trip).
    cpu, _, _ = make_cpu(LOOP)
    state = cpu.get_state()
    state.gprs = {name: 0x1111111111111111 * (i + 1) & 0xFFFFFFFFFFFFFFFF for i, name in enumerate(state.gprs)}
    state.msrs = {0x174: 0x10, 0x175: 0xFFFF800000001000, 0x176: 0xFFFF800000002000, 0x277: 0x0007040600070406,
                  0xC0000081: 0x0023001000000000, 0xC0000082: 0xFFFF800000003000, 0xC0000083: 0xFFFF800000004000,
                  0xC0000084: 0x47700, 0xC0000102: 0xFFFF800000005000, 0xC0000103: 7}  # fmt: skip
    image = bytearray(512)
    image[0:2] = (0x037F).to_bytes(2, "little")  # FCW
    image[2:4] = (0x0041).to_bytes(2, "little")  # FSW, TOP = 0
    image[4] = 0b1010_0101  # abridged tag: ST0, ST2, ST5, ST7 valid
    image[24:28] = (0x1F80 | 0x0020).to_bytes(4, "little")  # MXCSR
    image[28:32] = (0xFFFF).to_bytes(4, "little")  # MXCSR_MASK, as vmm writes it
    for i in range(8):
        image[32 + 16 * i : 40 + 16 * i] = (0x8000000000000000 | (0x0123456789ABCDEF * (i + 1))).to_bytes(8, "little")
        image[40 + 16 * i : 42 + 16 * i] = (0x3FFF + i | (0x8000 if i % 2 else 0)).to_bytes(2, "little")
    for i in range(16):
        image[160 + 16 * i : 176 + 16 * i] = bytes((i * 16 + k) & 0xFF for k in range(16))
    state.fxsave = bytes(image)
    cpu.set_state(state)
    again = cpu.get_state()
    assert again.gprs == state.gprs
    assert again.msrs == state.msrs
    assert again.fxsave == state.fxsave
