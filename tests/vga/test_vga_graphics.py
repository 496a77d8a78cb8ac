"""VGA graphics end to end: boot sectors that draw in mode 13h and mode 12h through vmm's
BIOS (INT 10h AH=00h/0Ch/0Dh/0Eh/10h) and straight into display memory; vmm's screenshot PNG
must equal QEMU's screendump of the same program pixel for pixel (QEMU's isapc with the
same BIOS, the screen taken through its HMP monitor on a UNIX socket)."""

from __future__ import annotations

import os
import selectors
import socket
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_file, require_tool
from tests.floppy.build import boot_sector
from vmm.config import DiskConfig, MachineConfig, SerialConfig
from vmm.machine import Machine

BIOS = ROOT / "firmware" / "build" / "bios.bin"
MAX_INSTRUCTIONS = 50_000_000
QEMU_WALL_LIMIT = 60.0  # seconds: a safety net only, drawing takes well under one
# name: (the end of its COM1 output, screen size, a screen pixel and its colour)
PROGRAMS = {
    "mode13": (b"mode 13h: pixel (50,30)=0F\r\ndrawn\r\n", (640, 400), (100, 60), b"\xff\xff\xff"),  # doubled
    "mode12": (b"mode 12h: pixel (250,160)=D\r\ndrawn\r\n", (640, 480), (250, 160), b"\xff\x57\xff"),
    # INT 10h AH=0Eh in graphics modes (firmware/vgatext.S): text that scrolls; "drawn" in white
    "text13": (b"backspace: X\x08Y\r\ndrawn\r\n", (640, 400), (2, 381), b"\xff\xff\xff"),
    "text12": (b"backspace: X\x08Y\r\ndrawn\r\n", (640, 480), (1, 459), b"\xff\xff\xff"),
}


def floppy_with(name: str, folder: Path) -> Path:
    image = folder / f"{name}.img"
    image.write_bytes(boot_sector(f"../vga/{name}").ljust(1440 * 1024, b"\0"))
    return image


def png_rgb(path: Path) -> tuple[int, int, bytes]:
    """Width, height and RGB bytes of an 8-bit indexed PNG with filter 0 (what vmm writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, idat = 8, {}, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 3)
    raw, palette = zlib.decompress(idat), chunks[b"PLTE"]
    rgb = bytearray()
    for y in range(height):
        row = raw[y * (width + 1) : (y + 1) * (width + 1)]
        assert row[0] == 0
        for index in row[1:]:
            rgb += palette[index * 3 : index * 3 + 3]
    return width, height, bytes(rgb)


def ppm_rgb(path: Path) -> tuple[int, int, bytes]:
    magic, size, maxval, pixels = path.read_bytes().split(b"\n", 3)
    assert magic == b"P6" and maxval == b"255"
    width, height = map(int, size.split())
    return width, height, pixels


def vmm_screenshot(image: Path, out: Path) -> bytes:
    config = MachineConfig(bios=BIOS, disks=[DiskConfig("floppy0", image, kind="floppy")],
                           serial=SerialConfig("none"), boot_order=["floppy"])  # fmt: skip
    machine = Machine(config)
    try:
        result = machine.run(max_instructions=MAX_INSTRUCTIONS)
        assert result.reason == "halted", result
        machine.vga.screenshot_png(out)
        return bytes(machine.serial_transcript)
    finally:
        machine.close()


def qemu_screendump(image: Path, out: Path) -> bytes:
    """Boot ``image`` under QEMU, wait for "drawn" on COM1, take the screen through HMP."""
    qemu = require_tool("qemu-system-x86_64")
    monitor = out.with_suffix(".sock")
    command = [qemu, "-M", "isapc", "-cpu", "qemu64,-apic", "-bios", str(BIOS), "-m", "64", "-display", "none",
               "-serial", "stdio", "-no-reboot", "-drive", f"file={image},if=floppy,format=raw",
               "-monitor", f"unix:{monitor},server=on,wait=off"]  # fmt: skip
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    serial = b""
    try:
        deadline = time.monotonic() + QEMU_WALL_LIMIT
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while b"drawn\r\n" not in serial and time.monotonic() < deadline:
                if selector.select(timeout=deadline - time.monotonic()):
                    chunk = os.read(proc.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    serial += chunk
        assert b"drawn\r\n" in serial, serial
        with socket.socket(socket.AF_UNIX) as hmp:
            hmp.settimeout(QEMU_WALL_LIMIT)
            hmp.connect(str(monitor))
            answer = b""

            def until_prompt() -> None:
                nonlocal answer
                while not answer.endswith(b"(qemu) "):
                    answer += hmp.recv(4096)

            until_prompt()
            answer = b""
            hmp.sendall(f"screendump {out}\n".encode())
            until_prompt()
            hmp.sendall(b"quit\n")
            proc.wait(timeout=QEMU_WALL_LIMIT)  # with the monitor still connected
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return serial


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_graphics_program_draws_and_reads_back(name: str, tmp_path: Path) -> None:
    require_file(BIOS, "run make -C firmware")
    expected_tail, size, (x, y), colour = PROGRAMS[name]
    serial = vmm_screenshot(floppy_with(name, tmp_path), tmp_path / "vmm.png")
    assert serial.endswith(expected_tail)
    width, height, rgb = png_rgb(tmp_path / "vmm.png")
    assert (width, height) == size
    assert rgb[(y * width + x) * 3 : (y * width + x) * 3 + 3] == colour
    assert len(set(rgb[i : i + 3] for i in range(0, len(rgb), 3))) >= 15  # the bars' colours


@pytest.mark.qemu
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_screenshot_equals_qemu_screendump_pixel_for_pixel(name: str, tmp_path: Path) -> None:
    require_file(BIOS, "run make -C firmware")
    image = floppy_with(name, tmp_path)
    vmm_serial = vmm_screenshot(image, tmp_path / "vmm.png")
    qemu_serial = qemu_screendump(image, tmp_path / "qemu.ppm")
    assert vmm_serial == qemu_serial
    ours, theirs = png_rgb(tmp_path / "vmm.png"), ppm_rgb(tmp_path / "qemu.ppm")
    assert ours[:2] == theirs[:2] == PROGRAMS[name][1]
    assert ours[2] == theirs[2]


def test_vmm_screenshot_saves_a_graphics_mode(tmp_path: Path) -> None:
    import sys

    require_file(BIOS, "run make -C firmware")
    image = floppy_with("mode13", tmp_path)
    out = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, "-m", "vmm", "screenshot", str(image), "--out", str(out),
                           "--max-insns", "5M"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"(a graphics mode: the 640x400 picture is in {out})"
    assert png_rgb(out)[:2] == (640, 400)
