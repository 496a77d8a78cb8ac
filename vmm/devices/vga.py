"""The VGA chip: registers, the 256 KiB display memory in four planes, the text page.

Source: IBM, "VGA/XGA Technical Reference" (Personal System/2 Hardware Interface
Technical Reference, VGA section): CRT controller (index/data 0x3D4/0x3D5; cursor start
and end 0x0A/0x0B, start address 0x0C/0x0D, cursor location 0x0E/0x0F, offset 0x13),
miscellaneous output (write 0x3C2, read 0x3CC), input status 1 (0x3DA, which also resets
the attribute controller's index/data flip-flop), attribute controller (0x3C0/0x3C1),
sequencer (0x3C4/0x3C5: map mask 2, memory mode 4), graphics controller (0x3CE/0x3CF:
set/reset 0, enable set/reset 1, colour compare 2, data rotate and function 3, read map
select 4, mode 5, miscellaneous 6, colour don't care 7, bit mask 8), DAC (0x3C6-0x3C9).

Emulated: every register reads back what was written; the display memory behind the
64 KiB window at 0xA0000 (an MMIO window the machine maps) with chain-4 (mode 13h),
odd/even and planar addressing, write modes 0-3 with set/reset, rotate, the logical
function and the bit mask, the four latches, read modes 0 and 1 (colour compare); the
DAC with its read/write indexes. The 80x25 text page stays in guest RAM at 0xB8000 (fast
for text output; the machine passes its GuestMemory), read by ``cells``/``screen_text``.
Input status 1 alternates its retrace bits on each read so polling loops end.
Rendering (what a monitor would show, text or graphics, as PNG) is vga_display.py's job.
Not emulated: the text page in planes 0/1 (text written through 0xA0000 with map select
0 does not show as text), fonts loaded into plane 2 (the host's console font is used),
light pen, the memory window at 0xB0000-0xB7FFF.
"""

from __future__ import annotations

import os
from typing import Any

from vmm.devices.base import Device
from vmm.devices.ioport import read_split, write_split
from vmm.devices.vga_display import CP437_CONTROLS
from vmm.memory import GuestMemory

TEXT_BASE = 0xB8000
GRAPHICS_BASE = 0xA0000
GRAPHICS_WINDOW = 0x10000  # the 64 KiB window at 0xA0000 (modes 0Dh-13h)
VRAM_SIZE = 256 * 1024
COLUMNS, ROWS = 80, 25
WINDOW = 0x8000  # the 32 KiB colour text window at 0xB8000

CRTC_CURSOR_START, CRTC_CURSOR_END = 0x0A, 0x0B
CRTC_START_HI, CRTC_START_LO, CRTC_CURSOR_HI, CRTC_CURSOR_LO = 0x0C, 0x0D, 0x0E, 0x0F
CURSOR_DISABLE = 0x20
SEQ_MAP_MASK, SEQ_MEMORY_MODE = 2, 4
MEMORY_MODE_CHAIN4, MEMORY_MODE_ODD_EVEN_OFF = 0x08, 0x04
GC_SET_RESET, GC_ENABLE_SET_RESET, GC_COLOR_COMPARE, GC_ROTATE = 0, 1, 2, 3
GC_READ_MAP, GC_MODE, GC_MISC, GC_DONT_CARE, GC_BIT_MASK = 4, 5, 6, 7, 8
GC_MISC_GRAPHICS = 0x01
AC_MODE = 0x10
# Each 8-bit value repeated in the four bytes of a 32-bit word (one byte per plane).
PLANE_BYTES = [sum(1 << (8 * p) for p in range(4) if mask >> p & 1) * 0xFF for mask in range(16)]


