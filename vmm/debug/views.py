"""What the debugger prints: registers, descriptor tables, disassembly, memory dumps.

Real-mode addresses are shown as ``seg:off`` with the linear address beside them;
segment registers as selectors with their cached base, limit and attributes (what the
CPU uses, which may differ from the descriptor table after it changed).
"""

from __future__ import annotations

import capstone

from vmm.cpu.paging import PageFault, PhysicalReader, read_linear
from vmm.cpu.state import (
    ATTR_DB,
    ATTR_G,
    ATTR_L,
    ATTR_P,
    ATTR_S,
    CR0_PE,
    CR0_PG,
    CR4_PAE,
    EFER_LMA,
    EFER_LME,
    EFER_NXE,
    EFER_SCE,
    GPR_NAMES,
    X86State,
)
from vmm.debug.symbols import Symbols

CR0_BITS = ((0, "PE"), (1, "MP"), (2, "EM"), (3, "TS"), (4, "ET"), (5, "NE"), (16, "WP"), (18, "AM"),
            (29, "NW"), (30, "CD"), (31, "PG"))  # fmt: skip
CR4_BITS = ((0, "VME"), (1, "PVI"), (2, "TSD"), (3, "DE"), (4, "PSE"), (5, "PAE"), (6, "MCE"), (7, "PGE"),
            (8, "PCE"), (9, "OSFXSR"), (10, "OSXMMEXCPT"), (16, "FSGSBASE"), (18, "OSXSAVE"))  # fmt: skip
EFER_BITS = ((0, "SCE"), (8, "LME"), (10, "LMA"), (11, "NXE"))
FLAG_BITS = ((0, "CF"), (2, "PF"), (4, "AF"), (6, "ZF"), (7, "SF"), (8, "TF"), (9, "IF"), (10, "DF"),
             (11, "OF"), (14, "NT"), (16, "RF"), (17, "VM"))  # fmt: skip
_ = (EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE, CR0_PG, CR4_PAE)


def bits(value: int, table) -> str:
    return " ".join(name for bit, name in table if value >> bit & 1) or "-"


def format_pc(state: X86State, symbols: Symbols | None = None) -> str:
    """``seg:off`` in real mode, else the linear address; with a symbol when one fits."""
    if state.mode in ("real", "vm86"):
        text = f"{state.segments['cs'].selector:04x}:{state.rip:04x} ({state.pc:#x})"
    else:
        text = f"{state.pc:#x}"
    name = symbols.name_for(state.pc) if symbols else None
    return f"{text} <{name}>" if name else text


def status_line(state: X86State, stage: str | None, instructions: int, symbols: Symbols | None) -> str:
    return (f"[{stage or '-'}] mode {state.mode} ({state.code_bits}-bit) cpl {state.cpl}  "
            f"insn {instructions:,}  pc {format_pc(state, symbols)}")  # fmt: skip


def register_values(state: X86State) -> dict[str, int]:
    values = dict(state.gprs)
    values.update(rip=state.rip, rflags=state.rflags, cr0=state.cr0, cr2=state.cr2, cr3=state.cr3,
                  cr4=state.cr4, efer=state.efer)  # fmt: skip
    for name, seg in state.segments.items():
        values[name] = seg.selector
    return values


