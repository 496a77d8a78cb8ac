"""Seeded, bounded fuzzing of every reader of untrusted files (issue 23): .vmx, .nvram,
VMDK (descriptor, sparse header, whole sparse files opened, read, written and checked),
Multiboot ELF and a.out kernels, Linux bzImage setup headers (issue 14's reader). Each case
either works or raises a VmmError (one line for the user); any other exception is a bug and
fails the test with the case's seed.

10,000 cases per reader here; ``-m fuzz_long`` runs 20 times as many.
"""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from tests.conftest import ROOT, require_file
from tests.unit.bundle.test_bundle_vmx import FUSION_DEBIAN
from vmm.boot.multiboot import _load_segments, find_header
from vmm.bundle.config import build_config
from vmm.bundle.nvram import Nvram
from vmm.bundle.vmx import VmxFile
from vmm.disk.vmdk.check import check_disk
from vmm.disk.vmdk.create import create_vmdk
from vmm.disk.vmdk.descriptor import parse_descriptor
from vmm.disk.vmdk.disk import VmdkDisk
from vmm.disk.vmdk.sparse import SparseHeader
from vmm.errors import VmmError
from vmm.memory import GuestMemory

CASES = 10_000
LONG = 20
INTERESTING = [
    b"\0",
    b"\xff",
    b"\n",
    b"\r\n",
    b'"',
    b"=",
    b"#",
    b"..",
    b"/",
    b"\\",
    b"|22",
    b"0x",
    b"-1",
    b"4294967295",
    b"18446744073709551616",
    b"99999999999999999999",
    b"1e400",
    b"nan",
    b"\x1b[2J",
    b"\xef\xbb\xbf",
    b"\x00" * 8,
    b"\xff" * 8,
    b"RW ",
    b"FLAT",
    b"SPARSE",
    b"ZERO",
    b"ffffffff",
]


def mutate(rng: random.Random, seed: bytes, edits: int = 4) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, edits)):
        at = rng.randrange(len(data) + 1)
        choice = rng.random()
        if choice < 0.3:
            data[at:at] = rng.choice(INTERESTING)
        elif choice < 0.5 and data:
            del data[at : at + rng.randint(1, 16)]
        elif choice < 0.8 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif data:  # overwrite a little-endian field with an extreme value
            value = rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 31, rng.getrandbits(32)])
            data[at : at + 4] = struct.pack("<I", value)
    return bytes(data)


def fuzz(cases: int, seed: int, case) -> int:
    """Run ``case(rng)`` ``cases`` times; count the VmmErrors; anything else fails with the case."""
    refused = 0
    for i in range(cases):
        rng = random.Random(seed * 1_000_003 + i)
        try:
            case(rng)
        except VmmError as exc:
            assert str(exc), f"case {i}: an empty error message"
            refused += 1
        except Exception as exc:  # noqa: BLE001 - the point: report which case escaped how
            pytest.fail(f"case {i} (seed {seed}): {type(exc).__name__}: {exc}")
    return refused


@pytest.fixture(params=[pytest.param(1, id="ci"), pytest.param(LONG, id="long", marks=pytest.mark.fuzz_long)])
def cases(request) -> int:
    return CASES * request.param


def test_fuzz_vmx(tmp_path, cases):
    folder = tmp_path / "vm"
    folder.mkdir()
    (folder / "disk.img").write_bytes(bytes(1024))
    seed = FUSION_DEBIAN.replace(b'firmware = "efi"\n', b"").replace(b'numvcpus = "2"', b'numvcpus = "1"')
    seed += b'ide0:0.present = "TRUE"\nide0:0.fileName = "disk.img"\nserial0.present = "TRUE"\n'
    vmx_path = folder / "vm.vmx"

    def case(rng):
        vmx = VmxFile.parse(mutate(rng, seed), str(vmx_path))
        build_config(vmx, vmx_path)

    refused = fuzz(cases, 1, case)
    assert 0 < refused < cases


def test_fuzz_nvram(cases):
    nvram = Nvram()
    nvram.set("boot.order", "cdrom,hdd")
    seed = nvram.to_bytes()

    def case(rng):
        data = mutate(rng, seed)
        if rng.random() < 0.7 and len(data) > 16:  # fix the checksum up to reach the entries
            body = data[:-16]
            data = body + struct.pack("<4s4sI", b"CKSM", b"CRC3", 4) + struct.pack("<I", zlib.crc32(body))
        Nvram.parse(data, "fuzz.nvram")

    refused = fuzz(cases, 2, case)
    assert 0 < refused < cases


def test_fuzz_vmdk_descriptor_and_sparse_header(tmp_path, cases):
    create_vmdk(tmp_path / "d.vmdk", 2048, "twoGbMaxExtentSparse", grain_size=16, extent_sectors=1024)
    text = (tmp_path / "d.vmdk").read_bytes()
    create_vmdk(tmp_path / "s.vmdk", 2048, grain_size=16)
    header = (tmp_path / "s.vmdk").read_bytes()[:512]

    def case(rng):
        parse_descriptor(mutate(rng, text).decode("latin-1"), "fuzz.vmdk")
        SparseHeader.parse(mutate(rng, header), "fuzz.vmdk")

    refused = fuzz(cases, 3, case)
    assert 0 < refused < cases


