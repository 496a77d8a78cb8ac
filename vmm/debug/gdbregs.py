"""The register file vmm's gdb stub shows: one fixed x86-64 layout in every CPU mode.

As QEMU's stub (gdb-xml/i386-64bit.xml), the target description is ``i386:x86-64`` from
reset on, whatever mode the guest is in, so one gdb session follows a boot from the
reset vector through real and protected mode into long mode: gdb never sees the
register file change size under it ("Truncated register 25 in remote 'g' packet",
"Remote 'g' packet reply is too long"). In real and 32-bit code the upper halves read as
zero, and ``$pc`` is the offset in CS (IP/EIP), as on QEMU; breakpoints and memory
addresses are linear (CS.base + IP in real mode).

Layout (gdb's amd64 numbering, then the extras): rax..r15, rip, eflags, cs ss ds es fs
gs, st0-7, the x87 control words, xmm0-15, mxcsr (all from the FXSAVE image), then
``org.gnu.gdb.i386.segments`` (fs_base, gs_base, which gdb knows) and vmm's system
registers (k_gs_base, cr0, cr2, cr3, cr4, cr8, efer; ``info registers cr3``).
"""

from __future__ import annotations

from dataclasses import dataclass

from vmm.cpu.state import MSR_KERNEL_GS_BASE, X86State

GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp") + tuple(f"r{i}" for i in range(8, 16))
SEGMENTS = ("cs", "ss", "ds", "es", "fs", "gs")
X87 = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")
SYSTEM = ("k_gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer")
RFLAGS_WRITABLE = 0x3F7FD7  # the bits POPF/IRET may set (bit 1 reads as one)


@dataclass(frozen=True)
class Reg:
    name: str
    bits: int
    kind: str
    feature: str
    group: str = ""


def _layout() -> tuple[Reg, ...]:
    core, sse = "org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse"
    regs = [Reg(n, 64, "data_ptr" if n in ("rbp", "rsp") else "int64", core) for n in GPRS]
    regs += [Reg("rip", 64, "code_ptr", core), Reg("eflags", 32, "i386_eflags", core)]
    regs += [Reg(s, 32, "int32", core) for s in SEGMENTS]
    regs += [Reg(f"st{i}", 80, "i387_ext", core) for i in range(8)]
    regs += [Reg(n, 32, "int", core, "float") for n in X87]
    regs += [Reg(f"xmm{i}", 128, "vec128", sse) for i in range(16)]
    regs += [Reg("mxcsr", 32, "i386_mxcsr", sse, "vector")]
    regs += [Reg(n, 64, "int64", "org.gnu.gdb.i386.segments") for n in ("fs_base", "gs_base")]
    regs += [Reg(n, 64, "int64", "org.vmm.x86.system", "system") for n in SYSTEM]
    return tuple(regs)


LAYOUT = _layout()
NUMBER = {reg.name: i for i, reg in enumerate(LAYOUT)}

# The types gdb's own i386 features use (gdb/features/i386/64bit-core.xml, 64bit-sse.xml).
TYPES = {
    "org.gnu.gdb.i386.core": """<flags id="i386_eflags" size="4">
<field name="CF" start="0" end="0"/><field name="" start="1" end="1"/><field name="PF" start="2" end="2"/>
<field name="AF" start="4" end="4"/><field name="ZF" start="6" end="6"/><field name="SF" start="7" end="7"/>
<field name="TF" start="8" end="8"/><field name="IF" start="9" end="9"/><field name="DF" start="10" end="10"/>
<field name="OF" start="11" end="11"/><field name="NT" start="14" end="14"/><field name="RF" start="16" end="16"/>
<field name="VM" start="17" end="17"/><field name="AC" start="18" end="18"/><field name="VIF" start="19" end="19"/>
<field name="VIP" start="20" end="20"/><field name="ID" start="21" end="21"/></flags>""",
    "org.gnu.gdb.i386.sse": """<vector id="v8bf16" type="bfloat16" count="8"/>
<vector id="v4f" type="ieee_single" count="4"/><vector id="v2d" type="ieee_double" count="2"/>
<vector id="v16i8" type="int8" count="16"/><vector id="v8i16" type="int16" count="8"/>
<vector id="v4i32" type="int32" count="4"/><vector id="v2i64" type="int64" count="2"/>
<union id="vec128"><field name="v8_bfloat16" type="v8bf16"/><field name="v4_float" type="v4f"/>
<field name="v2_double" type="v2d"/><field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>
<field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/><field name="uint128" type="uint128"/>
</union><flags id="i386_mxcsr" size="4">
<field name="IE" start="0" end="0"/><field name="DE" start="1" end="1"/><field name="ZE" start="2" end="2"/>
<field name="OE" start="3" end="3"/><field name="UE" start="4" end="4"/><field name="PE" start="5" end="5"/>
<field name="DAZ" start="6" end="6"/><field name="IM" start="7" end="7"/><field name="DM" start="8" end="8"/>
<field name="ZM" start="9" end="9"/><field name="OM" start="10" end="10"/><field name="UM" start="11" end="11"/>
<field name="PM" start="12" end="12"/><field name="FZ" start="15" end="15"/></flags>""",
}


I386_NAMES = {"rax": "eax", "rbx": "ebx", "rcx": "ecx", "rdx": "edx", "rsi": "esi", "rdi": "edi",
              "rbp": "ebp", "rsp": "esp", "rip": "eip"}  # fmt: skip


