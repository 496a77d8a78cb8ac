"""Every instruction that reads time or entropy answers from machine state on Unicorn:
RDRAND and RDSEED from the machine's seeded generator (splitmix64, saved with the machine),
RDTSCP and RDPID from the virtual TSC and the guest's IA32_TSC_AUX, and CPUID from vmm's
own table (nothing read from the host). Each ROM stores what the instructions returned
in RAM; the test reads it back."""

from __future__ import annotations

import pytest

from tests.cpu.rom import assemble_rom
from vmm.config import MachineConfig, SerialConfig
from vmm.machine import Machine

MASK64 = (1 << 64) - 1
TSC_AUX = 0x2A5


def splitmix64(seed: int):
    """The generator RDRAND and RDSEED answer from (csrc/uc_glue.c next_random)."""
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        yield z ^ (z >> 31)


LONG_MODE = """
    # identity-map the first 2 MiB with one large page, then long mode
    xor ax, ax
    mov es, ax
    mov dword ptr es:[0x10000 - 0x10000], 0
    mov ax, 0x1000
    mov es, ax
    xor di, di
    xor eax, eax
    mov cx, 0x3000 / 4
    rep stosd
    mov dword ptr es:[0x0000], 0x11003     # PML4[0] -> PDPT
    mov dword ptr es:[0x1000], 0x12003     # PDPT[0] -> PD
    mov dword ptr es:[0x2000], 0x83        # PD[0]: 2 MiB page at 0
    xor ax, ax
    mov es, ax
    lgdt cs:[gdtr]
    mov eax, 0x20                   # CR4.PAE
    mov cr4, eax
    mov eax, 0x10000
    mov cr3, eax
    mov ecx, 0xC0000080             # EFER.LME
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    or eax, 0x80000001              # PG | PE
    mov cr0, eax
    .byte 0x66, 0xEA
    .long long64 + ROM
    .word 0x08
"""

GDT = """
    .p2align 3
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        # 0x08: 64-bit code
gdt_end:
gdtr:
    .word gdt_end - gdt - 1
    .long gdt + ROM
"""

# Results at 0x600 (see the stores); exit with status 33.
PROBE = f"""
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov ecx, 0xC0000103             # IA32_TSC_AUX
    mov eax, {TSC_AUX}
    xor edx, edx
    wrmsr
    rdrand eax                      # 32-bit operand (66h prefix in 16-bit code)
    mov [0x600], eax
    setc byte ptr [0x660]
    rdrand ax                       # 16-bit: the upper half of EAX stays
    mov [0x604], eax
    rdseed ebx
    mov [0x608], ebx
    setc byte ptr [0x661]
    rdtsc
    mov [0x640], eax
    mov [0x644], edx
    rdtscp
    mov [0x610], eax
    mov [0x614], edx
    mov [0x618], ecx
    xor eax, eax
    rdpid eax
    mov [0x61C], eax
{LONG_MODE}
    .code64
long64:
    rdrand rax
    mov [0x620], rax
    rdrand r9
    mov [0x628], r9
    mov rax, -1
    rdpid rax                       # 64-bit in 64-bit mode: TSC_AUX zero-extended
    mov [0x630], rax
    rdseed r10w
    mov [0x638], r10
    mov al, 0x10
    out 0xF4, al
    hlt
    .code16
{GDT}
"""

# RDRAND in a loop, each value stored at 0x800 + 4 * i: for save and restore midway.
LOOP = """
    cli
    xor ax, ax
    mov ds, ax
    mov di, 0x800
    mov cx, 256
1:  rdrand eax
    mov [di], eax
    add di, 4
    loop 1b
    mov al, 0x10
    out 0xF4, al
    hlt
"""


def machine(tmp_path, body: str, seed: int = 0) -> Machine:
    rom = tmp_path / "rom.bin"
    rom.write_bytes(assemble_rom(body))
    return Machine(MachineConfig(bios=rom, serial=SerialConfig("none"), rng_seed=seed))


def probe(tmp_path, seed: int = 0) -> dict[str, int]:
    m = machine(tmp_path, PROBE, seed)
    try:
        result = m.run(max_instructions=1_000_000)
        assert (result.reason, result.status) == ("exit-port", 33), result

        def u(addr: int, size: int = 4) -> int:
            return int.from_bytes(m.memory.read(addr, size), "little")

        return {
            "rdrand32": u(0x600), "rdrand16": u(0x604), "rdseed32": u(0x608), "cf": u(0x660, 2),
            "tsc": u(0x640, 8), "rdtscp": u(0x610) | u(0x614) << 32, "rdtscp_ecx": u(0x618), "rdpid32": u(0x61C),
            "rdrand64": u(0x620, 8), "rdrand_r9": u(0x628, 8), "rdpid64": u(0x630, 8), "rdseed16": u(0x638, 8),
            "instructions": m.cpu.instructions, "random_reads": m.cpu.stats["random_reads"],
        }  # fmt: skip
    finally:
        m.close()


