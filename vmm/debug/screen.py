"""`vmm step` on a terminal: a full-screen prompt_toolkit application that fits 80x24 and
up, for a projector.

From the top: code around pc (the source line first when the ELF has one), registers
(64-bit in three columns), one status line (the boot timeline, mode, count, pc), the
command output in its own pane (PageUp/PageDown), the guest's serial output, and the
``(vmm)`` prompt with gdb's habits: history (up-arrow, saved per user), Tab completion of
commands, registers and symbols, Enter on an empty line repeats the last command,
Ctrl-C stops a run and returns to the prompt, Ctrl-D quits. F2 types to the guest (each
line goes to COM1 with Enter) until F2 again.

Commands run in a worker thread so the screen keeps drawing (the serial pane follows the
guest) and Ctrl-C reaches the engine, which stops at its next host check; the panes that
read the CPU are drawn from a snapshot taken when the command ended, never while the
machine runs. Without a terminal the same commands are read line by line.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from prompt_toolkit.completion import Completer, Completion

from vmm.debug import panes
from vmm.debug.commands import Commands
from vmm.errors import VmmError

REGISTERS = ["$rax", "$rbx", "$rcx", "$rdx", "$rsi", "$rdi", "$rbp", "$rsp", "$rip", "$pc", "$sp", "$eflags",
             "$cr0", "$cr3", "$cr4", "$efer", "$cs", "$ss", "$ds"] + [f"$r{i}" for i in range(8, 16)]  # fmt: skip
WORDS_AFTER = {"break": ["stage", "mode", "vector", "port", "cr0", "cr4", "efer", "gdt", "idt"],
               "info": ["breakpoints", "registers", "stages", "symbol", "line"]}  # fmt: skip


def history_path() -> Path:
    """Per user, as readline's ~/.gdb_history: $XDG_STATE_HOME/vmm/step_history."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "vmm" / "step_history"


def run_line(commands: Commands, line: str) -> str:
    try:
        return commands.run(line)
    except VmmError as exc:
        return f"error: {exc}"


def interactive(dbg) -> int:
    if sys.stdin.isatty() and sys.stdout.isatty():
        return Screen(dbg).run()
    return line_mode(dbg)


def line_mode(dbg) -> int:
    """stdin not a terminal: one command per line, Ctrl-C (SIGINT) stops a run."""
    commands = Commands(dbg)
    print(commands.cmd_status([]))
    previous = signal.signal(signal.SIGINT, lambda *_: dbg.interrupt())
    try:
        last = ""
        for raw in sys.stdin:
            line = raw.strip() or last
            last = line
            print(f"(vmm) {line}")
            text = run_line(commands, line)
            if text:
                print(text, flush=True)
            if commands.quit:
                break
    finally:
        signal.signal(signal.SIGINT, previous)
    return 0


