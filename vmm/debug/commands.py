"""The debugger's command language, shared by `vmm step` and gdb's `monitor` command.

Each command takes one line and returns the text to show; errors are DebugError lines.
Addresses are numbers (C syntax: 0x7c00), ``seg:off`` in hex (0000:7c00), a symbol
(with ``--symbols ELF``) or ``$pc``.
"""

from __future__ import annotations

import os
import re
import shlex

from vmm.cpu.paging import PageFault, read_linear, walk
from vmm.debug.engine import MODES, WATCHED_REGISTERS, DebugError, Debugger, Event
from vmm.debug.expressions import evaluate, register_value
from vmm.debug.stages import STAGES
from vmm.debug.views import Disassembler, format_descriptor_table, format_pc, format_registers, status_line

HELP = """\
step [N] | s | si [N]   run N instructions (default 1)
next | n              step over a call, int, rep or loop
continue | c [N]      run to the next breakpoint (Ctrl-C stops it)
until ADDR            run to ADDR          finish     run until this function returns
back [N]              go back N instructions (reverse step)
break ADDR | b *ADDR  break on an instruction (0x7c00, 0000:7c00, kmain, kmain+4, $rip)
break stage NAME      firmware, bootloader, kernel, init
break mode NAME       real, protected, long, compat
break cr0|cr4|efer|gdt|idt     break when that register or table changes
break vector N        break on entry to a handler: exceptions, INT n and hardware IRQs
break port N          stop after an IN/OUT to I/O port N
watch ADDR [LEN] [r|w|rw]      stop after a write (default), read or either of LEN bytes
delete [N...]         delete breakpoints (all without N)
info breakpoints | registers [NAME...] | stages | symbol ADDR | line [ADDR]
regs | gdt | idt | pagetable [ADDR] | stages | backtrace | bt
x/NFU EXPR            examine: F x d u i s, U b h w g (x/4g $rsp, x/8i $rip, x/s ADDR)
print | p[/x] EXPR    a value: registers ($rax, rip), symbols, sums (p $rsp+8)
disas [ADDR] [N]      disassemble (default: at pc)      list [ADDR]  source lines
send TEXT | send -n TEXT       type to the guest (COM1), with or without Enter
status | help | quit | q (Ctrl-D)"""


