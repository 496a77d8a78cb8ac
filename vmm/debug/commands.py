"""The debugger's command language, shared by `vmm step` and gdb's `monitor` command.

Each command takes one line and returns the text to show; errors are DebugError lines.
Addresses are numbers (C syntax: 0x7c00), ``seg:off`` in hex (0000:7c00), a symbol
(with ``--symbols ELF``) or ``$pc``.
"""

from __future__ import annotations

import re
import shlex

from vmm.cpu.paging import PageFault, read_linear, walk
from vmm.debug.engine import MODES, WATCHED_REGISTERS, DebugError, Debugger, Event
from vmm.debug.stages import STAGES
from vmm.debug.views import Disassembler, format_descriptor_table, format_pc, format_registers, status_line

HELP = """\
step [N] | si [N]     run N instructions (default 1)
next | n              step over a call or int
continue | c          run to the next breakpoint (or the end)
until ADDR            run to ADDR
back [N]              go back N instructions (reverse step)
break ADDR|seg:off|SYMBOL      break on an instruction
break stage NAME      firmware, bootloader, kernel, init
break mode NAME       real, protected, long, compat
break cr0|cr4|efer|gdt|idt     break when that register or table changes
break vector N        break on entry to an exception/interrupt handler
break port N          stop after an IN/OUT to I/O port N
watch ADDR [LEN] [r|w|rw]      stop after a write (w, default), read (r) or either (rw)
                      touches LEN bytes (default 4) at ADDR
delete N | info breakpoints
regs | gdt | idt | pagetable ADDR | stages | backtrace
x/N[bwgi] ADDR        examine memory (bytes, 32-bit words, 64-bit giants, instructions)
disas [ADDR] [N]      disassemble (default: around pc)
status | help | quit"""


class CommandError(DebugError):
    pass


