"""VGA text mode: the screen text and screenshot a user sees, and the register ports."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from vmm.devices import vga_display as vga_module
from vmm.devices.vga import VgaText
from vmm.memory import GuestMemory


def put(memory: GuestMemory, row: int, column: int, text: str, attr: int = 0x07) -> None:
    for i, char in enumerate(text.encode("cp437")):
        memory.write(0xB8000 + (row * 80 + column + i) * 2, bytes((char, attr)))


@pytest.fixture
def memory() -> GuestMemory:
    mem = GuestMemory(1024 * 1024)
    for cell in range(80 * 25):
        mem.write(0xB8000 + cell * 2, b"\x20\x07")
    return mem


def test_screen_text(memory: GuestMemory) -> None:
    vga = VgaText(memory)
    put(memory, 0, 0, "Hello, world")
    put(memory, 24, 70, "last line")
    put(memory, 2, 0, "┌─┐")
    lines = vga.screen_text().split("\n")
    assert len(lines) == 25
    assert lines[0] == "Hello, world"
    assert lines[2] == "┌─┐"
    assert lines[24] == " " * 70 + "last line"
    assert lines[1] == ""


def test_start_address_scrolls_the_page(memory: GuestMemory) -> None:
    vga = VgaText(memory)
    put(memory, 1, 0, "second")
    vga.io_write(0x3D4, 2, 0x000C)  # out dx, ax: index 0x0C, data 0x00
    vga.io_write(0x3D4, 2, 0x500D)  # start address = 80: row 1 at the top
    assert vga.start_address == 80
    assert vga.screen_text().split("\n")[0] == "second"


def test_crtc_cursor_and_registers(memory: GuestMemory) -> None:
    vga = VgaText(memory)
    vga.io_write(0x3D4, 1, 0x0E)
    vga.io_write(0x3D5, 1, 0x00)
    vga.io_write(0x3D4, 1, 0x0F)
    vga.io_write(0x3D5, 1, 83)
    assert vga.cursor() == (1, 3)
    assert vga.io_read(0x3D5, 1) == 83
    vga.io_write(0x3D4, 1, 0x0A)
    vga.io_write(0x3D5, 1, 0x20)
    assert vga.cursor() is None
    assert vga.io_read(0x3CC, 1) == 0x67
    vga.io_write(0x3C2, 1, 0x63)
    assert vga.io_read(0x3CC, 1) == 0x63
    vga.io_write(0x3C4, 1, 0x01)
    vga.io_write(0x3C5, 1, 0x21)
    assert vga.io_read(0x3C5, 1) == 0x21
    vga.io_write(0x3CE, 2, 0x0E06)
    assert vga.io_read(0x3CF, 1) == 0x0E


def test_input_status_toggles_and_resets_attribute_flip_flop(memory: GuestMemory) -> None:
    vga = VgaText(memory)
    seen = {vga.io_read(0x3DA, 1) & 0x09 for _ in range(4)}
    assert seen == {0x00, 0x09}
    vga.io_write(0x3C0, 1, 0x10)
    vga.io_read(0x3DA, 1)  # back to "index" state
    vga.io_write(0x3C0, 1, 0x11)
    vga.io_write(0x3C0, 1, 0x05)
    assert vga.attribute[0x11] == 0x05 and vga.attribute[0x10] == 0


def png_chunks(data: bytes) -> dict[bytes, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = {}, 8
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack_from(">I", data, pos + 8 + length)[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    return chunks


def check_png(path: Path, memory: GuestMemory) -> tuple[int, int, bytes]:
    chunks = png_chunks(path.read_bytes())
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 3) and len(chunks[b"PLTE"]) == 48
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (width + 1)
    return width, height, raw


def test_screenshot_png_with_host_font(memory: GuestMemory, tmp_path: Path) -> None:
    vga = VgaText(memory)
    put(memory, 0, 0, "A", attr=0x1E)  # yellow on blue
    out = tmp_path / "screen.png"
    size = vga.screenshot_png(out)
    width, height, raw = check_png(out, memory)
    font = vga_module.host_font() or vga_module.block_font()
    assert (width, height) == size == (80 * font.width, 25 * font.height)
    first_cell = {raw[y * (width + 1) + 1 + x] for y in range(font.height) for x in range(font.width)}
    assert first_cell == {0x0E, 0x01}


def test_screenshot_png_fallback_blocks(memory: GuestMemory, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(vga_module, "host_font", lambda: None)
    vga = VgaText(memory)
    put(memory, 0, 0, "#", attr=0x4F)
    out = tmp_path / "blocks.png"
    assert vga.screenshot_png(out) == (640, 400)
    width, _height, raw = check_png(out, memory)
    assert raw[8 * (width + 1) + 1 + 3] == 0x0F  # inside the block: foreground
    assert raw[1] == 0x04  # the cell's top row: background


def test_psf_font_found_and_maps_cp437() -> None:
    font = vga_module.host_font()
    if font is None:
        from tests.conftest import _missing

        _missing("a console font (Debian package console-setup-linux, installed by make)")
    assert font.glyphs[ord("A")] != font.glyphs[ord("B")]
    assert any(font.glyphs[0xDB])  # the full block has pixels
    assert not any(font.glyphs[0x20])


def test_save_restore_behaves_identically(memory: GuestMemory) -> None:
    vga = VgaText(memory)
    vga.io_write(0x3D4, 1, 0x0F)
    vga.io_write(0x3D5, 1, 7)
    vga.io_write(0x3C0, 1, 0x10)
    vga.io_write(0x3C8, 1, 3)
    vga.io_write(0x3C9, 1, 0x3F)
    copy = VgaText(memory)
    copy.restore(vga.save())
    assert copy.save() == vga.save()
    for v in (vga, copy):
        v.io_write(0x3C0, 1, 0x0C)
        v.io_write(0x3C9, 1, 0x11)
    assert copy.save() == vga.save()
    assert [copy.io_read(0x3DA, 1) for _ in range(3)] == [vga.io_read(0x3DA, 1) for _ in range(3)]
    assert copy.cursor() == vga.cursor() == (0, 7)


def graphics_vga(memory: GuestMemory, chain4: bool) -> VgaText:
    vga = VgaText(memory)
    vga.io_write(0x3CE, 2, 0x0106 | (0x04 << 8))  # GC misc: graphics, A0000-AFFFF
    vga.io_write(0x3C4, 2, 0x0F02)  # map mask: all planes
    vga.io_write(0x3CE, 2, 0xFF08)  # bit mask: every pixel
    vga.io_write(0x3C4, 2, (0x0E if chain4 else 0x06) << 8 | 0x04)  # memory mode
    return vga


def test_chain4_memory_is_linear(memory: GuestMemory) -> None:
    vga = graphics_vga(memory, chain4=True)
    vga.mmio_write(0x1234, 1, 0x5A)
    assert vga.vram[0x1234] == 0x5A and vga.mmio_read(0x1234, 1) == 0x5A
    vga.io_write(0x3C4, 2, 0x0102)  # map mask: plane 0 only; 0x1235 is plane 1
    vga.mmio_write(0x1235, 1, 0x77)
    assert vga.vram[0x1235] == 0


def test_planar_write_modes_latches_and_colour_compare(memory: GuestMemory) -> None:
    vga = graphics_vga(memory, chain4=False)
    vga.mmio_write(10, 1, 0xF0)  # write mode 0, no set/reset: the byte in all four planes
    assert vga.vram[40:44] == b"\xf0" * 4
    vga.io_write(0x3CE, 2, 0x0500)  # set/reset = 0101b ...
    vga.io_write(0x3CE, 2, 0x0F01)  # ... on every plane
    vga.io_write(0x3CE, 2, 0x0F08)  # bit mask: the low four pixels
    vga.mmio_read(10, 1)  # fill the latches
    vga.mmio_write(10, 1, 0xFF)
    assert vga.vram[40:44] == bytes([0xFF, 0xF0, 0xFF, 0xF0])
    vga.io_write(0x3CE, 2, 0x0905)  # read mode 1 (colour compare), write mode 1
    vga.io_write(0x3CE, 2, 0x0502)  # compare with colour 0101b
    vga.io_write(0x3CE, 2, 0x0F07)
    assert vga.mmio_read(10, 1) == 0x0F  # the low four pixels are colour 5
    vga.mmio_write(20, 1, 0)  # write mode 1: the latches go to address 20
    assert vga.vram[80:84] == vga.vram[40:44]
    vga.io_write(0x3CE, 2, 0x0004 | 2 << 8)  # read map 2, read mode 0
    vga.io_write(0x3CE, 2, 0x0005)
    assert vga.mmio_read(10, 1) == 0xFF


def test_graphics_state_survives_save_restore(memory: GuestMemory, tmp_path: Path) -> None:
    vga = graphics_vga(memory, chain4=True)
    vga.io_write(0x3C0, 1, 0x10)
    vga.io_write(0x3C0, 1, 0x41)  # attribute mode: 8-bit colour
    for offset in range(0, 320 * 200, 97):
        vga.mmio_write(offset, 1, offset & 0xFF)
    copy = VgaText(memory)
    copy.restore(vga.save())
    assert copy.vram == vga.vram and copy.is_graphics()
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert vga.screenshot_png(a) == copy.screenshot_png(b)
    assert a.read_bytes() == b.read_bytes()