class Vga(Device):
    """The VGA: its registers, its 256 KiB of planar memory behind 0xA0000, the text page in RAM."""

    name = "vga"
    ports = [(0x3C0, 16), (0x3D4, 2), (0x3DA, 1)]

    def __init__(self, memory: GuestMemory, base: int = TEXT_BASE) -> None:
        self.memory = memory
        self.base = base
        self.reset()

    def reset(self) -> None:
        self.crtc = bytearray(32)
        self.crtc[CRTC_CURSOR_START], self.crtc[CRTC_CURSOR_END] = 0x0D, 0x0E  # underline cursor
        self.crtc_index = 0
        self.misc_output = 0x67  # colour, 0x3Dx addressing, RAM enabled, 28 MHz clock
        self.sequencer = bytearray(8)
        self.sequencer_index = 0
        self.graphics = bytearray(16)
        self.graphics_index = 0
        self.attribute = bytearray(32)
        self.attribute_index = 0
        self.attribute_flip = False  # False: the next 0x3C0 write is an index
        self.dac = bytearray(256 * 3)
        self.dac_read_index = self.dac_write_index = 0
        self.dac_component = 0
        self.pel_mask = 0xFF
        self.feature_control = 0
        self.retrace = False
        self.vram = bytearray(VRAM_SIZE)  # plane p of address a at vram[4 * a + p]
        self.latch = 0  # the four latches, plane 0 in the low byte

    # ---- ports ----

    def _read_byte(self, port: int) -> int:
        if port == 0x3D4:
            return self.crtc_index
        if port == 0x3D5:
            return self.crtc[self.crtc_index & 0x1F]
        if port == 0x3DA:
            # Input status 1: alternate "in retrace" and "displaying" so a guest polling
            # for either edge finds it; the read also resets the attribute flip-flop.
            self.retrace = not self.retrace
            self.attribute_flip = False
            return 0x09 if self.retrace else 0x00
        if port == 0x3C0:
            return self.attribute_index
        if port == 0x3C1:
            return self.attribute[self.attribute_index & 0x1F]
        if port == 0x3C2:
            return 0x10  # input status 0: switch sense
        if port == 0x3C4:
            return self.sequencer_index
        if port == 0x3C5:
            return self.sequencer[self.sequencer_index & 7]
        if port == 0x3C6:
            return self.pel_mask
        if port == 0x3C9:
            value = self.dac[self.dac_read_index * 3 + self.dac_component]
            self._advance_dac("read")
            return value
        if port == 0x3CA:
            return self.feature_control
        if port == 0x3CC:
            return self.misc_output
        if port == 0x3CE:
            return self.graphics_index
        if port == 0x3CF:
            return self.graphics[self.graphics_index & 0x0F]
        return 0xFF

    def _advance_dac(self, which: str) -> None:
        self.dac_component += 1
        if self.dac_component == 3:
            self.dac_component = 0
            if which == "read":
                self.dac_read_index = (self.dac_read_index + 1) & 0xFF
            else:
                self.dac_write_index = (self.dac_write_index + 1) & 0xFF

    def _write_byte(self, port: int, value: int) -> None:
        if port == 0x3D4:
            self.crtc_index = value & 0x1F
        elif port == 0x3D5:
            self.crtc[self.crtc_index & 0x1F] = value
        elif port == 0x3C0:
            if self.attribute_flip:
                self.attribute[self.attribute_index & 0x1F] = value
            else:
                self.attribute_index = value & 0x3F
            self.attribute_flip = not self.attribute_flip
        elif port == 0x3C2:
            self.misc_output = value
        elif port == 0x3C4:
            self.sequencer_index = value & 7
        elif port == 0x3C5:
            self.sequencer[self.sequencer_index & 7] = value
        elif port == 0x3C6:
            self.pel_mask = value
        elif port == 0x3C7:
            self.dac_read_index, self.dac_component = value, 0
        elif port == 0x3C8:
            self.dac_write_index, self.dac_component = value, 0
        elif port == 0x3C9:
            self.dac[self.dac_write_index * 3 + self.dac_component] = value & 0x3F
            self._advance_dac("write")
        elif port == 0x3CE:
            self.graphics_index = value & 0x0F
        elif port == 0x3CF:
            self.graphics[self.graphics_index & 0x0F] = value
        elif port == 0x3DA:
            self.feature_control = value

    def io_read(self, port: int, size: int) -> int:
        return read_split(self._read_byte, port, size)

    def io_write(self, port: int, size: int, value: int) -> None:
        write_split(self._write_byte, port, size, value)

    # ---- the display memory window at 0xA0000 ----

    def _window_address(self, offset: int) -> int | None:
        """The memory address an offset in the 0xA0000 window selects, or None when the
        graphics controller maps memory elsewhere (0xB0000/0xB8000: text modes)."""
        select = (self.graphics[GC_MISC] >> 2) & 3
        if select > 1:
            return None
        return offset & 0xFFFF

    def mmio_read(self, offset: int, size: int) -> int:
        value = 0
        for i in range(max(1, min(size, 8))):
            value |= self._read_vram(offset + i) << (8 * i)
        return value

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        for i in range(max(1, min(size, 8))):
            self._write_vram(offset + i, (value >> (8 * i)) & 0xFF)

    def _read_vram(self, offset: int) -> int:
        addr = self._window_address(offset)
        if addr is None:
            return 0xFF
        memory_mode = self.sequencer[SEQ_MEMORY_MODE]
        if memory_mode & MEMORY_MODE_CHAIN4:
            return self.vram[addr]
        if not memory_mode & MEMORY_MODE_ODD_EVEN_OFF and self.graphics[GC_MODE] & 0x10:
            plane = (self.graphics[GC_READ_MAP] & 2) | (addr & 1)
            return self.vram[((addr & ~1) << 1 | plane) % VRAM_SIZE]
        base = (addr << 2) % VRAM_SIZE
        self.latch = int.from_bytes(self.vram[base : base + 4], "little")
        if not self.graphics[GC_MODE] & 0x08:  # read mode 0: the selected plane
            return (self.latch >> (8 * (self.graphics[GC_READ_MAP] & 3))) & 0xFF
        # read mode 1: 1 bits where all "care" planes match the colour compare value
        compare = PLANE_BYTES[self.graphics[GC_COLOR_COMPARE] & 0x0F]
        care = PLANE_BYTES[self.graphics[GC_DONT_CARE] & 0x0F]
        differ = (self.latch ^ compare) & care
        differ |= differ >> 16
        differ |= differ >> 8
        return ~differ & 0xFF

    def _write_vram(self, offset: int, value: int) -> None:
        addr = self._window_address(offset)
        if addr is None:
            return
        map_mask = self.sequencer[SEQ_MAP_MASK] & 0x0F
        memory_mode = self.sequencer[SEQ_MEMORY_MODE]
        if memory_mode & MEMORY_MODE_CHAIN4:
            if map_mask & (1 << (addr & 3)):
                self.vram[addr] = value
            return
        if not memory_mode & MEMORY_MODE_ODD_EVEN_OFF and self.graphics[GC_MODE] & 0x10:
            plane = (self.graphics[GC_READ_MAP] & 2) | (addr & 1)
            if map_mask & (1 << plane):
                self.vram[((addr & ~1) << 1 | plane) % VRAM_SIZE] = value
            return
        gc = self.graphics
        mode = gc[GC_MODE] & 3
        rotate = gc[GC_ROTATE] & 7
        if mode == 1:  # the latches as they are
            result = self.latch
        else:
            if mode == 2:
                word = PLANE_BYTES[value & 0x0F]
                bit_mask = gc[GC_BIT_MASK]
            else:
                value = ((value >> rotate) | (value << (8 - rotate))) & 0xFF
                if mode == 0:
                    enable = PLANE_BYTES[gc[GC_ENABLE_SET_RESET] & 0x0F]
                    word = (value * 0x01010101 & ~enable) | (PLANE_BYTES[gc[GC_SET_RESET] & 0x0F] & enable)
                    bit_mask = gc[GC_BIT_MASK]
                else:  # mode 3: the rotated value masks the bit mask; set/reset is the colour
                    word = PLANE_BYTES[gc[GC_SET_RESET] & 0x0F]
                    bit_mask = gc[GC_BIT_MASK] & value
            function = (gc[GC_ROTATE] >> 3) & 3
            if function == 1:
                word &= self.latch
            elif function == 2:
                word |= self.latch
            elif function == 3:
                word ^= self.latch
            mask = bit_mask * 0x01010101
            result = (word & mask) | (self.latch & ~mask & 0xFFFFFFFF)
        planes = PLANE_BYTES[map_mask]
        base = (addr << 2) % VRAM_SIZE
        old = int.from_bytes(self.vram[base : base + 4], "little")
        self.vram[base : base + 4] = ((old & ~planes) | (result & planes)).to_bytes(4, "little")

    def is_graphics(self) -> bool:
        """The graphics controller is in a graphics mode (GC register 6 bit 0)."""
        return bool(self.graphics[GC_MISC] & GC_MISC_GRAPHICS)

    # ---- the screen ----

    @property
    def start_address(self) -> int:
        return self.crtc[CRTC_START_HI] << 8 | self.crtc[CRTC_START_LO]

    def cursor(self) -> tuple[int, int] | None:
        """(row, column) of the cursor on the page, or None when hidden or off the page."""
        if self.crtc[CRTC_CURSOR_START] & CURSOR_DISABLE:
            return None
        offset = (self.crtc[CRTC_CURSOR_HI] << 8 | self.crtc[CRTC_CURSOR_LO]) - self.start_address
        if not 0 <= offset < COLUMNS * ROWS:
            return None
        return divmod(offset, COLUMNS)

    def cells(self) -> bytes:
        """The page's 2000 (character, attribute) byte pairs; blank if RAM does not reach it."""
        start = (self.start_address * 2) % WINDOW
        length = COLUMNS * ROWS * 2
        if not self.memory.contains(self.base, WINDOW):
            return b"\x20\x07" * (COLUMNS * ROWS)
        first = self.memory.read(self.base + start, min(length, WINDOW - start))
        return first + self.memory.read(self.base, length - len(first))  # wraps in the window

    def screen_text(self) -> str:
        """The 25 lines on screen, as Unicode (CP437), trailing spaces stripped."""
        cells = self.cells()
        chars = bytes(b if b else 0x20 for b in cells[0::2])
        lines = []
        for row in range(ROWS):
            line = chars[row * COLUMNS : (row + 1) * COLUMNS]
            text = "".join(CP437_CONTROLS[b] if b < 0x20 else bytes((b,)).decode("cp437") for b in line)
            lines.append(text.rstrip())
        return "\n".join(lines)

    def screenshot_png(self, path: str | os.PathLike[str]) -> tuple[int, int]:
        """What the monitor shows (text or graphics), as a PNG at ``path``; its (width, height)."""
        from vmm.devices.vga_display import screenshot_png

        return screenshot_png(self, path)

    # ---- persistence ----

    def save(self) -> dict[str, Any]:
        return {
            name: bytes(value) if isinstance(value, bytearray) else value
            for name, value in vars(self).items()
            if name not in ("memory", "base")
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.reset()
        for name, value in state.items():
            current = getattr(self, name, None)
            if isinstance(current, bytearray):
                setattr(self, name, bytearray(bytes(value)[: len(current)].ljust(len(current), b"\0")))
            elif isinstance(current, bool):
                setattr(self, name, bool(value))
            elif isinstance(current, int):
                setattr(self, name, int(value))


VgaText = Vga  # the name of the text-only chip this grew from
