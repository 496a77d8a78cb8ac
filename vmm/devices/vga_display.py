"""What a monitor connected to the VGA shows: the text page drawn with a console font, or
the graphics modes drawn from display memory through the attribute controller and the DAC,
as an indexed PNG.

Sources: IBM VGA Technical Reference (CRTC horizontal display end 0x01, vertical display
end 0x12 with overflow 0x07 bits 1/6, maximum scan line 0x09 (double scan bit 7, scan
lines per row bits 4-0), offset 0x13; attribute mode control 0x10 (bit 6: 8-bit colour,
bit 7: P5-P4 from the colour select register 0x14), colour plane enable 0x12; DAC
entries of 6 bits per component). The picture's size follows the CRTC as QEMU's display
does: mode 13h is 640x400 (each pixel doubled across, each line drawn twice), mode 12h
640x480. A 6-bit DAC value v becomes the 8-bit (v << 2) | (v & 1) * 3, as in QEMU.
Text mode keeps the 16 standard colours and the host's PSF font (Debian's
console-setup-linux) or solid blocks without one.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from vmm.fileio import atomic_write

if TYPE_CHECKING:
    from vmm.devices.vga import Vga

# The 16 text colours of the VGA's default palette (IBM VGA technical reference).
PALETTE = [
    (0x00, 0x00, 0x00), (0x00, 0x00, 0xAA), (0x00, 0xAA, 0x00), (0x00, 0xAA, 0xAA),
    (0xAA, 0x00, 0x00), (0xAA, 0x00, 0xAA), (0xAA, 0x55, 0x00), (0xAA, 0xAA, 0xAA),
    (0x55, 0x55, 0x55), (0x55, 0x55, 0xFF), (0x55, 0xFF, 0x55), (0x55, 0xFF, 0xFF),
    (0xFF, 0x55, 0x55), (0xFF, 0x55, 0xFF), (0xFF, 0xFF, 0x55), (0xFF, 0xFF, 0xFF),
]  # fmt: skip
COLUMNS, ROWS = 80, 25
CRTC_CURSOR_START, CRTC_CURSOR_END = 0x0A, 0x0B

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


def dac_rgb(vga: Vga, index: int) -> tuple[int, int, int]:
    """DAC entry ``index`` as 8-bit red, green, blue."""
    return tuple(((v & 0x3F) << 2) | (v & 1) * 3 for v in vga.dac[index * 3 : index * 3 + 3])  # type: ignore[return-value]


def graphics_size(vga: Vga) -> tuple[int, int, int]:
    """(width, height, scan lines per memory line) of the picture the CRTC displays."""
    crtc = vga.crtc
    width = (crtc[0x01] + 1) * 8
    height = (crtc[0x12] | (crtc[0x07] & 0x02) << 7 | (crtc[0x07] & 0x40) << 3) + 1
    repeat = ((crtc[0x09] & 0x1F) + 1) << (crtc[0x09] >> 7)
    return width, height, repeat


# 8 pixels of 4 bits from the four plane bytes of one address (plane p is bit p).
_PIXEL_BITS = [bytes((byte >> (7 - x)) & 1 for x in range(8)) for byte in range(256)]


def render_graphics(vga: Vga) -> tuple[int, int, list[bytes], list[tuple[int, int, int]]]:
    """(width, height, rows of palette indexes, palette) of a graphics mode."""
    width, height, repeat = graphics_size(vga)
    width, height = max(8, min(width, 2048)), max(1, min(height, 2048))
    start = (vga.crtc[0x0C] << 8 | vga.crtc[0x0D]) * 4
    line_offset = vga.crtc[0x13] * 8
    vram = vga.vram
    size = len(vram)
    rows: list[bytes] = []
    eight_bit = bool(vga.attribute[0x10] & 0x40)
    if eight_bit:
        palette = [dac_rgb(vga, i) for i in range(256)]
        half = width // 2
        for line in range(height):
            addr = (start + (line // repeat) * line_offset) % size
            pixels = (vram + vram)[addr : addr + half] if addr + half > size else vram[addr : addr + half]
            doubled = bytearray(width)
            doubled[0::2] = pixels
            doubled[1::2] = pixels
            rows.append(bytes(doubled))
        return width, height, rows, palette
    attr = vga.attribute
    palette = []
    for i in range(16):
        if attr[0x10] & 0x80:
            index = (attr[0x14] & 0x0F) << 4 | (attr[i] & 0x0F)
        else:
            index = (attr[0x14] & 0x0C) << 4 | (attr[i] & 0x3F)
        palette.append(dac_rgb(vga, index))
    enable = attr[0x12] & 0x0F
    for line in range(height):
        addr = (start + (line // repeat) * line_offset) % size
        row = bytearray(width)
        for column in range(width // 8):
            base = (addr + column * 4) % size
            pixel = bytearray(8)
            for plane in range(4):
                if enable >> plane & 1:
                    bits = _PIXEL_BITS[vram[base + plane]]
                    for x in range(8):
                        pixel[x] |= bits[x] << plane
            row[column * 8 : column * 8 + 8] = pixel
        rows.append(bytes(row))
    return width, height, rows, palette


def render_text(vga: Vga) -> tuple[int, int, list[bytes], list[tuple[int, int, int]]]:
    """(width, height, rows, palette) of the 80x25 text page."""
    font = host_font() or block_font()
    cells = vga.cells()
    cursor = vga.cursor()
    cursor_rows = range(vga.crtc[CRTC_CURSOR_START] & 0x1F, (vga.crtc[CRTC_CURSOR_END] & 0x1F) + 1)
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
    return width, height, rows, PALETTE


def screenshot_png(vga: Vga, path: str | os.PathLike[str]) -> tuple[int, int]:
    """What the monitor shows, as a PNG at ``path``; returns its (width, height)."""
    width, height, rows, palette = render_graphics(vga) if vga.is_graphics() else render_text(vga)
    write_png(path, width, height, rows, palette)
    return width, height
