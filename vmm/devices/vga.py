"""VGA text mode: the 80x25 colour text screen at 0xB8000 and the VGA's register ports.

Source: IBM, "VGA/XGA Technical Reference" (Personal System/2 Hardware Interface
Technical Reference, VGA section): CRT controller (index/data 0x3D4/0x3D5; cursor start
and end 0x0A/0x0B, start address 0x0C/0x0D, cursor location 0x0E/0x0F), miscellaneous
output (write 0x3C2, read 0x3CC), input status 1 (0x3DA, which also resets the
attribute controller's index/data flip-flop), attribute controller (0x3C0/0x3C1),
sequencer (0x3C4/0x3C5), graphics controller (0x3CE/0x3CF), DAC (0x3C6-0x3C9).

Emulated: the text frame buffer lives in guest RAM (the machine passes its GuestMemory);
every register accepts writes and reads back; input status 1 alternates its retrace bits
on each read so polling loops end; ``screen_text`` and ``screenshot_png`` render the
page at the CRTC start address, the latter with a PSF console font found on the host
(Debian's console-setup-linux) or solid cell blocks without one.
Not emulated: graphics modes, planar memory, the DAC palette in rendering (the 16
standard colours are used), blinking, the 9th pixel column.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from vmm.devices.base import Device
from vmm.devices.ioport import read_split, write_split
from vmm.fileio import atomic_write
from vmm.memory import GuestMemory

TEXT_BASE = 0xB8000
COLUMNS, ROWS = 80, 25
WINDOW = 0x8000  # the 32 KiB colour text window at 0xB8000

# The 16 text colours of the VGA's default palette (IBM VGA technical reference).
PALETTE = [
    (0x00, 0x00, 0x00), (0x00, 0x00, 0xAA), (0x00, 0xAA, 0x00), (0x00, 0xAA, 0xAA),
    (0xAA, 0x00, 0x00), (0xAA, 0x00, 0xAA), (0xAA, 0x55, 0x00), (0xAA, 0xAA, 0xAA),
    (0x55, 0x55, 0x55), (0x55, 0x55, 0xFF), (0x55, 0xFF, 0x55), (0x55, 0xFF, 0xFF),
    (0xFF, 0x55, 0x55), (0xFF, 0x55, 0xFF), (0xFF, 0xFF, 0x55), (0xFF, 0xFF, 0xFF),
]  # fmt: skip

CRTC_CURSOR_START, CRTC_CURSOR_END = 0x0A, 0x0B
CRTC_START_HI, CRTC_START_LO, CRTC_CURSOR_HI, CRTC_CURSOR_LO = 0x0C, 0x0D, 0x0E, 0x0F
CURSOR_DISABLE = 0x20

FONT_DIRS = (Path("/usr/share/consolefonts"), Path("/usr/share/kbd/consolefonts"))
# FullGreek-VGA16 covers 249 of the 256 CP437 glyphs (box drawing, shades, card suits).
FONT_NAMES = ("default8x16.psf.gz", "FullGreek-VGA16.psf.gz", "Uni2-VGA16.psf.gz", "Lat15-VGA16.psf.gz")
PSF1_MAGIC, PSF2_MAGIC = b"\x36\x04", b"\x72\xb5\x4a\x86"


class Font:
    """A bitmap font: one glyph per CP437 code, each ``height`` rows of ``width`` bits."""

    def __init__(self, width: int, height: int, glyphs: list[list[int]], covered: int = 256) -> None:
        self.width, self.height, self.glyphs = width, height, glyphs
        self.covered = covered  # how many CP437 codes have their own glyph


def parse_psf(data: bytes) -> Font:
    """A PSF1 or PSF2 console font, its glyphs reordered to CP437 through its Unicode table."""
    if data[:2] == PSF1_MAGIC:
        mode, height = data[2], data[3]
        count, width, row_bytes, offset = (512 if mode & 1 else 256), 8, 1, 4
        has_table = bool(mode & 6)  # PSF1_MODEHASTAB or PSF1_MODEHASSEQ
        size = height
    elif data[:4] == PSF2_MAGIC:
        _v, offset, flags, count, size, height, width = struct.unpack_from("<7I", data, 4)
        row_bytes = (width + 7) // 8
        has_table = bool(flags & 1)
    else:
        raise ValueError("not a PSF font")
    raw = [data[offset + i * size : offset + (i + 1) * size] for i in range(count)]
    if len(raw[-1]) != size or height == 0:
        raise ValueError("truncated PSF font")
    rows = [[int.from_bytes(g[r * row_bytes : (r + 1) * row_bytes], "big") for r in range(height)] for g in raw]
    by_char: dict[str, int] = {}
    if has_table:
        table = data[offset + count * size :]
        if data[:2] == PSF1_MAGIC:
            entries = [table[i : i + 2] for i in range(0, len(table) - 1, 2)]
            glyph = 0
            for entry in entries:
                code = int.from_bytes(entry, "little")
                if code == 0xFFFF:
                    glyph += 1
                elif code < 0xFFFE and glyph < count:
                    by_char.setdefault(chr(code), glyph)
        else:
            for glyph, chunk in enumerate(table.split(b"\xff")[:count]):
                for char in chunk.split(b"\xfe")[0].decode("utf-8", "ignore"):
                    by_char.setdefault(char, glyph)
    glyphs = []
    covered = 0
    for code in range(256):
        char = bytes((code,)).decode("cp437") if code >= 0x20 else CP437_CONTROLS[code]
        covered += char in by_char
        glyphs.append(rows[by_char.get(char, code if not by_char else by_char.get("?", 0))])
    shift = row_bytes * 8 - width
    glyphs = [[row >> shift for row in glyph] for glyph in glyphs]
    return Font(width, height, glyphs, covered if by_char else 256)


# CP437 draws its control codes as symbols (smileys, card suits, arrows).
CP437_CONTROLS = " ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼"


@lru_cache(maxsize=1)
def host_font() -> Font | None:
    """The first usable console font on the host, or None."""
    for directory in FONT_DIRS:
        for name in FONT_NAMES:
            path = directory / name
            try:
                data = path.read_bytes()
                return parse_psf(gzip.decompress(data) if name.endswith(".gz") else data)
            except (OSError, ValueError, EOFError, gzip.BadGzipFile, IndexError, struct.error):
                continue
    return None


def block_font() -> Font:
    """The fallback: every visible character is a solid block inside its cell."""
    solid = [0] + [0x7E] * 14 + [0]
    blank = [0] * 16
    return Font(8, 16, [blank if code in (0, 0x20, 0xFF) else solid for code in range(256)])


def write_png(path: str | os.PathLike[str], width: int, height: int, rows: list[bytes],
              palette: list[tuple[int, int, int]]) -> None:  # fmt: skip
    """An 8-bit indexed PNG (RFC 2083), written atomically."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    raw = b"".join(b"\0" + row for row in rows)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"PLTE", b"".join(bytes(c) for c in palette))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))  # fmt: skip
    atomic_write(path, png)