def test_fuzz_vmdk_files_opened_read_written_and_checked(tmp_path, cases):
    seed_path = tmp_path / "seed.vmdk"
    create_vmdk(seed_path, 256, grain_size=16, gtes_per_gt=4)
    with VmdkDisk(seed_path) as disk:
        for lba in (0, 40, 200):
            disk.write(lba, bytes([lba % 251 + 1]) * 512 * 8)
    seed = seed_path.read_bytes()
    path = tmp_path / "fuzz.vmdk"

    def case(rng):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 3)):  # metadata lives in the first sectors and the GTs
            at = rng.randrange(min(len(data), 64 * 512))
            data[at : at + 4] = struct.pack(
                "<I", rng.choice([0, 1, 7, 0xFFFFFFFF, rng.getrandbits(32), rng.randrange(len(seed) // 512 + 64)])
            )
        path.write_bytes(bytes(data))
        check_disk(path)
        with VmdkDisk(path) as disk:
            disk.read(rng.randrange(disk.capacity), 1)
            disk.write(rng.randrange(disk.capacity), b"z" * 512)

    fuzz(cases // 4, 4, case)  # each case opens a file: a quarter of the count, 4x the depth


class _Loader:
    """What the Multiboot loader needs of a machine: its RAM."""

    def __init__(self) -> None:
        self.memory = GuestMemory(16 << 20)


def test_fuzz_multiboot_elf_and_aout(cases):
    elf = require_file(ROOT / "guests" / "build" / "multiboot.elf", "make -C guests").read_bytes()
    head = elf[:4096]
    loader = _Loader()

    def case(rng):
        image = mutate(rng, head, edits=6) + elf[4096:]
        header = find_header(image, "fuzz.elf")
        _load_segments(loader, image, header, "fuzz.elf")

    refused = fuzz(cases, 5, case)
    assert 0 < refused < cases


def test_fuzz_readers_do_not_allocate_what_a_header_claims(tmp_path):
    """Three headers from the issue: an ELF p_memsz of 2 GB, a sparse overHead past 2 TiB,
    a 64-bit FLAT offset: each is one line, nothing is allocated."""
    elf = bytearray(require_file(ROOT / "guests" / "build" / "multiboot.elf", "make -C guests").read_bytes())
    phoff = struct.unpack_from("<I", elf, 28)[0]
    struct.pack_into("<I", elf, phoff + 20, 2_000_000_000)  # the first program header's p_memsz
    with pytest.raises(VmmError, match="does not fit in guest RAM"):
        _load_segments(_Loader(), bytes(elf), find_header(bytes(elf), "big.elf"), "big.elf")
    create_vmdk(tmp_path / "s.vmdk", 2048, grain_size=16)
    data = bytearray((tmp_path / "s.vmdk").read_bytes())
    struct.pack_into("<Q", data, 64, 1 << 60)  # overHead
    (tmp_path / "s.vmdk").write_bytes(bytes(data))
    with pytest.raises(VmmError, match="overHead 1152921504606846976 sectors is beyond"):
        VmdkDisk(tmp_path / "s.vmdk")
    (tmp_path / "flat.bin").write_bytes(bytes(1 << 20))
    (tmp_path / "f.vmdk").write_text(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
        'createType="monolithicFlat"\nRW 2048 FLAT "flat.bin" 18446744073709551000\n'
    )
    with pytest.raises(VmmError, match="lies past the largest file offset"):
        VmdkDisk(tmp_path / "f.vmdk")


def bzimage_seed() -> bytes:
    """A minimal bzImage the setup-header reader accepts: 4 setup sectors, 64 KiB of kernel."""
    setup = bytearray(5 * 512)
    struct.pack_into("<B", setup, 0x1F1, 4)
    struct.pack_into("<I", setup, 0x1F4, 0x10000 // 16)
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x201] = 0x66
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020F)
    setup[0x211] = 1  # LOADED_HIGH
    struct.pack_into("<I", setup, 0x214, 0x100000)
    struct.pack_into("<II", setup, 0x22C, 0x7FFFFFFF, 0x200000)
    struct.pack_into("<BBHI", setup, 0x234, 1, 21, 0x3, 2048)
    struct.pack_into("<QI", setup, 0x258, 0x1000000, 0x400000)
    return bytes(setup) + bytes(0x10000)


def test_fuzz_linux_bzimage_setup_header(cases):
    from vmm.boot.linux import parse_setup_header, plan_layout

    seed = bzimage_seed()
    head = seed[: 5 * 512]
    parse_setup_header(seed, "seed")  # the seed itself is a valid header

    def case(rng):
        image = mutate(rng, head, edits=6) + seed[5 * 512 :]
        header = parse_setup_header(image, "fuzz.bzImage")
        plan_layout(header, 64 << 20, rng.choice([0, 1 << 20, 1 << 40]), "fuzz.bzImage")

    refused = fuzz(cases, 6, case)
    assert 0 < refused < cases