def format_registers(state: X86State, previous: X86State | None = None, highlight: bool = False) -> str:
    """GPRs (width by mode), segments with their caches, CR0/CR3/CR4/EFER decoded.
    Registers that changed since ``previous`` are marked (``*``, or reverse video)."""
    wide = state.mode == "long" or any(state.gprs[n] >> 32 for n in GPR_NAMES)
    old = register_values(previous) if previous else {}

    def mark(name: str, text: str) -> str:
        if name in old and old[name] != register_values(state)[name]:
            return f"\x1b[7m{text}\x1b[0m" if highlight else f"{text}*"
        return text if highlight else f"{text} "

    names = GPR_NAMES if wide else GPR_NAMES[:8]
    width = 16 if wide else 8
    cells = [mark(n, f"{n if wide else 'e' + n[1:]:>4}={state.gprs[n] & ((1 << 4 * width) - 1):0{width}x}")
             for n in names]  # fmt: skip
    cells.append(mark("rip", f"{'rip' if wide else 'eip':>4}={state.rip:0{width}x}"))
    cells.append(mark("rflags", f"flags={state.rflags:08x} [{bits(state.rflags, FLAG_BITS)}]"))
    lines = ["  ".join(cells[i : i + 4]) for i in range(0, len(cells), 4)]
    for name, seg in state.segments.items():
        lines.append(mark(name, f"{name}={seg.selector:04x}") + f" base={seg.base:#010x} limit={seg.limit:#010x} "
                     f"attrs={seg.attrs:#06x} {describe_attrs(seg.attrs)}")  # fmt: skip
    lines.append(f"gdt base={state.gdt.base:#x} limit={state.gdt.limit:#x}   idt base={state.idt.base:#x} "
                 f"limit={state.idt.limit:#x}   tr={state.tr.selector:04x} ldt={state.ldt.selector:04x}")  # fmt: skip
    lines.append(mark("cr0", f"cr0={state.cr0:#010x}") + f" [{bits(state.cr0, CR0_BITS)}]  "
                 + mark("cr2", f"cr2={state.cr2:#x}") + "  " + mark("cr3", f"cr3={state.cr3:#x}"))  # fmt: skip
    lines.append(mark("cr4", f"cr4={state.cr4:#x}") + f" [{bits(state.cr4, CR4_BITS)}]  "
                 + mark("efer", f"efer={state.efer:#x}") + f" [{bits(state.efer, EFER_BITS)}]")  # fmt: skip
    lines.append(f"mode {state.mode}, {state.code_bits}-bit code, cpl {state.cpl}")
    return "\n".join(lines)


def describe_attrs(attrs: int) -> str:
    if not attrs & ATTR_P:
        return "not present"
    kind = "code" if attrs & ATTR_S and attrs & 8 else "data" if attrs & ATTR_S else f"system type {attrs & 0xF}"
    size = "64-bit" if attrs & ATTR_L else "32-bit" if attrs & ATTR_DB else "16-bit"
    gran = " 4K-gran" if attrs & ATTR_G else ""
    return f"{kind} {size} dpl{(attrs >> 5) & 3}{gran}"


