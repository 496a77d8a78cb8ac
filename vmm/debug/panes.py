"""The text of each pane of `vmm step`'s screen, sized to fit: code around pc (lines
before and after it), registers that fit 80 columns (64-bit in three columns), a
one-line boot timeline with the mode, and the tail of the guest's serial output."""

from __future__ import annotations

from vmm.cpu.state import GPR_NAMES
from vmm.debug.stages import STAGES
from vmm.debug.views import CR0_BITS, EFER_BITS, FLAG_BITS, bits, format_pc

REGISTER_LINES = 8  # the registers pane's height in every mode


def code_lines(commands, state, height: int) -> list[str]:
    """``height`` lines: the source line of pc when the ELF has one, then instructions,
    about a third of them before pc."""
    disasm, symbols = commands.disasm, commands.dbg.symbols
    lines: list[str] = []
    found = symbols.line_for(state.pc) if symbols else None
    if found is not None:
        path, number = found
        lines.append(f"{path.rsplit('/', 2)[-2:][-1]}:{number}  {_source_line(path, number)}".rstrip())
    room = max(1, height - len(lines))
    before = _before(disasm, symbols, state, room // 3)
    after = disasm.instructions(state, state.pc, room - len(before))
    real = state.mode in ("real", "vm86")
    cs = state.segments["cs"]
    for address, raw, text in before + after:
        where = f"{cs.selector:04x}:{(address - cs.base) & 0xFFFF:04x}" if real else f"{address:x}"
        label = symbols.name_for(address, exact=True) if symbols else None
        arrow = "=>" if address == state.pc else "  "
        line = f"{arrow} {where:<16} {raw.hex()[:16]:<16} {text}" + (f"  <{label}>" if label else "")
        lines.append(line)
    return lines[:height]


def _before(disasm, symbols, state, count: int) -> list:
    """Up to ``count`` instructions that end exactly at pc: decoded from the start of pc's
    symbol when there is one near, else from the nearest of a few earlier starts that
    falls in step with pc (x86 code cannot be decoded backwards for sure)."""
    if count <= 0:
        return []
    pc = state.pc
    starts = []
    start = symbols.start_of(pc) if symbols else None
    if start is not None and 0 < pc - start <= 4096:
        starts.append(start)
    starts += [pc - back for back in range(min(count * 7, 48), 0, -1)]
    for start in starts:
        decoded = disasm.instructions(state, start, count * 8 + 64)
        addresses = [address for address, _, _ in decoded]
        if pc in addresses:
            index = addresses.index(pc)
            if index >= min(count, 1):
                return decoded[max(0, index - count) : index]
    return []


_SOURCES: dict[str, list[str]] = {}


def _source_line(path: str, number: int) -> str:
    if path not in _SOURCES:
        try:
            with open(path, errors="replace") as handle:
                _SOURCES[path] = handle.read().splitlines()
        except OSError:
            _SOURCES[path] = []
    text = _SOURCES[path]
    return text[number - 1].strip() if 0 < number <= len(text) else ""


def register_lines(state, previous=None) -> list[str]:
    """REGISTER_LINES lines of at most 78 columns; a changed register is marked ``*``."""
    wide = state.mode == "long" or any(state.gprs[n] >> 32 for n in GPR_NAMES)
    old = previous

    def changed(name: str, value: int) -> str:
        if old is None:
            return " "
        before = old.rip if name in ("rip", "eip") else old.gprs.get(name if wide else "r" + name[1:])
        return "*" if before is not None and before != value else " "

    cells = []
    if wide:
        for name in GPR_NAMES:
            cells.append(f"{name:>3} {state.gprs[name]:016x}{changed(name, state.gprs[name])}")
        cells.append(f"rip {state.rip:016x}{changed('rip', state.rip)}")
        per_line = 3
    else:
        for name in GPR_NAMES[:8]:
            value = state.gprs[name] & 0xFFFFFFFF
            cells.append(f"e{name[1:]} {value:08x}{changed('e' + name[1:], value)}")
        cells.append(f"eip {state.rip & 0xFFFFFFFF:08x}{changed('eip', state.rip)}")
        per_line = 4
    lines = [" ".join(cells[i : i + per_line]) for i in range(0, len(cells), per_line)]
    seg = " ".join(f"{name} {state.segments[name].selector:04x}" for name in ("cs", "ss", "ds", "es", "fs", "gs"))
    lines.append(f"fl {state.rflags:08x} [{bits(state.rflags, FLAG_BITS)}] {seg}"[:78])
    lines.append(f"cr0 {state.cr0:08x} [{bits(state.cr0, CR0_BITS)}] cr3 {state.cr3:x} cr4 {state.cr4:x}"[:78])
    lines.append(f"efer {state.efer:x} [{bits(state.efer, EFER_BITS)}] gdt {state.gdt.base:x}/{state.gdt.limit:x} "
                 f"idt {state.idt.base:x}/{state.idt.limit:x} cr2 {state.cr2:x}"[:78])  # fmt: skip
    lines += [""] * (REGISTER_LINES - len(lines))
    return lines[:REGISTER_LINES]


def status_text(commands, state, running: bool) -> str:
    """One line: the boot timeline (where you are in brackets), mode, count, pc."""
    dbg = commands.dbg
    current = dbg.machine.stages.current
    reached = {t.stage for t in dbg.machine.stages.timeline}
    stages = []
    for stage in STAGES:
        if stage == current:
            stages.append(f"[{stage}]")
        else:
            stages.append(stage if stage in reached else stage)
    timeline = ">".join(stages)
    if running:
        return f"{timeline} | running... Ctrl-C stops"
    return (f"{timeline} | {state.mode} {state.code_bits}-bit cpl{state.cpl} | "
            f"insn {dbg.instructions:,} | {format_pc(state, dbg.symbols)}")  # fmt: skip


def serial_lines(transcript: bytes, height: int, width: int) -> list[str]:
    """The last ``height`` lines the guest wrote to COM1, cut to ``width`` (no wrapping)."""
    text = bytes(transcript[-8192:]).decode("latin-1")
    rows = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.rsplit("\r", 1)[-1]  # a carriage return starts the line again
        rows.append("".join(c if c.isprintable() else " " for c in line)[:width])
    return rows[-height:] if height > 0 else []
