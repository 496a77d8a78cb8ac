"""Guest images built by the tests themselves: a boot sector without its signature, and
one whose "kernel" panics on the serial port and halts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, require_file

BIOS = ROOT / "firmware" / "build" / "bios.bin"
TOYOS = ROOT / "guests" / "build" / "toyos.img"
PANIC = b"kernel panic: no init found\r\n\0"

# 16-bit code at 0000:7C00: print PANIC on COM1, then stop for good (CLI; HLT).
PANIC_CODE = bytes.fromhex(
    "fc"          # cld
    "31c0"        # xor ax, ax
    "8ed8"        # mov ds, ax
    "baf803"      # mov dx, 0x3f8
    "be157c"      # mov si, 0x7c15 (PANIC, right after this code)
    "ac"          # next: lodsb
    "84c0"        # test al, al
    "7403"        # jz done
    "ee"          # out dx, al
    "ebf8"        # jmp next
    "fa"          # done: cli
    "f4"          # hlt
)  # fmt: skip


def boot_sector(code: bytes, signature: bool = True) -> bytes:
    sector = bytearray(code.ljust(510, b"\0") + (b"\x55\xaa" if signature else b"\0\0"))
    return bytes(sector) + bytes(512 * 63)  # a small disk of one track


@pytest.fixture
def panic_image(tmp_path: Path) -> Path:
    require_file(BIOS, "run make -C firmware")
    path = tmp_path / "panic.img"
    path.write_bytes(boot_sector(PANIC_CODE + PANIC))
    return path


@pytest.fixture
def unsigned_image(tmp_path: Path) -> Path:
    require_file(BIOS, "run make -C firmware")
    path = tmp_path / "unsigned.img"
    path.write_bytes(boot_sector(PANIC_CODE + PANIC, signature=False))
    return path


@pytest.fixture
def toyos() -> Path:
    return require_file(TOYOS, "run make -C guests")


def write_spec(folder: Path, name: str, text: str) -> Path:
    path = folder / f"test_{name}.vmm.toml"
    path.write_text(text)
    return path