MAX_EXAMINE = 4096


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
        self.last_format, self.last_unit = "x", "b"
        self.values: list[int] = []  # gdb's $1, $2 ... of print

    # ---- parsing ----

    def address(self, text: str) -> int:
        return evaluate(text, self.dbg.state(), self.dbg.symbols)

    def run(self, line: str) -> str:
        line = line.strip()
        if not line or line.startswith("#"):
            return ""
        match = re.fullmatch(r"x(?:/(\d*)([a-z]*))?\s+(.+)", line)
        if match:
            return self.examine(int(match.group(1) or 1), match.group(2) or "", match.group(3))
        match = re.fullmatch(r"(?:p|print)(?:/([xdu]))?\s+(.+)", line)
        if match:
            return self.print_value(match.group(1) or "", match.group(2))
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
        if not args:  # gdb: `delete` removes every breakpoint
            gone = [self.dbg.delete(bp.number).describe() for bp in list(self.dbg.breakpoints)]
            return "deleted " + ", ".join(gone) if gone else "no breakpoints"
        return "\n".join(f"deleted {self.dbg.delete(self._number(arg)).describe()}" for arg in args)

    def _number(self, text: str) -> int:
        try:
            return int(text.lstrip("#"), 0)
        except ValueError:
            raise CommandError(f"{text!r} is not a breakpoint number") from None

    def cmd_info(self, args: list[str]) -> str:
        what = args[0] if args else ""
        if what and "breakpoints".startswith(what):
            return "\n".join(bp.describe() for bp in self.dbg.breakpoints) or "no breakpoints"
        if what and "registers".startswith(what):
            if len(args) > 1:
                state = self.dbg.state()
                lines = []
                for name in args[1:]:
                    value = register_value(state, name)
                    if value is None:
                        raise CommandError(f"no register {name!r}")
                    lines.append(f"{name.lstrip('$'):<8} {value:#018x}  {value}")
                return "\n".join(lines)
            return self.cmd_regs([])
        if what and "stages".startswith(what):
            return self.cmd_stages([])
        if what and "symbol".startswith(what) and len(args) > 1:
            addr = self.address(args[1])
            name = self.dbg.symbols.name_for(addr) if self.dbg.symbols else None
            return f"{addr:#x} is {name}" if name else f"no symbol matches {addr:#x}"
        if what and "line".startswith(what):
            return self._where_line(self.address(args[1]) if len(args) > 1 else self.dbg.state().pc)
        raise CommandError("info breakpoints | registers [NAME...] | stages | symbol ADDR | line [ADDR]")

    def _where_line(self, addr: int) -> str:
        found = self.dbg.symbols.line_for(addr) if self.dbg.symbols else None
        if found is None:
            return f"no line table covers {addr:#x}"
        return f"{addr:#x} is at {found[0]}:{found[1]}"

    def cmd_finish(self, args: list[str]) -> str:
        """Run until the current function returns (to the return address on the stack:
        at the function's first instruction [sp], else [bp + word], as a frame-pointer walk)."""
        state = self.dbg.state()
        if state.mode in ("real", "vm86"):
            raise CommandError("finish: no frame walk in real mode (use until ADDR)")
        size = 8 if state.mode == "long" else 4
        mask = (1 << 8 * size) - 1
        at_entry = self.dbg.symbols is not None and self.dbg.symbols.name_for(state.pc, exact=True) is not None
        slot = state.gprs["rsp"] & mask if at_entry else (state.gprs["rbp"] + size) & mask
        try:
            ret = int.from_bytes(read_linear(self.dbg.reader, state, slot, size), "little")
        except PageFault as exc:
            raise CommandError(f"finish: cannot read the return address: {exc}") from None
        self.previous = state
        name = self.dbg.symbols.name_for(ret) if self.dbg.symbols else None
        event = self.dbg.until(ret, self.max_count)
        if event.kind == "done":
            event.text = f"returned to {ret:#x}" + (f" <{name}>" if name else "")
        return self.after(event)

    def cmd_list(self, args: list[str]) -> str:
        """Source lines around pc (or ADDR) when the ELF has a line table."""
        addr = self.address(args[0]) if args else self.dbg.state().pc
        found = self.dbg.symbols.line_for(addr) if self.dbg.symbols else None
        if found is None:
            raise CommandError(f"no source for {addr:#x} (needs --symbols ELF built with -g)")
        path, line = found
        relative = os.path.relpath(path)
        path = path if relative.startswith("..") else relative
        try:
            with open(path, errors="replace") as handle:
                text = handle.read().splitlines()
        except OSError as exc:
            raise CommandError(f"{path}: cannot read the source ({exc.strerror})") from None
        first = max(1, line - 4)
        shown = [
            f"{'=>' if n == line else '  '} {n:>4} {text[n - 1]}" for n in range(first, min(len(text), first + 9) + 1)
        ]
        return f"{path}:{line}\n" + "\n".join(shown)

    def cmd_send(self, args: list[str]) -> str:
        """Type to the guest's COM1: the text, then Enter (``send -n`` leaves Enter out)."""
        newline = True
        if args and args[0] == "-n":
            newline, args = False, args[1:]
        text = " ".join(args) + ("\r" if newline else "")
        self.dbg.machine.send(text.encode())
        return f"sent {len(text)} bytes to COM1"

    # ---- looking ----

    def cmd_regs(self, args: list[str]) -> str:
        return format_registers(self.dbg.state(), self.previous, self.highlight)

    def cmd_gdt(self, args: list[str]) -> str:
        return format_descriptor_table(self.dbg.reader, self.dbg.state(), "gdt")

    def cmd_idt(self, args: list[str]) -> str:
        return format_descriptor_table(self.dbg.reader, self.dbg.state(), "idt")

    def cmd_pagetable(self, args: list[str]) -> str:
        state = self.dbg.state()
        linear = self.address(args[0]) if args else state.pc  # without an address: pc's walk from CR3
        lines = [f"cr3={state.cr3:#x} mode {state.mode}" + ("" if args else f", walk of pc {linear:#x}")]
        try:
            phys, levels = walk(self.dbg.reader, state, linear)
        except PageFault as exc:
            return "\n".join(lines + [str(exc)])
        lines += [level.describe() for level in levels] or ["paging off: linear = physical"]
        lines.append(f"{linear:#x} -> physical {phys:#x}")
        return "\n".join(lines)

    def examine(self, count: int, letters: str, where: str) -> str:
        """gdb's ``x/NFU``: F one of x d u i s, U one of b h w g (sticky, as gdb)."""
        bad = set(letters) - set("xduisbhwg")
        if bad:
            raise CommandError(f"x/{letters}: unknown format or unit {''.join(sorted(bad))!r} (x d u i s; b h w g)")
        fmt = next((c for c in letters if c in "xduis"), self.last_format)
        unit = next((c for c in letters if c in "bhwg"), self.last_unit)
        self.last_format, self.last_unit = fmt, unit
        if count > MAX_EXAMINE:
            raise CommandError(f"x: at most {MAX_EXAMINE} units at once")
        addr = self.address(where)
        state = self.dbg.state()
        if fmt == "i":
            return self.disasm.format(state, addr, count, current=state.pc)
        if fmt == "s":
            try:
                data = read_linear(self.dbg.reader, state, addr, 256)
            except PageFault as exc:
                raise CommandError(str(exc)) from None
            text = data.split(bytes(1))[0].decode("latin-1")
            return f"{addr:#x}: {text!r}"
        size = {"b": 1, "h": 2, "w": 4, "g": 8}[unit]
        try:
            data = read_linear(self.dbg.reader, state, addr, count * size)
        except PageFault as exc:
            raise CommandError(str(exc)) from None
        lines = []
        per_line = 16 // size if fmt == "x" else max(1, 8 // size)
        for i in range(0, count, per_line):
            cells = []
            for j in range(min(per_line, count - i)):
                value = int.from_bytes(data[(i + j) * size : (i + j + 1) * size], "little", signed=fmt == "d")
                cells.append(f"{value:0{2 * size}x}" if fmt == "x" else str(value))
            label = self.dbg.symbols.name_for(addr + i * size) if self.dbg.symbols else None
            lines.append(f"{addr + i * size:#x}{f' <{label}>' if label else ''}: " + " ".join(cells))
        return "\n".join(lines)

    def print_value(self, fmt: str, expression: str) -> str:
        value = self.address(expression)
        self.values.append(value)
        name = self.dbg.symbols.name_for(value) if self.dbg.symbols else None
        text = {"x": f"{value:#x}", "d": str(value - (1 << 64) if value >> 63 else value), "u": str(value)}.get(
            fmt, f"{value:#x} ({value})"
        )
        return f"${len(self.values)} = {text}" + (f" <{name}>" if name and not fmt else "")

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
        if symbols is not None and symbols.name_for(state.pc, exact=True) is not None:
            # At a function's first instruction the return address is at [sp] (no frame yet).
            try:
                ret = int.from_bytes(read_linear(self.dbg.reader, state, state.gprs["rsp"], size), "little")
            except PageFault:
                ret = 0
            name = symbols.name_for(ret)
            if name:
                lines.append(f"#1 {ret:#x} <{name}>")
        for depth in range(len(lines), 16):
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
        "finish": cmd_finish, "list": cmd_list, "l": cmd_list, "send": cmd_send, "d": cmd_delete,
        "regs": cmd_regs, "registers": cmd_regs, "gdt": cmd_gdt, "idt": cmd_idt,
        "pagetable": cmd_pagetable, "disas": cmd_disas, "stages": cmd_stages,
        "backtrace": cmd_backtrace, "bt": cmd_backtrace, "status": cmd_status,
        "help": cmd_help, "quit": cmd_quit, "q": cmd_quit,
    }  # fmt: skip
