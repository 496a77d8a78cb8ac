"""The KVM backend (vmm/cpu/kvm.py) against tiny guests assembled here, with a fake
platform standing in for the machine's buses and 8259A.

The guests are a few instructions each: /dev/kvm on the CI machines is a nested,
software-assisted KVM, slow on 16-bit code.
"""

from __future__ import annotations

import errno
import threading

import pytest

from tests.conftest import require_kvm
from tests.cpu.kvm_asm import ROM_BASE, reset_rom
from vmm.cpu.base import RunResult, StopReason
from vmm.cpu.state import EFER_LMA, MSR_IA32_TSC, RFLAGS_IF
from vmm.errors import BackendUnavailable
from vmm.memory import GuestMemory

pytestmark = pytest.mark.kvm

DEBUG_PORT = 0xE9
RAM_SIZE = 1 << 20


def run_to_stop(cpu, budget: int) -> RunResult:
    """Runs until the guest stops by itself (HLT, a request, a breakpoint...). On KVM an
    instruction budget is host time (budget / clock_mhz microseconds): on a loaded host a
    guest can use up a slice before it reaches its HLT, so a DEADLINE only means "run on"
    (bounded: 100 slices)."""
    for _ in range(100):
        result = cpu.run(budget)
        if result.reason != StopReason.DEADLINE:
            return result
    return result


class FakePlatform:
    """Records port and MMIO writes, answers reads, plays a one-line PIC."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.writes: list[tuple[int, int, int]] = []
        self.mmio_writes: list[tuple[int, int, int]] = []
        self.mmio_reads: list[tuple[int, int]] = []
        self.reads: list[tuple[int, int]] = []
        self.answers = {0x60: 0x5A, 0x1F0: 0xBEEF, 0xCF8: 0x12345678}
        self.vector = 0x20
        self.acks = 0
        self.cpu = None
        self.stop_after = stop_after

    @property
    def debug_output(self) -> bytes:
        return bytes(value for port, _size, value in self.writes if port == DEBUG_PORT)

    def io_read(self, port: int, size: int) -> int:
        self.reads.append((port, size))
        return self.answers.get(port, 0xFFFFFFFF)

    def io_write(self, port: int, size: int, value: int) -> None:
        self.writes.append((port, size, value))
        if self.stop_after is not None and len(self.debug_output) == self.stop_after:
            self.cpu.request_stop()

    def mmio_read(self, addr: int, size: int) -> int:
        self.mmio_reads.append((addr, size))
        return 0x77

    def mmio_write(self, addr: int, size: int, value: int) -> None:
        self.mmio_writes.append((addr, size, value))

    def interrupt_acknowledge(self) -> int:
        self.acks += 1
        self.cpu.set_irq_line(False)  # the PIC drops INTR once the IRQ is in service
        return self.vector


@pytest.fixture
def kvm():
    require_kvm()
    from vmm.cpu import kvm

    return kvm


@pytest.fixture
def make_cpu(kvm):
    made = []

    def make(source: str, platform: FakePlatform | None = None, memory: GuestMemory | None = None):
        rom = reset_rom(source)
        platform = platform or FakePlatform()
        memory = memory or GuestMemory(RAM_SIZE)
        cpu = kvm.KvmCpu(memory, platform, [(ROM_BASE, rom, True), (0xFFFF0000, rom, True)])
        platform.cpu = cpu
        made.append((cpu, memory))
        return cpu, platform

    yield make
    for cpu, memory in made:
        cpu.close()
        memory.close()


REAL_MODE_OUTPUT = """
    mov al, 'H'
    out 0xE9, al
    mov al, 'i'
    out 0xE9, al
    mov ax, cs
    mov ds, ax
    mov si, offset msg
    mov cx, 6
    mov dx, 0xE9
    cld
    rep outsb
    hlt
msg: .ascii " there"
"""


def test_real_mode_port_output_and_rep_outsb(make_cpu):
    cpu, platform = make_cpu(REAL_MODE_OUTPUT)
    result = run_to_stop(cpu, 10_000_000)
    assert result.reason == StopReason.HALT
    assert platform.debug_output == b"Hi there"
    assert all(size == 1 for _port, size, _value in platform.writes)
    state = cpu.get_state()
    assert state.halted and state.mode == "real"
    assert state.segments["cs"].selector == 0xF000 and state.segments["cs"].base == ROM_BASE
    assert cpu.instructions > 0


def test_port_input_of_each_size_and_rep_insb(make_cpu):
    cpu, platform = make_cpu("""
    xor ax, ax
    mov es, ax
    in al, 0x60
    out 0xE9, al
    mov dx, 0x1F0
    in ax, dx
    mov dx, 0x80
    out dx, ax
    mov dx, 0xCF8
    in eax, dx
    mov dx, 0x84
    out dx, eax
    mov di, 0x500
    mov cx, 3
    mov dx, 0x60
    cld
    rep insb
    mov si, 0x500
    mov ax, 0
    mov ds, ax
    mov cx, 3
    mov dx, 0xE9
    rep outsb
    hlt