def _i386_layout() -> list[Reg]:
    """LAYOUT byte for byte, with the registers named as gdb's i386 (and i8086)
    architecture wants them: eax is rax's low half, rax_hi its high half; fs_base and
    gs_base move to vmm's feature (gdb's i386 segments feature wants 32 bits)."""
    regs = []
    for reg in LAYOUT:
        low = I386_NAMES.get(reg.name)
        if low is not None:
            kind = {"rip": "code_ptr", "rsp": "data_ptr", "rbp": "data_ptr"}.get(reg.name, "int32")
            regs += [Reg(low, 32, kind, reg.feature), Reg(f"{reg.name}_hi", 32, "int32", reg.feature, "system")]
        elif reg.feature == "org.gnu.gdb.i386.segments":
            regs.append(Reg(reg.name, 64, "int64", "org.vmm.x86.system", "system"))
        else:
            regs.append(reg)
    return regs


def target_xml(architecture: str = "i386:x86-64") -> str:
    """The target description gdb reads with ``qXfer:features:read:target.xml``; with
    ``architecture`` "i8086" or "i386", the same bytes described for gdb's 16- or 32-bit
    architecture (the files vmm/debug/gdb/*.xml a student loads with ``set tdesc
    filename``: gdb 13 disassembles as the description's architecture says)."""
    parts = ['<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target version="1.0">',
             f"<architecture>{architecture}</architecture><osabi>none</osabi>"]  # fmt: skip
    i386 = architecture != "i386:x86-64"
    feature = None
    for number, reg in enumerate(_i386_layout() if i386 else LAYOUT):
        if reg.feature != feature:
            if feature is not None:
                parts.append("</feature>")
            feature = reg.feature
            parts.append(f'<feature name="{feature}">' + TYPES.get(feature, ""))
        group = f' group="{reg.group}"' if reg.group else ""
        parts.append(f'<reg name="{reg.name}" bitsize="{reg.bits}" type="{reg.kind}" regnum="{number}"{group}/>')
    parts.append("</feature></target>")
    return "\n".join(parts)


TARGET_XML = target_xml()


def _fxsave_fields(image: bytes) -> dict[str, int]:
    """x87, SSE and MXCSR from a 512-byte FXSAVE image (SDM vol. 1, table 10-2); the
    reset values when the backend has none."""
    if len(image) < 512:
        values = {f"st{i}": 0 for i in range(8)} | {f"xmm{i}": 0 for i in range(16)}
        return values | {"fctrl": 0x37F, "fstat": 0, "ftag": 0xFFFF, "fiseg": 0, "fioff": 0,
                         "foseg": 0, "fooff": 0, "fop": 0, "mxcsr": 0x1F80}  # fmt: skip

    def word(offset: int, size: int) -> int:
        return int.from_bytes(image[offset : offset + size], "little")

    abridged = word(4, 1)  # one bit per register, 1 = valid; gdb wants the full tag word
    ftag = 0
    for i in range(8):
        ftag |= (0 if abridged >> i & 1 else 3) << (2 * i)
    values = {"fctrl": word(0, 2), "fstat": word(2, 2), "ftag": ftag, "fop": word(6, 2) & 0x7FF,
              "fioff": word(8, 4), "fiseg": word(12, 2), "fooff": word(16, 4), "foseg": word(20, 2),
              "mxcsr": word(24, 4)}  # fmt: skip
    values |= {f"st{i}": word(32 + 16 * i, 10) for i in range(8)}
    values |= {f"xmm{i}": word(160 + 16 * i, 16) for i in range(16)}
    return values


def register_values(state: X86State) -> list[int]:
    """Every register of LAYOUT, in order."""
    values = dict(state.gprs)
    values.update(rip=state.rip, eflags=state.rflags)
    values.update({s: state.segments[s].selector for s in SEGMENTS})
    values.update(_fxsave_fields(state.fxsave))
    values.update(fs_base=state.segments["fs"].base, gs_base=state.segments["gs"].base,
                  k_gs_base=state.msrs.get(MSR_KERNEL_GS_BASE, 0), cr0=state.cr0, cr2=state.cr2,
                  cr3=state.cr3, cr4=state.cr4, cr8=state.cr8, efer=state.efer)  # fmt: skip
    return [values[reg.name] for reg in LAYOUT]


def encode(number: int, value: int) -> bytes:
    size = LAYOUT[number].bits // 8
    return (value & ((1 << 8 * size) - 1)).to_bytes(size, "little")


def encode_all(state: X86State) -> bytes:
    return b"".join(encode(n, v) for n, v in enumerate(register_values(state)))


WRITABLE = set(GPRS) | {"rip", "eflags"}


def write_register(state: X86State, number: int, raw: bytes) -> bool:
    """Set one register from gdb's little-endian bytes; False for one vmm does not let gdb
    write (segments, x87/SSE and the system registers: `monitor` commands show them)."""
    if not 0 <= number < len(LAYOUT) or LAYOUT[number].name not in WRITABLE:
        return False
    if len(raw) != LAYOUT[number].bits // 8:
        return False
    value = int.from_bytes(raw, "little")
    name = LAYOUT[number].name
    if name == "rip":
        state.rip = value
    elif name == "eflags":
        state.rflags = (value & RFLAGS_WRITABLE) | 0x2
    else:
        state.gprs[name] = value
    return True
