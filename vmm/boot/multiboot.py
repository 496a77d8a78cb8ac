"""Multiboot (version 1) direct boot, as `qemu -kernel` does for GRUB-style kernels.

Multiboot Specification 0.6.96: section 3.1 (the header: magic 0x1BADB002 in the first
8192 bytes, 4-byte aligned, flags, checksum), 3.2 (machine state: EAX = 0x2BADB002,
EBX = the information structure, flat 32-bit CS/DS, protected mode without paging,
interrupts off, A20 on) and 3.3 (the information structure: memory, command line,
modules, memory map, boot loader name). ELF kernels are loaded by their PT_LOAD program
headers at their physical addresses; the a.out kludge (flag 16) is honoured too.
No firmware runs: the boot starts at the kernel stage.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from vmm.boot import read_file_limited, read_kernel
from vmm.cpu.state import ATTR_DB, ATTR_G, ATTR_P, ATTR_S, Segment, Table, X86State
from vmm.errors import ImageError

HEADER_MAGIC = 0x1BADB002
BOOTLOADER_MAGIC = 0x2BADB002
SEARCH_LIMIT = 8192
FLAG_PAGE_ALIGN = 1 << 0
FLAG_MEMORY_INFO = 1 << 1
FLAG_VIDEO_MODE = 1 << 2
FLAG_AOUT_KLUDGE = 1 << 16

# Info flags (spec 3.3).
MBI_MEM = 1 << 0
MBI_BOOTDEV = 1 << 1
MBI_CMDLINE = 1 << 2
MBI_MODS = 1 << 3
MBI_MMAP = 1 << 6
MBI_LOADER_NAME = 1 << 9

# Where vmm puts what it hands the kernel (low RAM, below the EBDA).
INFO_ADDR = 0x9000
CMDLINE_ADDR = 0x9200
MMAP_ADDR = 0x9A00
MODS_ADDR = 0x9C00
STRINGS_ADDR = 0xA000
STRINGS_END = 0x10000
LOADER_NAME = b"vmm\0"
CODE32 = 0x08
DATA32 = 0x10


class NotMultiboot(ImageError):
    """The file has no Multiboot header (it may be another kind of kernel)."""


@dataclass(frozen=True)
class MultibootHeader:
    offset: int
    flags: int
    header_addr: int = 0
    load_addr: int = 0
    load_end_addr: int = 0
    bss_end_addr: int = 0
    entry_addr: int = 0


def find_header(image: bytes, name: str) -> MultibootHeader:
    for offset in range(0, min(len(image), SEARCH_LIMIT) - 11, 4):
        magic, flags, checksum = struct.unpack_from("<III", image, offset)
        if magic != HEADER_MAGIC:
            continue
        if (magic + flags + checksum) & 0xFFFFFFFF:
            raise ImageError(f"{name}: Multiboot header at offset {offset:#x} has a bad checksum")
        if flags & 0xFFFC & ~0x7:
            raise ImageError(f"{name}: Multiboot header asks for unsupported features (flags {flags:#x})")
        if flags & FLAG_AOUT_KLUDGE:
            if offset + 32 > len(image):
                raise ImageError(f"{name}: Multiboot header at {offset:#x} is truncated")
            fields = struct.unpack_from("<5I", image, offset + 12)
            return MultibootHeader(offset, flags, *fields)
        return MultibootHeader(offset, flags)
    raise NotMultiboot(
        f"{name}: not a Multiboot kernel: no header with magic 0x1BADB002 in its first {SEARCH_LIMIT} bytes"
    )


def _load_segments(machine, image: bytes, header: MultibootHeader, name: str) -> tuple[int, int]:
    """Copy the kernel into RAM; return (entry, highest loaded address)."""
    memory = machine.memory
    if header.flags & FLAG_AOUT_KLUDGE:
        start = header.header_addr - header.offset
        if header.load_addr > header.header_addr or start > header.load_addr:
            raise ImageError(f"{name}: Multiboot a.out kludge: load_addr is after header_addr")
        file_offset = header.offset - (header.header_addr - header.load_addr)
        end = header.load_end_addr or header.load_addr + len(image) - file_offset
        if end < header.load_addr:
            raise ImageError(f"{name}: Multiboot a.out kludge: load_end_addr is before load_addr")
        data = image[file_offset : file_offset + (end - header.load_addr)]
        _checked_write(memory, header.load_addr, data, name)
        bss_end = max(header.bss_end_addr, end)
        _check_fits(memory, end, bss_end - end, name)
        _zero(memory, end, bss_end - end)
        return header.entry_addr, bss_end
    from io import BytesIO

    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(BytesIO(image))
        if elf.elfclass != 32 or elf["e_machine"] != "EM_386":
            raise ImageError(f"{name}: a Multiboot ELF kernel must be 32-bit x86 (or use the a.out kludge)")
        highest = 0
        entry = elf["e_entry"]
        for segment in elf.iter_segments():
            if segment["p_type"] != "PT_LOAD" or segment["p_memsz"] == 0:
                continue
            paddr, filesz, memsz = segment["p_paddr"], segment["p_filesz"], segment["p_memsz"]
            if filesz > memsz:
                raise ImageError(f"{name}: ELF segment at {paddr:#x} has p_filesz > p_memsz")
            _check_fits(memory, paddr, memsz, name)  # before anything is allocated for it
            _checked_write(memory, paddr, segment.data()[:filesz], name)
            _zero(memory, paddr + filesz, memsz - filesz)
            vaddr = segment["p_vaddr"]
            if vaddr <= entry < vaddr + memsz:
                entry = entry - vaddr + paddr  # a higher-half kernel enters at its physical address
            highest = max(highest, paddr + memsz)
        if highest == 0:
            raise ImageError(f"{name}: the ELF kernel has no loadable segment")
        return entry, highest
    except ELFError as exc:
        raise ImageError(f"{name}: Multiboot kernel is not a valid ELF file: {exc}") from None


def _check_fits(memory, addr: int, length: int, name: str) -> None:
    if addr < 0x100000 and addr + length > 0xA0000 or not memory.contains(addr, length):
        raise ImageError(
            f"{name}: kernel segment {addr:#x}+{length:#x} does not fit in guest RAM "
            f"({memory.size >> 20} MiB; below 1 MiB only up to 0xA0000)"
        )


def _checked_write(memory, addr: int, data: bytes, name: str) -> None:
    _check_fits(memory, addr, len(data), name)
    memory.write(addr, data)


def _zero(memory, addr: int, length: int) -> None:
    """Clear a checked range in pieces (a bss of a gigabyte is never built as one bytes)."""
    piece = bytes(min(length, 1 << 20))
    for start in range(addr, addr + length, len(piece) or 1):
        memory.write(start, piece[: addr + length - start])


def memory_map(ram_size: int) -> list[tuple[int, int, int]]:
    """(base, length, type) entries: type 1 usable, 2 reserved."""
    return [
        (0, 0x9FC00, 1),
        (0x9FC00, 0x400, 2),
        (0xF0000, 0x10000, 2),
        (0x100000, ram_size - 0x100000, 1),
        (0xFFFC0000, 0x40000, 2),
    ]


def load_multiboot(machine, kernel: Path, cmdline: str, initrd: Path | None, image: bytes | None = None) -> int:
    """Load ``kernel`` (and ``initrd`` as module 0), set the CPU as the spec says; return the entry."""
    name = str(kernel)
    if image is None:
        image = read_kernel(kernel, machine.memory.size)
    header = find_header(image, name)
    entry, highest = _load_segments(machine, image, header, name)
    memory = machine.memory

    strings = bytearray()

    def put_string(data: bytes) -> int:
        addr = STRINGS_ADDR + len(strings)
        strings.extend(data)
        if STRINGS_ADDR + len(strings) > STRINGS_END:
            raise ImageError(f"{name}: command line and module names are too long")
        return addr

    # As QEMU builds it: the kernel path as given, a space, the appended text.
    command = f"{kernel} {cmdline}".encode() + b"\0"
    memory.write(CMDLINE_ADDR, command[:2047] + b"\0")
    flags = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME | MBI_MODS
    modules = []
    next_free = (highest + 0xFFF) & ~0xFFF
    if initrd is not None:
        # As QEMU: "FILE ARGS" names the file by its first word and passes the whole
        # text as the module's string.
        text = str(initrd)
        path = Path(text.split(" ", 1)[0])
        try:
            data = read_file_limited(path, memory.size)
        except OSError as exc:
            raise ImageError(f"{path}: cannot read module: {exc.strerror}") from None
        if data is None:
            raise ImageError(f"{path}: the module is larger than guest RAM ({memory.size >> 20} MiB)")
        _checked_write(memory, next_free, data, str(path))
        modules.append((next_free, next_free + len(data), put_string(text.encode() + b"\0")))
    for i, (start, end, string) in enumerate(modules):
        memory.write(MODS_ADDR + 16 * i, struct.pack("<IIII", start, end, string, 0))
    mmap = b"".join(struct.pack("<IQQI", 20, base, length, kind) for base, length, kind in memory_map(memory.size))
    memory.write(MMAP_ADDR, mmap)
    loader_name = put_string(LOADER_NAME)
    memory.write(STRINGS_ADDR, bytes(strings))
    # Offsets (spec 3.3): 0 flags, 4 mem_lower, 8 mem_upper, 12 boot_device, 16 cmdline,
    # 20 mods_count, 24 mods_addr, 28 syms (16 bytes), 44 mmap_length, 48 mmap_addr,
    # 52 drives_length, 56 drives_addr, 60 config_table, 64 boot_loader_name.
    info = struct.pack(
        "<7I16x6I",
        flags,
        memory_map(memory.size)[0][1] >> 10,  # mem_lower: the usable KiB below the EBDA
        (memory.size >> 10) - 1024,
        0xFFFFFFFF,
        CMDLINE_ADDR,
        len(modules),
        MODS_ADDR,
        len(mmap),
        MMAP_ADDR,
        0,
        0,
        0,
        loader_name,
    )
    memory.write(INFO_ADDR, info.ljust(88, b"\0"))
    _enter_protected_mode(machine, entry)
    return entry


def _enter_protected_mode(machine, entry: int) -> None:
    """The machine state of spec 3.2, with a real GDT in low RAM so segment reloads work."""
    gdt_base = 0x8F00
    gdt = struct.pack("<QQQ", 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF)
    machine.memory.write(gdt_base, gdt)
    state = X86State()
    code = Segment(CODE32, 0, 0xFFFFFFFF, ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0xB)
    data = Segment(DATA32, 0, 0xFFFFFFFF, ATTR_P | ATTR_S | ATTR_DB | ATTR_G | 0x3)
    state.segments = {"es": data, "cs": code, "ss": data, "ds": data, "fs": data, "gs": data}
    state.gdt = Table(gdt_base, len(gdt) - 1)
    state.idt = Table(0, 0x3FF)
    state.cr0 = 0x00000011  # PE | ET
    state.rip = entry
    state.rflags = 0x2
    state.gprs["rax"] = BOOTLOADER_MAGIC
    state.gprs["rbx"] = INFO_ADDR
    machine.cpu.set_state(state)