class Screen:
    def __init__(self, dbg) -> None:
        self.dbg = dbg
        self.commands = Commands(dbg)
        self.output: list[str] = ["vmm step: type help for the commands; Ctrl-D quits"]
        for note in dbg.symbols.notes if dbg.symbols else []:
            self.output.append(f"note: --symbols {note}")
        self.scroll = 0  # output lines scrolled back from the end
        self.busy = False
        self.to_guest = False
        self.last = ""
        self.snapshot()

    # ---- what the panes show ----

    def snapshot(self) -> None:
        """Read the CPU once, between commands (the panes draw from this)."""
        self.state = self.dbg.state()
        self.code_cache: dict[int, list[str]] = {}

    def rows(self) -> int:
        from prompt_toolkit.application import get_app

        return get_app().output.get_size().rows

    def heights(self) -> tuple[int, int, int]:
        """(code, output, serial) heights for the terminal's rows; the rest is fixed:
        registers, status, serial title, prompt."""
        spare = max(6, self.rows() - panes.REGISTER_LINES - 3)
        code = max(3, spare * 4 // 10)
        serial = max(2, spare * 3 // 10)
        return code, max(1, spare - code - serial), serial

    def code_text(self):
        height = self.heights()[0]
        if height not in self.code_cache:
            self.code_cache[height] = panes.code_lines(self.commands, self.state, height)
        lines = self.code_cache[height]
        return [("class:pc" if line.startswith("=>") else "", line + "\n") for line in lines]

    def register_text(self) -> str:
        return "\n".join(panes.register_lines(self.state, getattr(self.commands, "previous_for_regs", None)))

    def status(self) -> str:
        return " " + panes.status_text(self.commands, self.state, self.busy)

    def output_text(self) -> str:
        height = self.heights()[1]
        end = len(self.output) - self.scroll
        return "\n".join(self.output[max(0, end - height) : end])

    def serial_title(self) -> str:
        mode = "F2: back to vmm commands" if self.to_guest else "F2 or `send TEXT` types to the guest"
        return f"--- serial (COM1) --- {mode} "

    def serial_text(self) -> str:
        from prompt_toolkit.application import get_app

        width = get_app().output.get_size().columns
        return "\n".join(panes.serial_lines(self.dbg.machine.serial_transcript, self.heights()[2], width))

    def prompt(self) -> str:
        if self.busy:
            return "(running) "
        return "(guest) " if self.to_guest else "(vmm) "

    # ---- running commands ----

    def submit(self, app, line: str) -> None:
        if self.to_guest:
            self.dbg.machine.send((line + "\r").encode())
            return
        line = line.strip() or self.last
        if not line:
            return
        self.last = line
        self.output.append(f"(vmm) {line}")
        self.scroll = 0
        self.busy = True

        def work() -> None:
            text = run_line(self.commands, line)
            self.snapshot()
            self.output.extend(text.splitlines() if text else [])
            self.busy = False
            if self.commands.quit:
                app.exit(result=0)
            app.invalidate()

        threading.Thread(target=work, daemon=True, name="vmm-step-command").start()

    def run(self) -> int:
        from prompt_toolkit.application import Application
        from prompt_toolkit.buffer import Buffer
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.layout import HSplit, Layout, Window
        from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
        from prompt_toolkit.layout.processors import BeforeInput
        from prompt_toolkit.styles import Style

        path = history_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            history = FileHistory(str(path))
        except OSError:
            history = InMemoryHistory()  # a read-only home: history for this session only
        completer = StepCompleter(self.dbg)
        screen = self

        def accept(buffer: Buffer) -> bool:
            if screen.busy:
                return True
            screen.submit(app, buffer.text)
            return False  # the buffer resets, the line goes to the history

        buffer = Buffer(history=history, completer=completer, accept_handler=accept, multiline=False,
                        complete_while_typing=False)  # fmt: skip
        keys = KeyBindings()

        @keys.add("c-c")
        def _interrupt(event) -> None:
            if screen.busy:
                screen.dbg.interrupt()
            else:
                event.current_buffer.reset()

        @keys.add("c-d")
        def _quit(event) -> None:
            if not event.current_buffer.text and not screen.busy:
                event.app.exit(result=0)

        @keys.add("f2")
        def _guest(event) -> None:
            screen.to_guest = not screen.to_guest

        @keys.add("pageup")
        def _up(event) -> None:
            screen.scroll = min(len(screen.output) - 1, screen.scroll + screen.heights()[1])

        @keys.add("pagedown")
        def _down(event) -> None:
            screen.scroll = max(0, screen.scroll - screen.heights()[1])

        def fixed(text, height=None, style=""):
            return Window(FormattedTextControl(text), height=height, wrap_lines=False, style=style)

        body = HSplit([
            fixed(self.code_text, height=lambda: self.heights()[0]),
            fixed(self.register_text, height=panes.REGISTER_LINES),
            fixed(self.status, height=1, style="class:status"),
            fixed(self.output_text, height=lambda: self.heights()[1]),
            fixed(self.serial_title, height=1, style="class:title"),
            fixed(self.serial_text, height=lambda: self.heights()[2]),
            Window(BufferControl(buffer, input_processors=[BeforeInput(lambda: self.prompt())]), height=1),
        ])  # fmt: skip
        style = Style.from_dict({"status": "reverse", "title": "bold", "pc": "bold"})
        app = Application(layout=Layout(body, focused_element=buffer), key_bindings=keys, style=style,
                          full_screen=True, refresh_interval=0.2, mouse_support=False)  # fmt: skip
        result = app.run()
        return result or 0


class StepCompleter(Completer):
    """Commands first, then symbols, registers and the words a command takes."""

    def __init__(self, dbg) -> None:
        self.dbg = dbg
        self.commands = sorted(set(Commands.TABLE) | {"x/8i", "x/4g", "print", "p", "info", "finish", "list"})

    def get_completions(self, document, complete_event):
        text = document.text_before_cursor
        words = text.split()
        word = "" if text.endswith(" ") else (words[-1] if words else "")
        if len(words) <= 1 and not text.endswith(" "):
            choices = self.commands
        else:
            choices = list(WORDS_AFTER.get(words[0], [])) + REGISTERS
            if self.dbg.symbols:
                choices += self.dbg.symbols.names()
        bare = word.lstrip("*")
        for choice in choices:
            if choice.startswith(bare) and choice != bare:
                yield Completion(choice, start_position=-len(bare))