""")
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT
    assert (0x60, 1) in platform.reads and (0x1F0, 2) in platform.reads and (0xCF8, 4) in platform.reads
    assert (0x80, 2, 0xBEEF) in platform.writes
    assert (0x84, 4, 0x12345678) in platform.writes
    assert platform.debug_output == b"\x5a" * 4
    assert cpu.memory.read(0x500, 3) == b"\x5a" * 3


LONG_MODE = """
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov di, 0x1000              # PML4, PDPT, PD at 0x1000, 0x2000, 0x3000
    mov cx, 0x1800
    cld
    rep stosw
    mov dword ptr [0x1000], 0x2003
    mov dword ptr [0x2000], 0x3003
    mov dword ptr [0x3000], 0x83  # one 2 MiB page at 0
    lgdt cs:[gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    .byte 0x66, 0xEA            # jmp far 0x08:pm32
    .long ROM + pm32
    .word 0x08
    .code32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x8000
    mov al, 'P'
    out 0xE9, al
    mov eax, cr4
    or eax, 0x20                # PAE
    mov cr4, eax
    mov eax, 0x1000
    mov cr3, eax
    mov ecx, 0xC0000080         # EFER.LME
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    or eax, 0x80000000          # PG
    mov cr0, eax
    .byte 0xEA                  # jmp far 0x18:lm64
    .long ROM + lm64
    .word 0x18
    .code64
lm64:
    xor ecx, ecx
1:  mov al, 'L'
    out 0xE9, al
    mov eax, ecx
    add al, '0'
    out 0xE9, al
    inc ecx
    cmp ecx, 4
    jne 1b
    mov rax, 0x1122334455667788
    mov dx, 0x84
    out dx, eax
    hlt
    .p2align 3
gdt:
    .quad 0
    # Accessed bits set: the CPU writes them into a descriptor it loads, and the GDT is
    # in read-only ROM (kvm_pvm then retries the write forever).
    .quad 0x00CF9B000000FFFF    # 0x08: 32-bit code
    .quad 0x00CF93000000FFFF    # 0x10: data
    .quad 0x00AF9B000000FFFF    # 0x18: 64-bit code
gdtr:
    .word 4 * 8 - 1
    .long ROM + gdt
    .code16
"""
LONG_MODE_OUTPUT = b"PL0L1L2L3"


def test_protected_then_long_mode_port_write(make_cpu):
    cpu, platform = make_cpu(LONG_MODE)
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT
    assert platform.debug_output == LONG_MODE_OUTPUT
    assert (0x84, 4, 0x55667788) in platform.writes
    state = cpu.get_state()
    assert state.mode == "long" and state.efer & EFER_LMA
    assert state.gprs["rax"] == 0x1122334455667788
    assert state.segments["cs"].selector == 0x18


INTERRUPT_GUEST = """
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word ptr [0x20 * 4], offset handler
    mov word ptr [0x20 * 4 + 2], 0xF000
    mov al, 'S'
    out 0xE9, al
    sti
    hlt
    mov al, 'A'
    out 0xE9, al
    cli
    hlt
handler:
    mov al, 'I'
    out 0xE9, al
    iret
"""


def test_interrupt_wakes_hlt_and_runs_the_ivt_handler(make_cpu):
    cpu, platform = make_cpu(INTERRUPT_GUEST)
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT
    assert platform.debug_output == b"S"
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT  # halted, no interrupt: stays halted
    assert platform.debug_output == b"S"
    cpu.set_irq_line(True)
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT
    assert platform.debug_output == b"SIA"
    assert platform.acks == 1
    state = cpu.get_state()
    assert state.halted and not state.rflags & RFLAGS_IF
    cpu.set_irq_line(True)  # IF clear: the halted CPU must not move
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT
    assert platform.debug_output == b"SIA" and platform.acks == 1


def test_interrupt_pending_while_if_clear_waits_for_the_window(make_cpu):
    cpu, platform = make_cpu("""
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word ptr [0x20 * 4], offset handler
    mov word ptr [0x20 * 4 + 2], 0xF000
    mov al, 'S'
    out 0xE9, al
    sti
1:  jmp 1b
handler:
    mov al, 'I'
    out 0xE9, al
    cli
    hlt
""")
    cpu.set_irq_line(True)  # pending from the start, while IF is clear
    assert run_to_stop(cpu, 100_000_000).reason == StopReason.HALT
    assert platform.debug_output == b"SI"
    assert platform.acks == 1
    assert cpu.stats["windows"] >= 1  # delivered through an interrupt-window exit


def test_state_round_trip_into_a_second_vcpu(make_cpu):
    whole, whole_platform = make_cpu(LONG_MODE)
    assert run_to_stop(whole, 10_000_000).reason == StopReason.HALT

    first, platform = make_cpu(LONG_MODE, FakePlatform(stop_after=4))
    assert run_to_stop(first, 10_000_000).reason == StopReason.REQUESTED
    assert platform.debug_output == LONG_MODE_OUTPUT[:4]
    state = first.get_state()
    assert state.mode == "long" and len(state.fxsave) == 512

    memory = GuestMemory(RAM_SIZE)
    memory.write(0, first.memory.read(0, RAM_SIZE))
    second, platform2 = make_cpu(LONG_MODE, memory=memory)
    second.set_state(state)
    restored = second.get_state().to_dict()
    del restored["msrs"][str(MSR_IA32_TSC)]  # the TSC keeps counting
    expected = state.to_dict()
    del expected["msrs"][str(MSR_IA32_TSC)]
    assert restored == expected
    assert run_to_stop(second, 10_000_000).reason == StopReason.HALT
    assert platform.debug_output + platform2.debug_output == whole_platform.debug_output == LONG_MODE_OUTPUT
    assert platform2.writes[-1] == (0x84, 4, 0x55667788)


def test_triple_fault_is_a_shutdown(make_cpu):
    # Protected mode with an empty IDT: UD2 -> #UD -> #GP -> #DF -> shutdown. (Not real mode,
    # nor INT n: kvm_pvm's instruction emulator ignores the IVT limit and fails on INT.)
    pm_prefix = LONG_MODE.split("    mov eax, cr4")[0]
    cpu, platform = make_cpu(
        pm_prefix
        + """
    lidt [ROM + idtr]
    ud2
    hlt
idtr:
    .word 0
    .long 0
"""
        + LONG_MODE[LONG_MODE.index("    .p2align 3") :]
    )
    result = run_to_stop(cpu, 100_000_000)
    assert platform.debug_output == b"P"
    assert result.reason == StopReason.SHUTDOWN
    assert "triple fault" in result.detail


def test_mmio_outside_ram_and_rom_writes_dropped(kvm):
    require_kvm()
    rom = reset_rom("""
    mov ax, 0x9000
    mov es, ax
    mov byte ptr es:[0x10], 0x42
    mov al, es:[0x20]
    out 0xE9, al
    mov byte ptr cs:[data], 0x99
    mov al, cs:[data]
    out 0xE9, al
    hlt
data: .byte 0x11
""")
    memory = GuestMemory(512 * 1024)  # 0x80000-0xEFFFF is not RAM: MMIO exits
    platform = FakePlatform()
    cpu = kvm.KvmCpu(memory, platform, [(ROM_BASE, rom, True), (0xFFFF0000, rom, True)])
    platform.cpu = cpu
    try:
        assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT
        assert platform.mmio_writes == [(0x90010, 1, 0x42)]
        assert platform.mmio_reads == [(0x90020, 1)]
        assert platform.debug_output == b"\x77\x11"
        assert cpu.stats["dropped_rom_writes"] == 1
    finally:
        cpu.close()
        memory.close()


def test_deadline_bounds_a_busy_guest_and_request_stop_from_another_thread(make_cpu):
    cpu, _platform = make_cpu("1:  jmp 1b")
    result = cpu.run(100_000)
    assert result.reason == StopReason.DEADLINE
    first = cpu.instructions
    assert first >= 100_000

    def stop_when_running() -> None:
        while not cpu._vcpu_struct.in_run:
            pass
        cpu.request_stop()

    thread = threading.Thread(target=stop_when_running)
    thread.start()
    assert cpu.run(10**15).reason == StopReason.REQUESTED
    thread.join()
    assert cpu.instructions > first
    assert cpu.run(1000).reason == StopReason.DEADLINE  # the request was consumed


def test_breakpoint_stops_before_the_instruction(make_cpu):
    cpu, platform = make_cpu("""
    mov al, 'a'
    out 0xE9, al
here:
    mov al, 'b'
    out 0xE9, al
    hlt
""")
    here = ROM_BASE + 4  # after mov al, imm8 (2 bytes) and out imm8, al (2 bytes)
    cpu.set_breakpoint(here)
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.BREAKPOINT
    assert platform.debug_output == b"a"
    assert cpu.get_state().pc == here
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT
    assert platform.debug_output == b"ab"


def test_reset_returns_to_the_reset_vector(make_cpu):
    cpu, platform = make_cpu(REAL_MODE_OUTPUT)
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT
    cpu.reset()
    state = cpu.get_state()
    assert state.rip == 0xFFF0 and state.segments["cs"].base == 0xFFFF0000 and not state.halted
    assert cpu.instructions == 0
    assert run_to_stop(cpu, 10_000_000).reason == StopReason.HALT
    assert platform.debug_output == b"Hi there" * 2


# ---- when KVM cannot be used ----


def _probe():
    try:
        from vmm.cpu import kvm_probe

        kvm_probe._bindings()
    except BackendUnavailable as exc:
        from tests.conftest import _missing

        _missing(f"vmm's KVM bindings ({exc})")
    return kvm_probe


def test_missing_device_says_what_to_do(monkeypatch, tmp_path):
    kvm_probe = _probe()
    monkeypatch.setattr(kvm_probe, "KVM_DEVICE", str(tmp_path / "kvm"))
    ok, reason = kvm_probe.kvm_available()
    assert not ok
    assert "does not exist" in reason and "load the kvm module" in reason
    with pytest.raises(BackendUnavailable, match="load the kvm module"):
        kvm_probe.open_kvm()


def test_permission_denied_says_join_the_kvm_group(monkeypatch):
    kvm_probe = _probe()

    def denied(path, flags):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(kvm_probe.os, "open", denied)
    ok, reason = kvm_probe.kvm_available()
    assert not ok and "add your user to the kvm group" in reason


def test_a_device_that_is_not_kvm(tmp_path):
    kvm_probe = _probe()
    fake = tmp_path / "kvm"
    fake.write_bytes(b"")
    ok, reason = kvm_probe.kvm_available(str(fake))
    assert not ok and "KVM API" in reason


def test_kvm_cpu_reports_unusable_device(monkeypatch, tmp_path):
    kvm_probe = _probe()
    from vmm.cpu import kvm

    monkeypatch.setattr(kvm_probe, "KVM_DEVICE", str(tmp_path / "kvm"))
    memory = GuestMemory(RAM_SIZE)
    try:
        with pytest.raises(BackendUnavailable, match=r"kvm does not exist"):
            kvm.KvmCpu(memory, FakePlatform(), [])
    finally:
        memory.close()


def test_available_here(kvm):
    from vmm.cpu.kvm_probe import kvm_available

    assert kvm_available() == (True, "")


def test_watch_user_mode_reports_cpl3(make_cpu):
    # LONG_MODE with user-accessible pages and ring-3 segments, then IRETQ to a CPL 3 loop.
    head = LONG_MODE.split("lm64:")[0].replace("0x2003", "0x2007").replace("0x3003", "0x3007").replace("0x83", "0x87")
    gdt = LONG_MODE[LONG_MODE.index("    .p2align 3") :]
    gdt = gdt.replace("    .word 4 * 8 - 1", "    .word 6 * 8 - 1").replace(
        "    .quad 0x00AF9B000000FFFF    # 0x18: 64-bit code\n",
        "    .quad 0x00AF9B000000FFFF    # 0x18: 64-bit code\n"
        "    .quad 0x00AFFB000000FFFF    # 0x20: 64-bit user code\n"
        "    .quad 0x00CFF3000000FFFF    # 0x28: user data\n",
    )
    cpu, platform = make_cpu(
        head
        + """lm64:
    mov al, 'K'
    out 0xE9, al
    push 0x2B
    push 0x7000
    push 0x2
    push 0x23
    mov rax, offset user + ROM
    push rax
    iretq
user:
1:  jmp 1b
"""
        + gdt
    )
    cpu.watch_user_mode(True)
    result = cpu.run(1_000_000)
    for _ in range(100):
        if result.reason != StopReason.DEADLINE:
            break
        result = cpu.run(1_000_000)
    assert result.reason == StopReason.USER
    assert platform.debug_output == b"PK"
    assert cpu.get_state().cpl == 3
    cpu.watch_user_mode(False)
    assert cpu.run(10_000).reason == StopReason.DEADLINE