def format_descriptor_table(reader: PhysicalReader, state: X86State, which: str, limit: int = 32) -> str:
    """The GDT or IDT the CPU has loaded, one entry per line."""
    table = state.gdt if which == "gdt" else state.idt
    long_mode = bool(state.efer & EFER_LMA)
    lines = [f"{which} base={table.base:#x} limit={table.limit:#x}"]
    if which == "idt" and not state.cr0 & CR0_PE:
        entries = min((table.limit + 1) // 4, limit)
        for i in range(entries):
            raw = int.from_bytes(_read(reader, state, table.base + 4 * i, 4), "little")
            lines.append(f"  {i:#04x}: {raw >> 16:04x}:{raw & 0xFFFF:04x}")
        return "\n".join(lines)
    size = 16 if which == "idt" and long_mode else 8
    count = min((table.limit + 1) // size, limit)
    i = 0
    while i < count:
        raw = int.from_bytes(_read(reader, state, table.base + size * i, 8), "little")
        if which == "gdt":
            base = ((raw >> 16) & 0xFFFFFF) | ((raw >> 56) << 24)
            lim = (raw & 0xFFFF) | ((raw >> 32) & 0xF0000)
            attrs = (raw >> 40) & 0xF0FF
            if attrs & ATTR_G:
                lim = (lim << 12) | 0xFFF
            text = "null" if raw == 0 else f"base={base:#010x} limit={lim:#010x} {describe_attrs(attrs)}"
            if raw and not attrs & ATTR_S and long_mode:
                high = int.from_bytes(_read(reader, state, table.base + 8 * i + 8, 8), "little")
                text = f"base={base | (high & 0xFFFFFFFF) << 32:#x} limit={lim:#x} {describe_attrs(attrs)}"
                lines.append(f"  {8 * i:#06x}: {text}")
                i += 2
                continue
            lines.append(f"  {8 * i:#06x}: {text}")
        else:
            offset = (raw & 0xFFFF) | ((raw >> 48) << 16)
            if size == 16:
                offset |= int.from_bytes(_read(reader, state, table.base + 16 * i + 8, 4), "little") << 32
            selector, gate = (raw >> 16) & 0xFFFF, (raw >> 40) & 0xFF
            kind = {0xE: "interrupt", 0xF: "trap", 0x5: "task"}.get(gate & 0xF, f"type {gate & 0xF}")
            if gate & 0x80:
                lines.append(f"  {i:#04x}: {selector:04x}:{offset:#x} {kind} gate dpl{(gate >> 5) & 3}")
        i += 1
    return "\n".join(lines)


def _read(reader: PhysicalReader, state: X86State, linear: int, length: int) -> bytes:
    try:
        return read_linear(reader, state, linear, length)
    except PageFault:
        return bytes(length)


class Disassembler:
    """Capstone in the CPU's current mode (16/32/64-bit), with symbol names."""

    def __init__(self, reader: PhysicalReader, symbols: Symbols | None = None) -> None:
        self.reader = reader
        self.symbols = symbols
        self._engines = {bits: capstone.Cs(capstone.CS_ARCH_X86, mode) for bits, mode in
                         ((16, capstone.CS_MODE_16), (32, capstone.CS_MODE_32), (64, capstone.CS_MODE_64))}  # fmt: skip

    def instructions(self, state: X86State, linear: int, count: int, bits: int | None = None) -> list:
        """Up to ``count`` (address, bytes, text) from ``linear``."""
        bits = bits or state.code_bits
        try:
            code = read_linear(self.reader, state, linear, 16 * count)
        except PageFault:
            code = b""
            for n in range(16 * count, 0, -16):
                try:
                    code = read_linear(self.reader, state, linear, n)
                    break
                except PageFault:
                    continue
        out = []
        for insn in self._engines[bits].disasm(code, linear):
            text = f"{insn.mnemonic} {insn.op_str}".strip()
            if self.symbols and insn.mnemonic.startswith(("j", "call")):
                try:
                    name = self.symbols.name_for(int(insn.op_str, 0))
                except ValueError:
                    name = None
                if name:
                    text += f" <{name}>"
            out.append((insn.address, bytes(insn.bytes), text))
            if len(out) == count:
                break
        return out

    def format(self, state: X86State, linear: int, count: int, current: int | None = None,
               highlight: bool = False) -> str:  # fmt: skip
        lines = []
        real = state.mode in ("real", "vm86")
        cs = state.segments["cs"]
        for address, raw, text in self.instructions(state, linear, count):
            label = self.symbols.name_for(address, exact=True) if self.symbols else None
            if label:
                lines.append(f"<{label}>:")
            where = f"{cs.selector:04x}:{(address - cs.base) & 0xFFFF:04x}" if real else f"{address:#x}"
            arrow = "=>" if address == current else "  "
            line = f"{arrow} {where:<18} {raw.hex():<20} {text}"
            if highlight and address == current:
                line = f"\x1b[1;32m{line}\x1b[0m"
            lines.append(line)
        return "\n".join(lines) if lines else f"   {linear:#x}: (no code mapped here)"

    def length_at(self, state: X86State, linear: int) -> tuple[int, str]:
        found = self.instructions(state, linear, 1)
        if not found:
            return 0, ""
        _, raw, text = found[0]
        return len(raw), text