class Commands:
    def __init__(self, debugger: Debugger, highlight: bool = False, max_count: int | None = None) -> None:
        self.dbg = debugger
        # The most instructions one command may run (gdb's `monitor`, which cannot be
        # interrupted while it runs); None: no bound (`vmm step`, where Ctrl-C works).
        self.max_count = max_count
        self.disasm = Disassembler(debugger.reader, debugger.symbols)
        self.highlight = highlight
        self.previous = debugger.state()
        self.quit = False

    # ---- parsing ----

    def address(self, text: str) -> int:
        text = text.strip()
        state = self.dbg.state()
        if text in ("$pc", "pc"):
            return state.pc
        if ":" in text:
            seg, _, off = text.partition(":")
            try:
                return (int(seg, 16) << 4) + int(off, 16)
            except ValueError:
                raise CommandError(f"{text!r}: expected seg:off in hex, e.g. 0000:7c00") from None
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            pass
        symbols = self.dbg.symbols
        if symbols is not None and symbols.lookup(text) is not None:
            return symbols.lookup(text)
        if symbols is None:
            raise CommandError(f"{text!r} is not an address (pass --symbols ELF for names)")
        raise CommandError(f"{text!r} is not an address or a known symbol")

    def run(self, line: str) -> str:
        line = line.strip()
        if not line or line.startswith("#"):
            return ""
        match = re.fullmatch(r"x/(\d*)([bwgi]?)\s+(.+)", line)
        if match:
            return self.examine(int(match.group(1) or 1), match.group(2) or "b", match.group(3))
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise CommandError(f"cannot parse {line!r}: {exc}") from None
        name, args = words[0], words[1:]
        handler = self.TABLE.get(name)
        if handler is None:
            raise CommandError(f"unknown command {name!r} (try help)")
        return handler(self, args)

    # ---- running ----

    def _count(self, args: list[str], default: int = 1) -> int:
        if not args:
            return default
        try:
            count = int(args[0].replace("_", ""), 0)
        except ValueError:
            raise CommandError(f"{args[0]!r} is not a count") from None
        if count < 1:
            raise CommandError("the count must be at least 1")
        if self.max_count is not None and count > self.max_count:
            raise CommandError(f"the count {count} is above {self.max_count:,} here (use gdb's continue and Ctrl-C)")
        return count

    def after(self, event: Event) -> str:
        state = self.dbg.state()
        lines = [event.text] if event.text else []
        lines.append(status_line(state, self.dbg.machine.stages.current, self.dbg.instructions, self.dbg.symbols))
        lines.append(self.disasm.format(state, state.pc, 1, current=state.pc, highlight=self.highlight))
        self.previous_for_regs = self.previous
        return "\n".join(lines)

    def cmd_step(self, args: list[str]) -> str:
        self.previous = self.dbg.state()
        return self.after(self.dbg.step(self._count(args)))

    def cmd_next(self, args: list[str]) -> str:
        self.previous = self.dbg.state()
        state = self.dbg.state()
        length, text = self.disasm.length_at(state, state.pc)
        if text.startswith(("call", "int", "rep", "loop")) and length:
            return self.after(self.dbg.until(state.pc + length, self.max_count))
        return self.after(self.dbg.step(1))

    def cmd_continue(self, args: list[str]) -> str:
        self.previous = self.dbg.state()
        return self.after(self.dbg.cont(self._count(args, 0) or self.max_count))

    def cmd_until(self, args: list[str]) -> str:
        if not args:
            raise CommandError("until needs an address")
        self.previous = self.dbg.state()
        return self.after(self.dbg.until(self.address(args[0]), self.max_count))

    def cmd_back(self, args: list[str]) -> str:
        self.previous = self.dbg.state()
        return self.after(self.dbg.back(self._count(args)))

    # ---- breakpoints ----

    def cmd_break(self, args: list[str]) -> str:
        if not args:
            raise CommandError("break needs an address, or stage/mode/vector NAME, or cr0|cr4|efer|gdt|idt")
        kind, rest = args[0], args[1:]
        if kind == "stage":
            if not rest or rest[0] not in STAGES:
                raise CommandError(f"break stage needs one of {', '.join(STAGES)}")
            if rest[0] == "kernel" and self.dbg.machine.stages.kernel_entry is None:
                raise CommandError("the kernel entry is unknown: pass --symbols ELF (its entry) or --kernel")
            bp = self.dbg.add("stage", rest[0], f"stage {rest[0]}")
        elif kind == "mode":
            if not rest or rest[0] not in MODES:
                raise CommandError(f"break mode needs one of {', '.join(MODES)}")
            bp = self.dbg.add("mode", rest[0], f"mode {rest[0]}")
        elif kind in WATCHED_REGISTERS:
            bp = self.dbg.add("reg", kind, f"{kind} changes")
        elif kind == "vector":
            vector = self._count(rest, -1) if rest else -1
            if not 0 <= vector <= 255:
                raise CommandError("break vector needs a vector 0-255")
            bp = self.dbg.add("vector", vector, f"vector {vector:#x}")
        elif kind == "port":
            port = self._count(rest, -1) if rest else -1
            if not 0 <= port <= 0xFFFF:
                raise CommandError("break port needs a port 0-0xffff")
            bp = self.dbg.add("port", port, f"port {port:#x}")
        else:
            addr = self.address(kind)
            name = self.dbg.symbols.name_for(addr) if self.dbg.symbols else None
            bp = self.dbg.add("addr", addr, f"at {addr:#x}" + (f" <{name}>" if name else ""))
        return f"breakpoint {bp.describe()}"

    def cmd_watch(self, args: list[str]) -> str:
        if not args:
            raise CommandError("watch needs an address: watch ADDR [LEN] [r|w|rw]")
        addr = self.address(args[0])
        rest = args[1:]
        access = "w"
        if rest and rest[-1] in ("r", "w", "rw", "wr"):
            access = "rw" if len(rest[-1]) == 2 else rest[-1]
            rest = rest[:-1]
        length = self._count(rest, 4)
        label = {"w": "write", "r": "read", "rw": "access"}[access]
        bp = self.dbg.add("watch", (addr, length, access), f"watch {label} {addr:#x} len {length}")
        return f"watchpoint {bp.describe()}"

    def cmd_delete(self, args: list[str]) -> str:
        return f"deleted {self.dbg.delete(self._count(args, 0)).describe()}"

    def cmd_info(self, args: list[str]) -> str:
        if args and args[0].startswith("b"):
            return "\n".join(bp.describe() for bp in self.dbg.breakpoints) or "no breakpoints"
        if args and args[0].startswith("r"):
            return self.cmd_regs([])
        raise CommandError("info breakpoints | info registers")

    # ---- looking ----

    def cmd_regs(self, args: list[str]) -> str:
        return format_registers(self.dbg.state(), self.previous, self.highlight)

    def cmd_gdt(self, args: list[str]) -> str:
        return format_descriptor_table(self.dbg.reader, self.dbg.state(), "gdt")

    def cmd_idt(self, args: list[str]) -> str:
        return format_descriptor_table(self.dbg.reader, self.dbg.state(), "idt")

    def cmd_pagetable(self, args: list[str]) -> str:
        if not args:
            raise CommandError("pagetable needs an address")
        linear = self.address(args[0])
        state = self.dbg.state()
        lines = [f"cr3={state.cr3:#x} mode {state.mode}"]
        try:
            phys, levels = walk(self.dbg.reader, state, linear)
        except PageFault as exc:
            return "\n".join(lines + [str(exc)])
        lines += [level.describe() for level in levels] or ["paging off: linear = physical"]
        lines.append(f"{linear:#x} -> physical {phys:#x}")
        return "\n".join(lines)

    def examine(self, count: int, unit: str, where: str) -> str:
        addr = self.address(where)
        state = self.dbg.state()
        if unit == "i":
            return self.disasm.format(state, addr, count, current=state.pc)
        size = {"b": 1, "w": 4, "g": 8}[unit]
        try:
            data = read_linear(self.dbg.reader, state, addr, count * size)
        except PageFault as exc:
            raise CommandError(str(exc)) from None
        lines = []
        per_line = 16 // size
        for i in range(0, count, per_line):
            cells = [int.from_bytes(data[(i + j) * size : (i + j + 1) * size], "little")
                     for j in range(min(per_line, count - i))]  # fmt: skip
            lines.append(f"{addr + i * size:#x}: " + " ".join(f"{c:0{2 * size}x}" for c in cells))
        return "\n".join(lines)

    def cmd_disas(self, args: list[str]) -> str:
        state = self.dbg.state()
        addr = self.address(args[0]) if args else state.pc
        count = self._count(args[1:], 10)
        return self.disasm.format(state, addr, count, current=state.pc, highlight=self.highlight)

    def cmd_stages(self, args: list[str]) -> str:
        return "\n".join(t.describe() for t in self.dbg.machine.stages.timeline)

    def cmd_backtrace(self, args: list[str]) -> str:
        state = self.dbg.state()
        symbols = self.dbg.symbols
        lines = [f"#0 {format_pc(state, symbols)}"]
        if state.mode in ("real", "vm86"):
            return "\n".join(lines + ["(no frame-pointer walk in real mode)"])
        size = 8 if state.mode == "long" else 4
        frame = state.gprs["rbp"] & ((1 << 8 * size) - 1)
        for depth in range(1, 16):
            try:
                raw = read_linear(self.dbg.reader, state, frame, 2 * size)
            except PageFault:
                break
            saved, ret = int.from_bytes(raw[:size], "little"), int.from_bytes(raw[size:], "little")
            name = symbols.name_for(ret) if symbols else None
            if ret == 0 or (symbols and name is None):
                break
            lines.append(f"#{depth} {ret:#x}" + (f" <{name}>" if name else ""))
            if saved <= frame:
                break
            frame = saved
        return "\n".join(lines)

    def cmd_status(self, args: list[str]) -> str:
        state = self.dbg.state()
        return status_line(state, self.dbg.machine.stages.current, self.dbg.instructions, self.dbg.symbols)

    def cmd_help(self, args: list[str]) -> str:
        return HELP

    def cmd_quit(self, args: list[str]) -> str:
        self.quit = True
        return ""

    TABLE = {
        "step": cmd_step, "s": cmd_step, "si": cmd_step, "stepi": cmd_step,
        "next": cmd_next, "n": cmd_next,
        "continue": cmd_continue, "c": cmd_continue, "cont": cmd_continue,
        "until": cmd_until, "back": cmd_back, "reverse-step": cmd_back,
        "break": cmd_break, "b": cmd_break, "watch": cmd_watch, "delete": cmd_delete, "info": cmd_info,
        "regs": cmd_regs, "registers": cmd_regs, "gdt": cmd_gdt, "idt": cmd_idt,
        "pagetable": cmd_pagetable, "disas": cmd_disas, "stages": cmd_stages,
        "backtrace": cmd_backtrace, "bt": cmd_backtrace, "status": cmd_status,
        "help": cmd_help, "quit": cmd_quit, "q": cmd_quit,
    }  # fmt: skip
