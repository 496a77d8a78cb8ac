"""vmm.boot.linux on synthetic bzImage headers: the checks, the layout and boot_params,
including the hostile values a file can claim (no host exception, one KernelError)."""

from __future__ import annotations

import struct

import pytest

from vmm.boot.linux import (
    E820_TABLE,
    LinuxLayout,
    build_zero_page,
    parse_setup_header,
    plan_layout,
)
from vmm.errors import KernelError

MIB = 1 << 20


def bzimage(
    version=0x020F,
    setup_sects=4,
    kernel=b"\x90" * 4096,
    pref_address=16 * MIB,
    init_size=32 * MIB,
    initrd_addr_max=0x7FFFFFFF,
    cmdline_size=2047,
    alignment=2 * MIB,
    relocatable=1,
    loadflags=1,
) -> bytes:
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    struct.pack_into("<I", setup, 0x1F4, -(-len(kernel) // 16))
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x200], setup[0x201] = 0xEB, 0x6A  # jmp: the header ends at 0x26C
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = loadflags
    struct.pack_into("<I", setup, 0x214, 0x100000)
    struct.pack_into("<IIBBHI", setup, 0x22C, initrd_addr_max, alignment, relocatable, 0, 1, cmdline_size)
    struct.pack_into("<QI", setup, 0x258, pref_address, init_size)
    return bytes(setup) + kernel


def test_a_good_header_is_read_into_a_checked_value():
    header = parse_setup_header(bzimage(), "k")
    assert (header.version_text, header.setup_size, header.kernel_size) == ("2.15", 2560, 4096)
    assert header.entry_64 and header.runtime_start() == 16 * MIB
    assert header.raw[:1] == b"\x04" and len(header.raw) == 0x26C - 0x1F1


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (bzimage()[:0x300], "truncated Linux kernel: the setup code is 2560 bytes"),
        (bzimage()[:-32], "truncated Linux kernel: the header promises 4096 bytes"),
        (bzimage(version=0x0200), "Linux boot protocol 2.00 is too old"),
        (bzimage(loadflags=0), r"a zImage \(loaded below 1 MiB\) is not supported"),
        (bzimage(alignment=3 * MIB), "kernel_alignment 0x300000 is not a power of two"),
        (bzimage(init_size=16), "init_size 0x10 is smaller than the kernel itself"),
        (bzimage(cmdline_size=0), "impossible setup header"),
    ],
)
def test_malformed_headers_are_one_kernel_error(image, message):
    with pytest.raises(KernelError, match=message):
        parse_setup_header(image, "k")


def test_the_initrd_goes_to_the_top_of_ram_below_initrd_addr_max():
    header = parse_setup_header(bzimage(initrd_addr_max=0x37FFFFFF), "k")
    assert plan_layout(header, 128 * MIB, 5000, "k") == LinuxLayout(48 * MIB, 128 * MIB - 8192, 5000)
    assert plan_layout(header, 2048 * MIB, 5000, "k").initrd_addr == 0x38000000 - 8192


@pytest.mark.parametrize(
    ("fields", "ram_mb", "initrd", "message"),
    [
        ({}, 40, 0, "the kernel needs 48 MiB of RAM"),
        ({}, 49, 2 * MIB, r"kernel and initrd need 50 MiB of RAM .* use --mem 50M"),
        ({"initrd_addr_max": 0x30FFFFF}, 128, 2 * MIB, "is larger than initrd_addr_max"),
        ({"pref_address": 1 << 63}, 128, 0, "the kernel needs"),  # hostile: far beyond any RAM
        ({"initrd_addr_max": 0xFFFFFFFF, "init_size": 0xFFFFFFFF}, 3072, 4096, "larger than initrd_addr_max"),
    ],
)
def test_what_does_not_fit_is_said_before_running(fields, ram_mb, initrd, message):
    header = parse_setup_header(bzimage(**fields), "k")
    with pytest.raises(KernelError, match=message):
        plan_layout(header, ram_mb * MIB, initrd, "k")


def test_boot_params_carry_the_header_initrd_command_line_and_e820():
    header = parse_setup_header(bzimage(), "k")
    e820 = [(0, 0x9FC00, 1), (0x100000, 127 * MIB, 1)]
    page = build_zero_page(header, 0x20000, LinuxLayout(48 * MIB, 0x7000000, 1234), e820)
    assert page[0x202:0x206] == b"HdrS" and page[0x210] == 0xFF
    assert struct.unpack_from("<II", page, 0x218) == (0x7000000, 1234)
    assert struct.unpack_from("<I", page, 0x228) == (0x20000,)
    assert page[0x1E8] == 2
    assert struct.unpack_from("<QQI", page, E820_TABLE + 20) == (0x100000, 127 * MIB, 1)
    assert (page[0x06], page[0x07], page[0x0E]) == (3, 80, 25)  # screen_info: VGA text 80x25
