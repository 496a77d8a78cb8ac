"""Keys from the host to the guest: terminal input and key names as PS/2 scan codes.

A terminal in raw mode sends what a key produces: a byte for a character (Ctrl+letter as
0x01-0x1A), an escape sequence for the rest (xterm and the Linux console: ``ESC [ A`` for
Up, ``ESC O P`` for F1, ``ESC [ 15 ~`` for F5, ``ESC [ 1 ; 5 A`` for Ctrl+Up) and ESC
before a character for Alt+character. :class:`TerminalKeys` turns that back into the
keys' scan code set 1 make and break codes (IBM PC AT Technical Reference, keyboard scan
codes; E0-prefixed codes for the cursor block), which the 8042 hands the guest on IRQ 1.
A lone ESC at the end of what the terminal sent is the Esc key.

:func:`key_scancodes` does the same for key names as tmux spells them (``Up``, ``F1``,
``Escape``, ``C-a``, ``M-x``, ``Enter``, ``S-Tab``), for expectation files.

:class:`KeyRouter` decides where typed keys go (``vmm run --keys``): ``serial`` sends the
bytes to COM1 (a serial console), ``ps2`` the scan codes to the keyboard, and ``auto`` (the
default) asks which device the guest listens to: COM1 when the guest has enabled the
UART's receive interrupt (IER bit 0, what a serial console driver such as Linux's 8250 or
the toy OS does), the keyboard otherwise (the BIOS's INT 09h/16h, boot menus, programs
that read INT 16h or port 60h).
"""

from __future__ import annotations

from vmm.devices.i8042 import CTRL, SCANCODES, SHIFT, scancodes_for
from vmm.errors import ConfigError

ALT = 0x38
ESC = 0x1B
EXTENDED = 0xE0
# Keys of the cursor block and the function keys: (code, extended).
NAMED_KEYS: dict[str, tuple[int, bool]] = {
    "Up": (0x48, True), "Down": (0x50, True), "Left": (0x4B, True), "Right": (0x4D, True),
    "Home": (0x47, True), "End": (0x4F, True), "PageUp": (0x49, True), "PageDown": (0x51, True),
    "Insert": (0x52, True), "Delete": (0x53, True),
    "Escape": (0x01, False), "Enter": (0x1C, False), "Tab": (0x0F, False), "BSpace": (0x0E, False),
    "Space": (0x39, False),
    **{f"F{n}": (0x3A + n, False) for n in range(1, 11)}, "F11": (0x57, False), "F12": (0x58, False),
}  # fmt: skip
NAME_ALIASES = {"Esc": "Escape", "PgUp": "PageUp", "PPage": "PageUp", "PgDn": "PageDown", "NPage": "PageDown",
                "IC": "Insert", "DC": "Delete", "Backspace": "BSpace", "Return": "Enter"}  # fmt: skip
# Final bytes of CSI/SS3 sequences, and the numbers of CSI n ~.
CSI_FINAL = {"A": "Up", "B": "Down", "C": "Right", "D": "Left", "H": "Home", "F": "End",
             "P": "F1", "Q": "F2", "R": "F3", "S": "F4"}  # fmt: skip
CSI_TILDE = {1: "Home", 2: "Insert", 3: "Delete", 4: "End", 5: "PageUp", 6: "PageDown", 7: "Home", 8: "End",
             11: "F1", 12: "F2", 13: "F3", 14: "F4", 15: "F5", 17: "F6", 18: "F7", 19: "F8", 20: "F9",
             21: "F10", 23: "F11", 24: "F12"}  # fmt: skip
LINUX_CONSOLE_F = {"A": "F1", "B": "F2", "C": "F3", "D": "F4", "E": "F5"}  # ESC [ [ A..E


def press(code: int, extended: bool, shift: bool = False, ctrl: bool = False, alt: bool = False) -> bytes:
    """Make and break codes of one key with modifiers held around it."""
    mods = [m for m, held in ((CTRL, ctrl), (ALT, alt), (SHIFT, shift)) if held]
    prefix = bytes((EXTENDED,)) if extended else b""
    out = bytearray(mods)
    out += prefix + bytes((code,)) + prefix + bytes((code | 0x80,))
    out += bytes(m | 0x80 for m in reversed(mods))
    return bytes(out)


def named(name: str, shift: bool = False, ctrl: bool = False, alt: bool = False) -> bytes:
    code, extended = NAMED_KEYS[name]
    return press(code, extended, shift, ctrl, alt)


def char_key(char: str, alt: bool = False) -> bytes:
    codes = scancodes_for(char)
    return bytes((ALT,)) + codes + bytes((ALT | 0x80,)) if alt and codes else codes


