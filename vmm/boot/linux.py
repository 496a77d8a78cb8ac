"""Linux x86 boot protocol (bzImage direct boot), as `qemu -kernel` and Firecracker do it.

Documentation/arch/x86/boot.rst: the real-mode setup header at file offset 0x1F1 (its
fields, protocol 2.12+), the protected-mode kernel after the setup sectors, "The zero
page" (boot_params: the setup header copied in, the E820 table, the initrd and command
line pointers) and "64-bit Boot Protocol" (enter at load address + 0x200 in long mode
with identity-mapped page tables, __BOOT_CS 0x10 / __BOOT_DS 0x18, RSI = boot_params).
Kernels without XLF_KERNEL_64 enter through the "32-bit Boot Protocol" at code32_start
(protected mode without paging, ESI = boot_params). No firmware and no 16-bit setup code
run: the boot starts at the kernel stage (docs/design-notes.md says why).

The header is parsed and checked once (:func:`parse_setup_header`) into a
:class:`SetupHeader`; everything after that works from the checked value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from vmm.boot.multiboot import memory_map
from vmm.cpu.state import (
    ATTR_DB,
    ATTR_G,
    ATTR_L,
    ATTR_P,
    ATTR_S,
    CR0_ET,
    CR0_PE,
    CR0_PG,
    CR4_PAE,
    EFER_LMA,
    EFER_LME,
    Segment,
    Table,
    X86State,
)
from vmm.errors import ImageError, KernelError

MIB = 1 << 20

# Setup header (boot.rst, "The Real-Mode Kernel Header"): file offsets.
SETUP_HEADER_START = 0x1F1
HEADER_MAGIC = b"HdrS"
HEADER_MAGIC_OFFSET = 0x202
BOOT_FLAG = 0xAA55
MIN_VERSION = 0x020C  # 2.12: xloadflags; init_size and pref_address came with 2.10
LOADED_HIGH = 1 << 0  # loadflags: the protected-mode code loads at 0x100000 (a bzImage)
CAN_USE_HEAP = 1 << 7
XLF_KERNEL_64 = 1 << 0  # xloadflags: has the 64-bit entry at load address + 0x200
TYPE_OF_LOADER_UNDEFINED = 0xFF
DEFAULT_SETUP_SECTS = 4  # "if setup_sects is 0, the real value is 4"

# Zero page (boot_params) offsets, arch/x86/include/uapi/asm/bootparam.h.
ZERO_PAGE_SIZE = 0x1000
E820_ENTRIES = 0x1E8
E820_TABLE = 0x2D0
E820_MAX_ENTRIES = 128
EXT_RAMDISK_IMAGE = 0x0C0
EXT_RAMDISK_SIZE = 0x0C4
EXT_CMD_LINE_PTR = 0x0C8
# screen_info (the first 64 bytes): what the 16-bit setup code would have learnt from the
# BIOS about vmm's VGA text screen: mode 3, 80x25, a VGA (EGA BX with BL != 0x10), 16-line font.
SCREEN_VIDEO_MODE = 0x06
SCREEN_COLS = 0x07
SCREEN_EGA_BX = 0x0A
SCREEN_LINES = 0x0E
SCREEN_IS_VGA = 0x0F
SCREEN_POINTS = 0x10

# Where vmm puts what it hands the kernel, all in conventional memory (as Firecracker).
GDT_ADDR = 0x0500
ZERO_PAGE_ADDR = 0x7000
BOOT_STACK = 0x8FF0
PML4_ADDR = 0x9000
PDPT_ADDR = 0xA000
PD_ADDR = 0xB000  # four page directories of 2 MiB pages: the first 4 GiB, identity mapped
CMDLINE_ADDR = 0x20000
CMDLINE_AREA = 0x10000  # up to 0x30000, whatever cmdline_size a header claims
KERNEL_LOAD_ADDR = 0x100000  # where every bzImage may be loaded (LOADED_HIGH), as QEMU does
BOOT_CS = 0x10
BOOT_DS = 0x18
ENTRY_64_OFFSET = 0x200


@dataclass(frozen=True)
class SetupHeader:
    """The checked setup header of a bzImage (protocol 2.12 or later)."""

    version: int
    setup_size: int  # bytes of real-mode code before the protected-mode kernel in the file
    kernel_size: int  # bytes of protected-mode kernel (syssize * 16)
    loadflags: int
    code32_start: int
    initrd_addr_max: int
    kernel_alignment: int
    relocatable: bool
    xloadflags: int
    cmdline_size: int
    pref_address: int
    init_size: int
    raw: bytes  # file bytes 0x1F1 up to the header's end, copied into the zero page

    @property
    def version_text(self) -> str:
        return f"{self.version >> 8}.{self.version & 0xFF:02d}"

    @property
    def entry_64(self) -> bool:
        return bool(self.xloadflags & XLF_KERNEL_64)

    def runtime_start(self, load_addr: int = KERNEL_LOAD_ADDR) -> int:
        """Where the kernel decompresses itself to: the load address (aligned, for a
        relocatable kernel), never below pref_address (its LOAD_PHYSICAL_ADDR)."""
        start = load_addr
        if self.relocatable:
            start = (start + self.kernel_alignment - 1) & -self.kernel_alignment
        return max(start, self.pref_address)


def has_setup_header(image: bytes) -> bool:
    """Whether ``image`` claims to be a Linux bzImage (the "HdrS" magic at 0x202)."""
    return image[HEADER_MAGIC_OFFSET : HEADER_MAGIC_OFFSET + 4] == HEADER_MAGIC


def parse_setup_header(image: bytes, name: str) -> SetupHeader:
    """Read and check the setup header once; any problem is one clear ImageError."""
    if len(image) < 0x268 + 4:
        raise KernelError(f"{name}: Linux setup header is truncated: the file is only {len(image)} bytes")
    header_end = HEADER_MAGIC_OFFSET + image[0x201]
    boot_flag, = struct.unpack_from("<H", image, 0x1FE)  # fmt: skip
    if boot_flag != BOOT_FLAG:
        raise KernelError(f"{name}: bad Linux boot sector magic {boot_flag:#06x} at 0x1fe (expected 0xaa55)")
    if image[HEADER_MAGIC_OFFSET : HEADER_MAGIC_OFFSET + 4] != HEADER_MAGIC:
        raise KernelError(f"{name}: no Linux setup header magic 'HdrS' at 0x202")
    version, = struct.unpack_from("<H", image, 0x206)  # fmt: skip
    if version < MIN_VERSION:
        raise KernelError(
            f"{name}: Linux boot protocol {version >> 8}.{version & 0xFF:02d} is too old "
            f"(vmm needs 2.12 or later, Linux 3.8+)"
        )
    setup_sects = image[0x1F1] or DEFAULT_SETUP_SECTS
    setup_size = (setup_sects + 1) * 512
    syssize, = struct.unpack_from("<I", image, 0x1F4)  # fmt: skip
    loadflags = image[0x211]
    code32_start, = struct.unpack_from("<I", image, 0x214)  # fmt: skip
    initrd_addr_max, kernel_alignment = struct.unpack_from("<II", image, 0x22C)
    relocatable, _min_alignment, xloadflags, cmdline_size = struct.unpack_from("<BBHI", image, 0x234)
    pref_address, init_size = struct.unpack_from("<QI", image, 0x258)
    if header_end < 0x268 or header_end > len(image):
        raise KernelError(f"{name}: Linux setup header length {header_end - HEADER_MAGIC_OFFSET} is impossible")
    if setup_size > len(image):
        raise KernelError(
            f"{name}: truncated Linux kernel: the setup code is {setup_size} bytes "
            f"({setup_sects} sectors) but the file is only {len(image)} bytes"
        )
    # syssize counts 16-byte paragraphs, rounded up: the file may end up to 15 bytes early.
    kernel_size = min(syssize * 16, len(image) - setup_size)
    if syssize == 0 or setup_size + syssize * 16 - 15 > len(image):
        raise KernelError(
            f"{name}: truncated Linux kernel: the header promises {syssize * 16} bytes of kernel after "
            f"{setup_size} bytes of setup, but the file is only {len(image)} bytes"
        )
    if not loadflags & LOADED_HIGH:
        raise KernelError(f"{name}: a zImage (loaded below 1 MiB) is not supported; vmm boots bzImage kernels")
    if relocatable and (kernel_alignment == 0 or kernel_alignment & (kernel_alignment - 1)):
        raise KernelError(f"{name}: kernel_alignment {kernel_alignment:#x} is not a power of two")
    if init_size < kernel_size:
        raise KernelError(f"{name}: init_size {init_size:#x} is smaller than the kernel itself ({kernel_size:#x})")
    if initrd_addr_max < MIB or cmdline_size == 0:
        raise KernelError(f"{name}: impossible setup header (initrd_addr_max {initrd_addr_max:#x}, "
                         f"cmdline_size {cmdline_size})")  # fmt: skip
    return SetupHeader(
        version=version,
        setup_size=setup_size,
        kernel_size=kernel_size,
        loadflags=loadflags,
        code32_start=code32_start,
        initrd_addr_max=initrd_addr_max,
        kernel_alignment=kernel_alignment,
        relocatable=bool(relocatable),
        xloadflags=xloadflags,
        cmdline_size=cmdline_size,
        pref_address=pref_address,
        init_size=init_size,
        raw=image[SETUP_HEADER_START:header_end],
    )


@dataclass(frozen=True)
class LinuxLayout:
    """Where the kernel, its decompression space and the initrd go in guest RAM."""

    kernel_end: int  # end of the area the kernel needs (runtime start + init_size)
    initrd_addr: int
    initrd_size: int


def plan_layout(header: SetupHeader, ram_size: int, initrd_size: int, name: str) -> LinuxLayout:
    """Place the initrd as high as allowed (as QEMU and the boot loaders do) and check that
    the kernel's decompression area and the initrd both fit in RAM without overlapping."""
    kernel_end = header.runtime_start() + header.init_size
    ram_top = ram_size  # the last E820 RAM range ends at the top of RAM
    if initrd_size == 0:
        if kernel_end > ram_top:
            raise KernelError(
                f"{name}: the kernel needs {mib(kernel_end)} MiB of RAM (init_size {mib(header.init_size)} MiB "
                f"from {mib(header.runtime_start())} MiB) but the machine has {mib(ram_size)} MiB; use --mem"
            )
        return LinuxLayout(kernel_end, 0, 0)
    ceiling = min(ram_top, header.initrd_addr_max + 1)
    initrd_addr = (ceiling - initrd_size) & ~0xFFF
    if initrd_addr < kernel_end:
        if ((header.initrd_addr_max + 1 - initrd_size) & ~0xFFF) < kernel_end:
            raise KernelError(
                f"{name}: the initrd ({initrd_size} bytes) is larger than initrd_addr_max "
                f"({header.initrd_addr_max:#x}) allows above the kernel's end ({kernel_end:#x})"
            )
        needed = kernel_end + ((initrd_size + 0xFFF) & ~0xFFF)
        raise KernelError(
            f"{name}: kernel and initrd need {mib(needed)} MiB of RAM (init_size {mib(header.init_size)} MiB from "
            f"{mib(header.runtime_start())} MiB, initrd {mib(initrd_size)} MiB) but the machine has "
            f"{mib(ram_size)} MiB; use --mem {mib(needed)}M or more"
        )
    return LinuxLayout(kernel_end, initrd_addr, initrd_size)


