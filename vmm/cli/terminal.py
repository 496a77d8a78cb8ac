"""The host keyboard and terminal while a guest runs with ``--serial stdio``.

On a terminal, stdin goes raw and Ctrl-] leaves, as in telnet; the terminal is restored
when the run ends. Typed keys go to COM1 as a serial terminal sends them, or to the PS/2
keyboard as scan codes (arrows, function keys, Esc, Ctrl and Alt too), as ``--keys`` and
the guest decide (vmm.keys.KeyRouter).
Standard input that is not a terminal (a pipe, a file, ``</dev/null``) is fed to the guest
as typed lines, once the guest reads COM1; at its end the guest just gets no more input.
"""

from __future__ import annotations

import os
import sys

CTRL_RIGHT_BRACKET = b"\x1d"
DIM, NORMAL = "\x1b[2m", "\x1b[0m"
HINT = "vmm: Ctrl-] leaves"


class StdinFeeder:
    """Host keyboard → guest COM1 (raw terminal when stdin is a TTY)."""

    def __init__(self, machine, keys: str = "auto") -> None:
        from vmm.keys import KeyRouter

        self.machine = machine
        self.router = KeyRouter(machine, keys)
        self.fd = sys.stdin.fileno() if sys.stdin and not sys.stdin.closed else None
        self.tty_fd = None  # the terminal put in raw mode, restored by close()
        self.saved = None
        self.left = False  # the user pressed Ctrl-]
        self.stop_on_leave = True  # False: the caller (the gdb stub) looks at ``left`` itself
        self.pending = bytearray()
        if self.fd is not None and os.isatty(self.fd):
            import termios
            import tty

            self.tty_fd = self.fd
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
            if sys.stderr.isatty():
                # One dim line, as QEMU's "Ctrl-a h": how to get out of a raw terminal.
                sys.stderr.write(f"{DIM}{HINT}{NORMAL}\r\n")
                sys.stderr.flush()
        if self.fd is not None:
            os.set_blocking(self.fd, False)

    @property
    def raw(self) -> bool:
        """True while the terminal is in raw mode (a line must end in CR LF to start at the left)."""
        return self.saved is not None

    def poll(self) -> None:
        if self.pending and self.machine.uart.listening:
            self.machine.send(bytes(self.pending))
            self.pending.clear()
        if self.fd is None:
            return
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            self.fd = None
            return
        if not data:
            self.fd = None
            return
        if self.saved is not None and CTRL_RIGHT_BRACKET in data:  # Ctrl-] leaves, as telnet
            before = data[: data.index(CTRL_RIGHT_BRACKET)]
            if before:
                self.router.type(before)
            self.left = True
            if self.stop_on_leave:
                self.machine.request_stop("stopped")
            return
        if self.saved is None:
            # Piped text: a line ends in CR on a serial terminal (what Enter sends), so
            # LF and CR LF both become one CR. It waits until the guest reads COM1: a
            # guest that sets up its UART clears the receive FIFO, losing what came early.
            self.pending.extend(data.replace(b"\r\n", b"\r").replace(b"\n", b"\r"))
            return
        self.router.type(data)

    def line_end(self) -> str:
        """How a line vmm prints while the guest runs must end (raw mode needs the CR)."""
        return "\r\n" if self.saved is not None else "\n"

    def close(self) -> None:
        """Give the terminal back as it was, with the cursor at the start of a line."""
        if self.fd is not None:
            os.set_blocking(self.fd, True)
        if self.saved is None:
            return
        import termios

        termios.tcsetattr(self.tty_fd, termios.TCSADRAIN, self.saved)
        self.saved = None
        transcript = self.machine.serial_transcript
        if transcript and not transcript.endswith(b"\n") and sys.stdout.isatty():
            sys.stdout.write("\n")  # the host prompt must not land after the guest's "toyos$ "
            sys.stdout.flush()


class GdbKeys:
    """How the user at vmm's terminal leaves `vmm run --gdb`: Ctrl-] on a raw terminal
    (``--serial stdio``; other keys go to the guest), or Ctrl-C (SIGINT) otherwise. The
    gdb stub asks ``left()`` between its runs, so the guest is never stopped inside a
    CPU callback (no "Exception ignored from cffi callback")."""

    def __init__(self, feeder: StdinFeeder | None) -> None:
        import signal

        self.feeder = feeder
        self.interrupted = False
        self.previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, _signum, _frame) -> None:
        self.interrupted = True

    def left(self) -> bool:
        return self.interrupted or bool(self.feeder and self.feeder.left)

    def close(self) -> None:
        import signal

        signal.signal(signal.SIGINT, self.previous)