class TerminalKeys:
    """Bytes from a raw terminal → scan codes (one instance per terminal: it keeps an
    escape sequence cut between two reads)."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        data = self.pending + data
        self.pending = b""
        out = bytearray()
        i = 0
        while i < len(data):
            byte = data[i]
            if byte != ESC:
                out += char_key(chr(byte)) if byte < 0x80 else b""
                i += 1
                continue
            if i + 1 == len(data):  # ESC on its own: the Esc key
                out += named("Escape")
                i += 1
                continue
            following = data[i + 1]
            if following in (ord("["), ord("O")):
                end = self._sequence_end(data, i + 2)
                if end is None:  # cut between two reads: wait for the rest
                    self.pending = data[i:]
                    break
                out += self._sequence(data[i + 1 : end + 1])
                i = end + 1
                continue
            if following == ESC:  # ESC ESC: Esc, then look again
                out += named("Escape")
                i += 1
                continue
            out += char_key(chr(following), alt=True) if following < 0x80 else b""
            i += 2
        return bytes(out)

    @staticmethod
    def _sequence_end(data: bytes, start: int) -> int | None:
        """Index of the final byte of a CSI/SS3 sequence whose parameters start at ``start``."""
        j = start
        if j < len(data) and data[j] == ord("["):  # Linux console F1-F5: ESC [ [ A
            return j + 1 if j + 1 < len(data) else None
        while j < len(data) and (0x30 <= data[j] <= 0x3F):  # parameter bytes: digits ; etc.
            j += 1
        return j if j < len(data) else None

    @staticmethod
    def _sequence(body: bytes) -> bytes:
        """Scan codes for ``[...X`` or ``O...X`` (the bytes after ESC); unknown: nothing."""
        text = body.decode("latin-1")
        if text.startswith("[[") and text[2:] in LINUX_CONSOLE_F:
            return named(LINUX_CONSOLE_F[text[2:]])
        final, params = text[-1], text[1:-1].split(";")
        modifier = int(params[1]) - 1 if len(params) > 1 and params[1].isdigit() and params[1] != "0" else 0
        shift, alt, ctrl = bool(modifier & 1), bool(modifier & 2), bool(modifier & 4)
        if final == "~":
            number = int(params[0]) if params[0].isdigit() else 0
            name = CSI_TILDE.get(number)
        elif final == "Z":  # back tab
            return named("Tab", shift=True)
        else:
            name = CSI_FINAL.get(final)
        return named(name, shift, ctrl, alt) if name else b""


def key_scancodes(spec: str) -> bytes:
    """Scan codes for one key named as tmux names it: ``Up``, ``F5``, ``Escape``, ``Enter``,
    ``C-c``, ``M-x``, ``S-Tab``, ``C-M-Delete``, or a single character."""
    shift = ctrl = alt = False
    rest = spec
    while len(rest) > 2 and rest[1] == "-" and rest[0] in "CMS":
        ctrl, alt, shift = ctrl or rest[0] == "C", alt or rest[0] == "M", shift or rest[0] == "S"
        rest = rest[2:]
    name = NAME_ALIASES.get(rest, rest)
    if name in NAMED_KEYS:
        return named(name, shift, ctrl, alt)
    if len(rest) == 1 and rest in SCANCODES:
        code, needs_shift = SCANCODES[rest.lower() if ctrl and rest.isalpha() else rest]
        return press(code, False, shift or needs_shift, ctrl, alt)
    known = ", ".join(sorted(NAMED_KEYS))
    raise ConfigError(f"unknown key {spec!r} (a character, or one of {known}, with C-, M-, S- in front)")


def scancodes_for_keys(keys: tuple[str, ...] | list[str]) -> bytes:
    """``send-keys`` as tmux reads it: each argument a key name, or else text to type."""
    out = bytearray()
    for key in keys:
        try:
            out += key_scancodes(key)
        except ConfigError:
            typed = scancodes_for(key)
            if not typed:
                raise ConfigError(f"{key!r} is neither a key name nor text a US keyboard can type") from None
            out += typed
    return bytes(out)


KEY_MODES = ("auto", "ps2", "serial")


class KeyRouter:
    """Typed bytes → COM1 or the keyboard, as ``mode`` says (see the module docstring)."""

    def __init__(self, machine, mode: str = "auto") -> None:
        if mode not in KEY_MODES:
            raise ConfigError(f"--keys: {mode!r}: choose one of {', '.join(KEY_MODES)}")
        self.machine = machine
        self.mode = mode
        self.terminal = TerminalKeys()

    def to_serial(self) -> bool:
        if self.mode == "auto":
            return self.machine.uart.receive_interrupt_enabled
        return self.mode == "serial"

    def type(self, data: bytes) -> None:
        if self.to_serial():
            self.machine.send(data)
        else:
            self.machine.kbc.key_scancodes(self.terminal.feed(data))