def mib(value: int) -> int:
    return -(-value // MIB)


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read {what}: {exc.strerror}") from None


def build_zero_page(header: SetupHeader, cmdline_addr: int, layout: LinuxLayout,
                    e820: list[tuple[int, int, int]]) -> bytes:  # fmt: skip
    """boot_params as a boot loader fills it (boot.rst, "Details of Header Fields": the
    fields marked "write" or "modify")."""
    page = bytearray(ZERO_PAGE_SIZE)
    page[SCREEN_VIDEO_MODE], page[SCREEN_COLS], page[SCREEN_LINES], page[SCREEN_IS_VGA] = 3, 80, 25, 1
    struct.pack_into("<H", page, SCREEN_EGA_BX, 0x0003)
    struct.pack_into("<H", page, SCREEN_POINTS, 16)
    page[SETUP_HEADER_START : SETUP_HEADER_START + len(header.raw)] = header.raw
    page[0x210] = TYPE_OF_LOADER_UNDEFINED
    page[0x211] = header.loadflags & ~CAN_USE_HEAP  # no 16-bit setup code runs: no heap
    struct.pack_into("<II", page, 0x218, layout.initrd_addr, layout.initrd_size)
    struct.pack_into("<I", page, 0x228, cmdline_addr)
    struct.pack_into("<III", page, EXT_RAMDISK_IMAGE, 0, 0, 0)  # all below 4 GiB
    entries = e820[:E820_MAX_ENTRIES]
    page[E820_ENTRIES] = len(entries)
    for i, (base, length, kind) in enumerate(entries):
        struct.pack_into("<QQI", page, E820_TABLE + 20 * i, base, length, kind)
    return bytes(page)


def load_linux(machine, kernel: Path, image: bytes, cmdline: str, initrd: Path | None) -> int:
    """Load a bzImage (and an initrd), build boot_params, set the CPU at the kernel's entry;
    return the entry address."""
    name = str(kernel)
    header = parse_setup_header(image, name)
    command = cmdline.encode()
    limit = min(header.cmdline_size, CMDLINE_AREA - 1)
    if len(command) > limit:
        raise KernelError(
            f"{name}: the command line is {len(command)} bytes; this kernel accepts at most {limit} (cmdline_size)"
        )
    initrd_data = read_file(Path(str(initrd)), "initrd") if initrd is not None else b""
    memory = machine.memory
    layout = plan_layout(header, memory.size, len(initrd_data), name)
    e820 = memory_map(memory.size)
    kernel_bytes = image[header.setup_size : header.setup_size + header.kernel_size]
    memory.write(KERNEL_LOAD_ADDR, kernel_bytes)
    if initrd_data:
        memory.write(layout.initrd_addr, initrd_data)
    memory.write(CMDLINE_ADDR, command + b"\0")
    memory.write(ZERO_PAGE_ADDR, build_zero_page(header, CMDLINE_ADDR, layout, e820))
    if header.entry_64:
        entry = KERNEL_LOAD_ADDR + ENTRY_64_OFFSET
        machine.cpu.set_state(_long_mode_state(memory, entry))
    else:
        entry = KERNEL_LOAD_ADDR  # code32_start, as loaded: boot.rst says a boot loader sets it
        machine.cpu.set_state(_protected_mode_state(memory, entry))
    return entry


def _flat_segments(code_attrs: int) -> dict[str, Segment]:
    code = Segment(BOOT_CS, 0, 0xFFFFFFFF, code_attrs)
    data = Segment(BOOT_DS, 0, 0xFFFFFFFF, ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x3)
    return {"es": data, "cs": code, "ss": data, "ds": data, "fs": data, "gs": data}


def _write_gdt(memory, code_descriptor: int) -> Table:
    # Entries 0 and 1 null, 2 = __BOOT_CS, 3 = __BOOT_DS (flat read/write data).
    gdt = struct.pack("<QQQQ", 0, 0, code_descriptor, 0x00CF93000000FFFF)
    memory.write(GDT_ADDR, gdt)
    return Table(GDT_ADDR, len(gdt) - 1)


def _long_mode_state(memory, entry: int) -> X86State:
    """boot.rst "64-bit Boot Protocol": long mode, paging on with the first 4 GiB identity
    mapped (2 MiB pages), flat __BOOT_CS/__BOOT_DS, interrupts off, RSI = boot_params."""
    memory.write(PML4_ADDR, struct.pack("<Q", PDPT_ADDR | 0x3) + bytes(4088))
    memory.write(PDPT_ADDR, struct.pack("<4Q", *(PD_ADDR + 0x1000 * i | 0x3 for i in range(4))) + bytes(4064))
    memory.write(PD_ADDR, struct.pack("<2048Q", *((i << 21) | 0x83 for i in range(2048))))  # P | RW | PS
    state = X86State()
    state.gdt = _write_gdt(memory, 0x00AF9B000000FFFF)
    state.segments = _flat_segments(ATTR_P | ATTR_S | ATTR_L | ATTR_G | 0xB)
    state.idt = Table(0, 0)
    state.cr0 = CR0_PE | CR0_ET | CR0_PG
    state.cr3 = PML4_ADDR
    state.cr4 = CR4_PAE
    state.efer = EFER_LME | EFER_LMA
    state.rip = entry
    state.rflags = 0x2
    state.gprs["rsi"] = ZERO_PAGE_ADDR
    state.gprs["rsp"] = BOOT_STACK
    return state


def _protected_mode_state(memory, entry: int) -> X86State:
    """boot.rst "32-bit Boot Protocol": flat protected mode, paging off, ESI = boot_params."""
    state = X86State()
    state.gdt = _write_gdt(memory, 0x00CF9B000000FFFF)
    state.segments = _flat_segments(ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0xB)
    state.idt = Table(0, 0)
    state.cr0 = CR0_PE | CR0_ET
    state.rip = entry
    state.rflags = 0x2
    state.gprs["rsi"] = ZERO_PAGE_ADDR
    state.gprs["rsp"] = BOOT_STACK
    return state
