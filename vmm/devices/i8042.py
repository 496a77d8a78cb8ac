"""The Intel 8042 keyboard controller with an MF2 keyboard behind it, as on the PC/AT.

Source: IBM PC/AT Technical Reference, "Keyboard Controller" (status register, command
byte, controller commands 0x20-0xFF, output port with A20 gate on bit 1 and system reset
on bit 0) and "Keyboard" (keyboard commands 0xED-0xFF, responses 0xFA ACK, 0xAA BAT
passed, 0xEE echo); scan code set 1 from the same reference (what the controller hands
the CPU when translation is on, as every PC BIOS leaves it).
Ports: 0x60 data, 0x64 status (read) / command (write).

Emulated: status register, command byte and the controller's 32 bytes of RAM (0x20-0x3F,
0x60-0x7F), self-test 0xAA, interface test 0xAB, keyboard disable/enable 0xAD/0xAE,
input port 0xC0, output port 0xD0/0xD1 (A20 and reset), 0xD2 (write keyboard buffer),
0xDD/0xDF (A20 off/on), pulse output 0xF0-0xFF (0xFE resets the system); keyboard reset,
LEDs, echo, identify, scan code set, typematic, enable/disable scanning; host text typed
as set 1 make/break codes; IRQ1 when a byte reaches the output buffer with interrupts on.
Not emulated: the auxiliary (PS/2 mouse) port: its test 0xA9 fails and the controller
reports no mouse, so guests do not probe one; typematic repeat; scan code sets 2 and 3
(the keyboard always emits set 1, the translated form).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from vmm.devices.base import Device
from vmm.irq import IrqLine, NullIrqLine

# Status register bits.
STAT_OBF, STAT_IBF, STAT_SYS, STAT_CMD, STAT_UNLOCKED = 0x01, 0x02, 0x04, 0x08, 0x10
# Command byte bits.
CMD_KBD_INT, CMD_SYS, CMD_KBD_DISABLE, CMD_AUX_DISABLE, CMD_XLATE = 0x01, 0x04, 0x10, 0x20, 0x40
# Output port bits.
OUT_RESET, OUT_A20, OUT_OBF_IRQ1 = 0x01, 0x02, 0x10
OUTPUT_PORT_POWER_ON = 0xCF  # reset line high, A20 on, as QEMU's 8042

KBD_ACK, KBD_BAT_OK, KBD_ECHO, KBD_RESEND = 0xFA, 0xAA, 0xEE, 0xFE
MAX_HOST_QUEUE = 1 << 16  # bytes of typed input held for the guest

# Controller commands that take a data byte on port 0x60.
DATA_COMMANDS = frozenset(range(0x60, 0x80)) | {0xD1, 0xD2, 0xD3, 0xD4}
# Keyboard commands that take a parameter byte: LEDs, scan code set, typematic rate.
KBD_COMMANDS_WITH_DATA = frozenset({0xED, 0xF0, 0xF3})

SHIFT, CTRL = 0x2A, 0x1D
_ROW_KEYS = {
    0x02: "1!", 0x03: "2@", 0x04: "3#", 0x05: "4$", 0x06: "5%", 0x07: "6^", 0x08: "7&",
    0x09: "8*", 0x0A: "9(", 0x0B: "0)", 0x0C: "-_", 0x0D: "=+", 0x1A: "[{", 0x1B: "]}",
    0x27: ";:", 0x28: "'\"", 0x29: "`~", 0x2B: "\\|", 0x33: ",<", 0x34: ".>", 0x35: "/?",
}  # fmt: skip
_LETTER_ROWS = ((0x10, "qwertyuiop"), (0x1E, "asdfghjkl"), (0x2C, "zxcvbnm"))
_SPECIAL = {" ": 0x39, "\n": 0x1C, "\r": 0x1C, "\t": 0x0F, "\b": 0x0E, "\x7f": 0x0E, "\x1b": 0x01}


def _build_scancodes() -> dict[str, tuple[int, bool]]:
    table = {char: (code, False) for char, code in _SPECIAL.items()}
    for code, (plain, shifted) in _ROW_KEYS.items():
        table[plain] = (code, False)
        table[shifted] = (code, True)
    for first, letters in _LETTER_ROWS:
        for offset, letter in enumerate(letters):
            table[letter] = (first + offset, False)
            table[letter.upper()] = (first + offset, True)
    return table


SCANCODES = _build_scancodes()


def scancodes_for(text: str) -> bytes:
    """Set 1 make and break codes typing ``text`` (shift and ctrl pressed around as needed)."""
    out = bytearray()
    for char in text:
        ctrl = False
        if char in SCANCODES:
            code, shift = SCANCODES[char]
        elif "\x01" <= char <= "\x1a":
            code, shift = SCANCODES[chr(ord(char) + 0x60)][0], False
            ctrl = True
        else:
            continue  # no key for it on a US keyboard
        if ctrl:
            out.append(CTRL)
        if shift:
            out.append(SHIFT)
        out += bytes((code, code | 0x80))
        if shift:
            out.append(SHIFT | 0x80)
        if ctrl:
            out.append(CTRL | 0x80)
    return bytes(out)


class I8042(Device):
    """The keyboard controller at 0x60/0x64 and its keyboard."""

    name = "i8042"
    ports = [(0x60, 1), (0x64, 1)]

    def __init__(
        self,
        set_a20: Callable[[bool], None],
        request_reset: Callable[[], None],
        irq1: IrqLine | None = None,
    ) -> None:
        self._set_a20 = set_a20
        self._request_reset = request_reset
        self.irq1 = irq1 if irq1 is not None else NullIrqLine(1)
        self.host_queue: deque[int] = deque()  # typed scan codes not yet taken by the keyboard
        self.reset()

    def reset(self) -> None:
        self.ram = bytearray(32)
        self.ram[0] = CMD_KBD_INT | CMD_XLATE  # the command byte lives at RAM address 0
        self.status = STAT_UNLOCKED
        self.output_port = OUTPUT_PORT_POWER_ON
        self.pending_command: int | None = None  # a controller command waiting for its data
        self.kbd_pending: int | None = None  # a keyboard command waiting for its parameter
        self.controller_queue: deque[int] = deque()  # replies from the controller itself
        self.keyboard_queue: deque[int] = deque()  # replies and scan codes from the keyboard
        self.output_buffer = 0
        self.scanning = True
        self.leds = 0
        self.irq1.lower()

    @property
    def command_byte(self) -> int:
        return self.ram[0]

    # ---- output buffer and IRQ1 ----

    def _fill_output_buffer(self) -> None:
        """Move the next byte into the output buffer if it is empty."""
        if self.status & STAT_OBF:
            return
        if self.controller_queue:
            byte = self.controller_queue.popleft()
        elif not self.command_byte & CMD_KBD_DISABLE and (self.keyboard_queue or self._feed_keyboard()):
            byte = self.keyboard_queue.popleft()
        else:
            return
        self.output_buffer = byte
        self.status |= STAT_OBF
        if self.command_byte & CMD_KBD_INT:
            self.irq1.raise_()

    def _feed_keyboard(self) -> bool:
        if self.scanning and self.host_queue:
            self.keyboard_queue.append(self.host_queue.popleft())
            return True
        return False

    def _reply(self, *data: int) -> None:
        # Bounded like the keyboard's buffer: a guest repeating commands without reading
        # the answers loses them instead of growing the queue.
        if len(self.controller_queue) + len(data) <= 16:
            self.controller_queue.extend(data)
        self._fill_output_buffer()

    def _keyboard_reply(self, *data: int) -> None:
        # The keyboard's own buffer is 16 bytes; replies to a flood of commands beyond
        # that are lost, so a guest cannot grow it without bound.
        if len(self.keyboard_queue) + len(data) <= 16:
            self.keyboard_queue.extend(data)
        self._fill_output_buffer()

    def key_input(self, text: str) -> None:
        """Type ``text`` on the keyboard (US layout, scan code set 1)."""
        room = MAX_HOST_QUEUE - len(self.host_queue)
        self.host_queue.extend(scancodes_for(text)[: max(0, room)])
        self._fill_output_buffer()

    def key_scancodes(self, codes: bytes) -> None:
        """Send raw set 1 scan codes (for keys ``key_input`` has no character for)."""
        room = MAX_HOST_QUEUE - len(self.host_queue)
        self.host_queue.extend(codes[: max(0, room)])
        self._fill_output_buffer()

    # ---- port 0x60 ----

    def _read_data(self) -> int:
        value = self.output_buffer  # an empty buffer reads as its last byte again
        if self.status & STAT_OBF:
            self.status &= ~STAT_OBF
            self.irq1.lower()
            self._fill_output_buffer()  # the next byte (and a fresh IRQ1 edge) follows
        return value

    def _write_data(self, value: int) -> None:
        self.status &= ~STAT_CMD
        command, self.pending_command = self.pending_command, None
        if command is None:
            self._keyboard_command(value)
        elif 0x60 <= command <= 0x7F:
            self.ram[command & 0x1F] = value
            if command == 0x60:
                self._command_byte_written()
        elif command == 0xD1:
            self._write_output_port(value)
        elif command == 0xD2:
            self._keyboard_reply(value)
        # 0xD3/0xD4 (auxiliary port): no mouse is attached; the byte goes nowhere.

    def _command_byte_written(self) -> None:
        self.status = (self.status & ~STAT_SYS) | (self.command_byte & CMD_SYS)
        if not self.command_byte & CMD_KBD_INT:
            self.irq1.lower()
        elif self.status & STAT_OBF:
            self.irq1.raise_()
        self._fill_output_buffer()

    def _keyboard_command(self, value: int) -> None:
        pending, self.kbd_pending = self.kbd_pending, None
        if pending == 0xED:
            self.leds = value & 0x07
            self._keyboard_reply(KBD_ACK)
        elif pending == 0xF0:
            # Set 1 is what the guest sees; query (0) answers as a translated set 2 (0x41).
            if value == 0:
                self._keyboard_reply(KBD_ACK, 0x41)
            else:
                self._keyboard_reply(KBD_ACK)
        elif pending == 0xF3:
            self._keyboard_reply(KBD_ACK)
        elif value in KBD_COMMANDS_WITH_DATA:
            self.kbd_pending = value
            self._keyboard_reply(KBD_ACK)
        elif value == 0xEE:
            self._keyboard_reply(KBD_ECHO)
        elif value == 0xF2:
            self._keyboard_reply(KBD_ACK, 0xAB, 0x41 if self.command_byte & CMD_XLATE else 0x83)
        elif value == 0xF4:
            self.scanning = True
            self._keyboard_reply(KBD_ACK)
        elif value in (0xF5, 0xF6):
            self.scanning = value == 0xF6  # F5 disables scanning; F6 restores defaults
            self.leds = 0
            self._keyboard_reply(KBD_ACK)
        elif value == 0xFF:
            self.keyboard_queue.clear()
            self.scanning = True
            self.leds = 0
            self._keyboard_reply(KBD_ACK, KBD_BAT_OK)
        elif 0xF7 <= value <= 0xFE:
            self._keyboard_reply(KBD_ACK)
        else:
            self._keyboard_reply(KBD_RESEND)  # not a command: ask for it again

    # ---- port 0x64 ----

    def _write_command(self, value: int) -> None:
        self.status |= STAT_CMD
        self.pending_command = None
        if 0x20 <= value <= 0x3F:
            self._reply(self.ram[value & 0x1F])
        elif value in DATA_COMMANDS:
            self.pending_command = value
        elif value == 0xA7:
            self.ram[0] |= CMD_AUX_DISABLE
        elif value == 0xA8:
            self.ram[0] &= ~CMD_AUX_DISABLE
        elif value == 0xA9:
            self._reply(0x01)  # auxiliary interface test: clock line stuck low (no mouse)
        elif value == 0xAA:
            self.ram[0] |= CMD_SYS
            self.status |= STAT_SYS
            self._reply(0x55)
        elif value == 0xAB:
            self._reply(0x00)
        elif value == 0xAD:
            self.ram[0] |= CMD_KBD_DISABLE
        elif value == 0xAE:
            self.ram[0] &= ~CMD_KBD_DISABLE
            self._fill_output_buffer()
        elif value == 0xC0:
            self._reply(0x80)  # input port: keyboard not inhibited
        elif value == 0xD0:
            obf = OUT_OBF_IRQ1 if self.status & STAT_OBF else 0
            self._reply((self.output_port & ~OUT_OBF_IRQ1) | obf)
        elif value == 0xDD:
            self._write_output_port(self.output_port & ~OUT_A20)
        elif value == 0xDF:
            self._write_output_port(self.output_port | OUT_A20)
        elif value == 0xE0:
            self._reply(0x00)
        elif value >= 0xF0 and not value & OUT_RESET:
            self._request_reset()  # pulse output bit 0 low: the CPU's RESET line

    def _write_output_port(self, value: int) -> None:
        old, self.output_port = self.output_port, value
        if (old ^ value) & OUT_A20:
            self._set_a20(bool(value & OUT_A20))
        if not value & OUT_RESET:
            self._request_reset()

    # ---- bus ----

    def io_read(self, port: int, size: int) -> int:
        if port == 0x60:
            return self._read_data()
        if port == 0x64:
            return self.status
        return (1 << (8 * max(1, min(size, 4)))) - 1

    def io_write(self, port: int, size: int, value: int) -> None:
        if port == 0x60:
            self._write_data(value & 0xFF)
        elif port == 0x64:
            self._write_command(value & 0xFF)

    # ---- persistence ----

    def save(self) -> dict[str, Any]:
        return {
            "ram": bytes(self.ram),
            "status": self.status,
            "output_port": self.output_port,
            "pending_command": self.pending_command,
            "kbd_pending": self.kbd_pending,
            "controller_queue": bytes(self.controller_queue),
            "keyboard_queue": bytes(self.keyboard_queue),
            "host_queue": bytes(self.host_queue),
            "output_buffer": self.output_buffer,
            "scanning": self.scanning,
            "leds": self.leds,
            "irq1": self.irq1.level,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.ram = bytearray(state["ram"][:32].ljust(32, b"\0"))
        self.status = int(state["status"]) & 0xFF
        self.output_port = int(state["output_port"]) & 0xFF
        self.pending_command = state["pending_command"]
        self.kbd_pending = state["kbd_pending"]
        self.controller_queue = deque(state["controller_queue"])
        self.keyboard_queue = deque(state["keyboard_queue"])
        self.host_queue = deque(state["host_queue"])
        self.output_buffer = int(state["output_buffer"]) & 0xFF
        self.scanning = bool(state["scanning"])
        self.leds = int(state["leds"])
        self.irq1.level = bool(state["irq1"])  # the PIC restores its own view of the line