@pytest.mark.parametrize("seed", [0, 0xDEADBEEF])
def test_rdrand_and_rdseed_answer_from_the_machines_seeded_generator(tmp_path, seed):
    values = splitmix64(seed)
    first, second, third, fourth, fifth, sixth = (next(values) for _ in range(6))
    got = probe(tmp_path, seed)
    assert got["rdrand32"] == first & 0xFFFFFFFF
    assert got["rdrand16"] == (first & 0xFFFF0000) | (second & 0xFFFF)
    assert got["rdseed32"] == third & 0xFFFFFFFF
    assert got["cf"] == 0x0101  # CF = 1: a value is always there
    assert got["rdrand64"] == fourth
    assert got["rdrand_r9"] == fifth
    assert got["rdseed16"] & 0xFFFF == sixth & 0xFFFF
    assert got["random_reads"] == 6


def test_rdtscp_and_rdpid_read_the_virtual_tsc_and_tsc_aux(tmp_path):
    first, second = probe(tmp_path), probe(tmp_path)
    assert first == second  # nothing from the host: two runs agree to the bit
    assert first["rdtscp_ecx"] == TSC_AUX
    assert first["rdpid32"] == TSC_AUX
    assert first["rdpid64"] == TSC_AUX  # upper half cleared
    # RDTSC and RDTSCP in one block read the same virtual TSC: 10 ticks per instruction
    # (1 GHz at 100 virtual MHz), counted from power-on.
    assert first["rdtscp"] == first["tsc"]
    assert 0 < first["tsc"] <= 10 * first["instructions"]


def test_a_restored_machine_continues_the_same_random_sequence(tmp_path):
    m = machine(tmp_path, LOOP, seed=42)
    try:
        m.run(max_instructions=300)  # partway through the loop
        assert 0 < m.cpu.stats["random_reads"] < 256
        saved = m.save_state()
        m.run(max_instructions=100_000)
        straight = m.memory.read(0x800, 1024)
    finally:
        m.close()
    restored = machine(tmp_path, LOOP, seed=1)  # another seed: the state decides
    try:
        restored.load_state(saved)
        restored.run(max_instructions=100_000)
        again = restored.memory.read(0x800, 1024)
    finally:
        restored.close()
    values = splitmix64(42)
    expected = b"".join((next(values) & 0xFFFFFFFF).to_bytes(4, "little") for _ in range(256))
    assert straight == again == expected


CPUID_DUMP = """
    cli
    xor ax, ax
    mov ds, ax
    mov di, 0x1000
    mov si, offset leaves
1:  mov eax, cs:[si]
    cmp eax, 0xFFFFFFFF
    je 2f
    mov ecx, cs:[si + 4]
    cpuid
    mov [di], eax
    mov [di + 4], ebx
    mov [di + 8], ecx
    mov [di + 12], edx
    add di, 16
    add si, 8
    jmp 1b
2:  mov al, 0x10
    out 0xF4, al
    hlt
    .p2align 2
leaves:
    .long 0, 0, 1, 0, 2, 0, 4, 0, 4, 1, 4, 2, 4, 3, 7, 0, 0xB, 0, 0xB, 1, 0xD, 0, 0xD, 1
    .long 0x40000000, 0, 0x80000000, 0, 0x80000001, 0, 0x80000002, 0, 0x80000003, 0
    .long 0x80000004, 0, 0x80000005, 0, 0x80000006, 0, 0x80000007, 0, 0x80000008, 0
    .long 0xFFFFFFFF
"""
LEAVES = [(0, 0), (1, 0), (2, 0), (4, 0), (4, 1), (4, 2), (4, 3), (7, 0), (0xB, 0), (0xB, 1), (0xD, 0), (0xD, 1),
          (0x40000000, 0), (0x80000000, 0), (0x80000001, 0), (0x80000002, 0), (0x80000003, 0), (0x80000004, 0),
          (0x80000005, 0), (0x80000006, 0), (0x80000007, 0), (0x80000008, 0)]  # fmt: skip


def cpuid_table(tmp_path) -> dict[tuple[int, int], tuple[int, int, int, int]]:
    m = machine(tmp_path, CPUID_DUMP)
    try:
        assert m.run(max_instructions=100_000).reason == "exit-port"
        raw = m.memory.read(0x1000, 16 * len(LEAVES))
    finally:
        m.close()
    words = [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]
    return {leaf: tuple(words[4 * n : 4 * n + 4]) for n, leaf in enumerate(LEAVES)}