class VgaText(Device):
    """The VGA in 80x25 colour text mode."""

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
        """Render the screen to a PNG at ``path``; return its (width, height)."""
        font = host_font() or block_font()
        cells = self.cells()
        cursor = self.cursor()
        cursor_rows = range(self.crtc[CRTC_CURSOR_START] & 0x1F, (self.crtc[CRTC_CURSOR_END] & 0x1F) + 1)
        width, height = COLUMNS * font.width, ROWS * font.height
        rows: list[bytes] = []
        for row in range(ROWS):
            lines = [bytearray(width) for _ in range(font.height)]
            for column in range(COLUMNS):
                char, attr = cells[(row * COLUMNS + column) * 2], cells[(row * COLUMNS + column) * 2 + 1]
                fg, bg = attr & 0x0F, (attr >> 4) & 0x07
                glyph = font.glyphs[char]
                is_cursor = cursor == (row, column)
                x0 = column * font.width
                for y in range(font.height):
                    bits = glyph[y]
                    if is_cursor and y in cursor_rows:
                        bits = (1 << font.width) - 1
                    line = lines[y]
                    for x in range(font.width):
                        line[x0 + x] = fg if bits >> (font.width - 1 - x) & 1 else bg
            rows.extend(bytes(line) for line in lines)
        write_png(path, width, height, rows, PALETTE)
        return width, height

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
