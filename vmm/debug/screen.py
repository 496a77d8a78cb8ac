"""The interactive debugger on a terminal: a screen a class can read when stdout is a
TTY (code around pc with the next instruction highlighted, registers with changes in
reverse video, a status line with the stage and mode), plain lines otherwise."""

from __future__ import annotations

import sys

from vmm.debug.commands import Commands
from vmm.debug.views import format_registers, status_line
from vmm.errors import VmmError

CLEAR = "\x1b[H\x1b[2J"
RUN_COMMANDS = {"step", "s", "si", "stepi", "next", "n", "continue", "c", "cont", "until", "back", "reverse-step"}


def render(commands: Commands, message: str) -> str:
    dbg = commands.dbg
    state = dbg.state()
    code = commands.disasm.format(state, state.pc, 12, current=state.pc, highlight=True)
    regs = format_registers(state, commands.previous, highlight=True)
    status = status_line(state, dbg.machine.stages.current, dbg.instructions, dbg.symbols)
    return f"{CLEAR}{code}\n\n{regs}\n\n\x1b[7m {status} \x1b[0m\n{message}\n"


def interactive(dbg) -> int:
    tty = sys.stdout.isatty()
    commands = Commands(dbg, highlight=tty)
    if tty:
        sys.stdout.write(render(commands, "type help for the commands"))
    else:
        print(commands.cmd_status([]))
    last = ""
    while not commands.quit:
        try:
            line = input("(vmm) ")
        except EOFError:
            break
        line = line.strip() or last  # an empty line repeats the last command, as gdb
        last = line
        try:
            text = commands.run(line)
        except VmmError as exc:
            text = f"error: {exc}"
        if tty and line.split()[:1] and line.split()[0] in RUN_COMMANDS:
            sys.stdout.write(render(commands, text.splitlines()[0] if text else ""))
        elif text:
            print(text)
    return 0