def test_cpuid_is_vmms_own_table(tmp_path):
    """Every leaf pinned: the values come from the pinned Unicorn's Haswell model with
    vmm's edits (QEMU's TCG CPUID reads nothing from the host), so they are the same on
    every machine this runs on."""
    table = cpuid_table(tmp_path)
    vendor = b"".join(word.to_bytes(4, "little") for word in (table[0, 0][1], table[0, 0][3], table[0, 0][2]))
    assert vendor == b"GenuineIntel"
    brand = b"".join(w.to_bytes(4, "little") for leaf in (0x80000002, 0x80000003, 0x80000004) for w in table[leaf, 0])
    assert brand.rstrip(b"\0") == b"vmm virtual x86-64 CPU"
    eax1, ebx1, ecx1, edx1 = table[1, 0]
    assert ecx1 & 1 << 30 and table[7, 0][1] & 1 << 18  # RDRAND, RDSEED
    assert table[7, 0][2] & 1 << 22 and table[0x80000001, 0][3] & 1 << 27  # RDPID, RDTSCP
    assert not edx1 & 1 << 9 and ecx1 & 1 << 31  # no local APIC; a hypervisor
    assert ebx1 >> 24 == 0 and not edx1 & 1 << 28  # APIC ID 0, no HTT: one CPU, one thread
    assert table == {
        (0x0, 0): (0xD, 0x756E6547, 0x6C65746E, 0x49656E69),
        (0x1, 0): (0x306C4, 0x800, 0xC6D82203, 0x78BF9FD),
        (0x2, 0): (0x1, 0x0, 0x0, 0x2C307D),
        (0x4, 0): (0x121, 0x1C0003F, 0x3F, 0x1),
        (0x4, 1): (0x122, 0x1C0003F, 0x3F, 0x1),
        (0x4, 2): (0x143, 0x3C0003F, 0xFFF, 0x1),
        (0x4, 3): (0x0, 0x0, 0x0, 0x0),
        (0x7, 0): (0x0, 0x40389, 0x400000, 0x0),
        (0xB, 0): (0x0, 0x0, 0x0, 0x0),
        (0xB, 1): (0x0, 0x0, 0x0, 0x0),
        (0xD, 0): (0x7, 0x240, 0x340, 0x0),
        (0xD, 1): (0x1, 0x0, 0x0, 0x0),
        (0x40000000, 0): (0x0, 0x0, 0x0, 0x0),
        (0x80000000, 0): (0x80000008, 0x756E6547, 0x6C65746E, 0x49656E69),
        (0x80000001, 0): (0x306C4, 0x0, 0x21, 0x28100800),
        (0x80000002, 0): (0x206D6D76, 0x74726976, 0x206C6175, 0x2D363878),
        (0x80000003, 0): (0x43203436, 0x5550, 0x0, 0x0),
        (0x80000004, 0): (0x0, 0x0, 0x0, 0x0),
        (0x80000005, 0): (0x1FF01FF, 0x1FF01FF, 0x40020140, 0x40020140),
        (0x80000006, 0): (0x0, 0x42004200, 0x2008140, 0x0),
        (0x80000007, 0): (0x0, 0x0, 0x0, 0x0),
        (0x80000008, 0): (0x3028, 0x0, 0x0, 0x0),
    }


@pytest.mark.kvm
def test_kvm_cpuid_names_vmm_not_the_host(tmp_path):
    """On KVM the CPUID table is vmm's too (KVM_SET_CPUID2): the brand string is vmm's,
    and RDRAND/RDSEED are left out of the table because KVM cannot be made to exit on them
    (VMX's RDRAND exiting is not offered to userspace). The nested KVM of vmm's
    development and CI machines answers leaves 1 and 7 from its host whatever the table
    says (its GET_SUPPORTED_CPUID lacks RDRAND, its guests see it), so only the brand is
    checked from inside the guest here. RDTSCP and RDPID run in hardware with the guest's
    own IA32_TSC_AUX; the TSC itself follows host time on KVM (README, Known limits)."""
    from tests.conftest import require_kvm

    require_kvm()
    from vmm.cpu.select import cpu_factory_for

    rom = tmp_path / "rom.bin"
    rom.write_bytes(assemble_rom(CPUID_DUMP))
    m = Machine(MachineConfig(bios=rom, serial=SerialConfig("none"), accel="kvm"), cpu_factory=cpu_factory_for("kvm"))
    try:
        assert m.run(timeout=60).reason == "exit-port"
        raw = m.memory.read(0x1000, 16 * len(LEAVES))
    finally:
        m.close()
    words = [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]
    table = {leaf: tuple(words[4 * n : 4 * n + 4]) for n, leaf in enumerate(LEAVES)}
    brand = b"".join(w.to_bytes(4, "little") for leaf in (0x80000002, 0x80000003, 0x80000004) for w in table[leaf, 0])
    assert brand.rstrip(b"\0") == b"vmm virtual x86-64 CPU"
